// SPDX-License-Identifier: BSL-1.0
#include "thread_arena.hpp"

#include "check.hpp"
#include "chunk_source.hpp"
#include "first_buffer.hpp"
#include "test_hooks.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <iterator>
#include <new>

namespace chunkpmr::detail {
namespace {

// Owner-written counter: a relaxed load and store, never a read-modify-write, because
// only one thread writes it and stats() only needs an eventually current value.
void count(std::atomic<std::uint64_t>& counter) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// Where the single block of a one-shot chunk starts: the first `alignment`-aligned
// offset past the header. Its base is 64 KiB-aligned, so offset alignment equals
// address alignment.
constexpr std::size_t first_block_offset(std::size_t alignment) noexcept {
  return std::max(kHeaderBytes, alignment);
}

// Whether `chunk` holds a block of `bytes` at `alignment`. Every chunk of a class holds
// what fits past a header at the start of its class's size, but one: the chunk in
// place 0 of a class frame, 64 bytes short (the frame's header is before it).
bool holds(const ChunkHeader* chunk, std::size_t bytes, std::size_t alignment) noexcept {
  return align_up(chunk->payload(), alignment) + bytes <= chunk->end();
}

bool is_first_place(const ChunkHeader* slot) noexcept {
  return (slot->base() & (kChunkAlign - 1)) == kFirstPlaceOffset;
}

// Whether a chunk lies in one of its arena's regions (a frame's chunk, or a chunk carved
// from a frame: those go upstream with their region at teardown) rather than being an
// upstream request of its own. An over-aligned block's header lies anywhere.
bool in_arena_regions(const ChunkHeader* chunk) noexcept {
  return chunk->size_class != kOverAlignedClass && (chunk->in_region() || chunk->is_carved());
}

}  // namespace

ThreadArena::ThreadArena(ResourceState& resource) noexcept
    : ratchet_(static_cast<std::uint8_t>(resource.initial_class)), resource_(&resource) {}

static_assert(sizeof(ThreadArena) <= ResourceState::kInlineArenaBytes &&
                  alignof(ThreadArena) <= ResourceState::kInlineArenaAlign,
              "ResourceState::inline_arena must be able to hold a ThreadArena");

ThreadArena* ThreadArena::create(ResourceState& resource) {
  if (!resource.inline_arena_in_use.exchange(true, std::memory_order_relaxed)) {
    return ::new (resource.inline_arena()) ThreadArena(resource);
  }
  void* memory = resource.upstream->allocate(sizeof(ThreadArena), alignof(ThreadArena));
  return ::new (memory) ThreadArena(resource);
}

void ThreadArena::destroy(ThreadArena* arena) noexcept {
  CHUNKPMR_ASSERT(arena->held_ == nullptr && arena->held_own_ == nullptr && arena->small_block_ == nullptr &&
                      arena->class_frames_[0] == nullptr && arena->free_slots_[0] == nullptr &&
                      arena->frames_.frames_held() == 0,
                  "chunkpmr: arena destroyed while holding chunks");
  ResourceState& resource = *arena->resource_;
  arena->~ThreadArena();
  if (static_cast<void*>(arena) == resource.inline_arena()) {
    resource.inline_arena_in_use.store(false, std::memory_order_relaxed);
  } else {
    resource.upstream->deallocate(arena, sizeof(ThreadArena), alignof(ThreadArena));
  }
}

void* ThreadArena::allocate_slow(std::size_t bytes, std::size_t alignment) {
  SlowPath slow(*this);
  honour_trim_request();
  flush_pending_frees();
  // Chunks other threads emptied come home on every slow path, one-shot ones included
  // (a thread making only large allocations never refills).
  take_remote_chunks();
  if (alignment > kMaxChunkAlignment) return allocate_over_aligned(bytes, alignment);
  // The initial buffer comes first, whatever the size: a first buffer from upstream is
  // sized for the request (as monotonic's is); the user's buffer may be too small.
  if (try_claim_initial_buffer(bytes, alignment)) {
    if (void* p; try_bump(bytes, alignment, p)) return p;
  }
  const std::size_t max_normal = resource_->max_normal_alloc;
  if (bytes > max_normal || alignment > max_normal - bytes) {
    return allocate_oversized(bytes, alignment);
  }
  const unsigned needed = class_for_bytes(first_block_offset(alignment) + bytes);
  if (needed > cache_ceiling_ && shrunk() && live_share_.pinning(frames_.frames_held())) {
    return allocate_apart(needed, bytes, alignment);
  }
  refill(needed, bytes, alignment);
  if (void* p; try_bump(bytes, alignment, p)) return p;
  CHUNKPMR_FATAL("chunkpmr: a fresh chunk did not fit the request it was sized for");
}

// The arena's chunks shrank (random lifetimes pin them: move_ratchet) below what this
// block needs. Its chunk is its own, and the current chunk stays: installed, the larger
// chunk would take the small blocks that follow and be pinned by them as before. Such a
// chunk goes back (it is above the cache's ceiling) as soon as its block does. Only
// while the probe still reads pinning: the probe reads one held chunk here too, and
// a chunk apart as wholly live, so an arena whose blocks are now mostly such large ones
// stops reading pinned, and its next large block is installed by a refill, where the
// ratchet may grow again.
void* ThreadArena::allocate_apart(unsigned size_class, std::size_t bytes, std::size_t alignment) {
  // A 64 KiB chunk straight from a frame: obtain_class_chunk would stop the class
  // frames the ratchet carves from.
  ChunkHeader* chunk = size_class == kLargestClass
                           ? obtain_frame_chunk()
                           : obtain_class_chunk(size_class, needs_whole_chunk(size_class, bytes, alignment));
  CHUNKPMR_ASSERT(holds(chunk, bytes, alignment), "chunkpmr: a chunk apart too small for its block");
  chunk->refcount.store(1, std::memory_order_relaxed);  // the block's reference
  chunk->slots_carved = kChunkApart;
  count(normal_allocated_);
  live_share_.sample(held_, chunk->total_bytes);  // the passes go on without refills
  return reinterpret_cast<void*>(align_up(chunk->payload(), alignment));
}

void* ThreadArena::allocate_oversized(std::size_t bytes, std::size_t alignment) {
  const std::size_t offset = first_block_offset(alignment);
  // The caller keeps sizes above kMaxObjectBytes away, so this cannot wrap.
  ChunkHeader* chunk = obtain_fresh(offset + bytes, kOversizedClass);
  // One reference, held by the single block; never installed as current.
  chunk->refcount.store(1, std::memory_order_relaxed);
  count(oversized_allocated_);
  return reinterpret_cast<void*>(chunk->base() + offset);
}

void* ThreadArena::allocate_over_aligned(std::size_t bytes, std::size_t alignment) {
  // One upstream block aligned as asked, its header after the block (size_classes.hpp).
  const std::size_t offset = over_aligned_header_offset(bytes);
  const std::size_t total = offset + kHeaderBytes;
  reserve_or_trim(total);
  auto* block = static_cast<std::byte*>(allocate_reserved(*resource_, total, alignment));
  ChunkHeader* header =
      init_header(::new (block + offset) ChunkHeader{}, total, kOverAlignedClass, this);
  header->slots_carved = static_cast<std::uint8_t>(std::countr_zero(alignment));
  // One reference, held by the block; given back like a one-shot chunk.
  header->refcount.store(1, std::memory_order_relaxed);
  hold(header);
  resource_->passthrough_allocations.fetch_add(1, std::memory_order_relaxed);
  return block;
}

namespace {
constexpr std::size_t kCacheLine = 64;  // x86-64's and most AArch64 cores' line
}  // namespace

void ThreadArena::refill(unsigned needed, std::size_t bytes, std::size_t alignment) {
  unsigned size_class = std::max<unsigned>(needed, ratchet_);
  // If this throws, the current chunk is still installed and still serves requests.
  ChunkHeader* chunk = take_class_chunk(size_class, bytes, alignment);
  CHUNKPMR_ASSERT(holds(chunk, bytes, alignment), "chunkpmr: a refill too small for its block");
  move_ratchet(size_class, chunk->total_bytes);
  retire_current();
  install(chunk);
  // A chunk of a page or less is what an arena pinned by random lifetimes bumps through
  // (live_share.hpp), and its memory has been cold since the chunk was last emptied:
  // every block's first touch would miss the cache, where a malloc hands out the block
  // freed just before. Asking for its lines here, in the slow path, costs the fast path
  // nothing and a few dozen instructions per page; larger chunks are left to the
  // hardware prefetcher (fetching 64 KiB ahead would only evict what is in use).
  if (chunk->total_bytes <= class_bytes(kPinnedClass)) {
    for (std::uintptr_t line = cursor_; line < limit_; line += kCacheLine) {
      __builtin_prefetch(reinterpret_cast<const void*>(line), /*write*/ 1, /*keep*/ 3);
    }
  }
}

ChunkHeader* ThreadArena::take_class_chunk(unsigned size_class, std::size_t bytes, std::size_t alignment) {
  if (ChunkHeader* cached = take_cached(size_class)) {
    if (holds(cached, bytes, alignment)) {
      count(reuses_);
      return cached;
    }
    // Place 0 of a class frame, and the block fills a whole chunk of the class: the
    // place goes back to its frame's free places, where a block that fits it finds it.
    give_back(cached);
  }
  ChunkHeader* chunk = obtain_class_chunk(size_class, needs_whole_chunk(size_class, bytes, alignment));
  count(normal_allocated_);
  return chunk;
}

// Where the next refill's class starts, decided as the chunk of `size_class` (of
// `chunk_bytes`: a cached chunk may be larger) replaces the current one.
void ThreadArena::move_ratchet(unsigned size_class, std::size_t chunk_bytes) noexcept {
  // The ratchet grows chunks while what the thread allocates stays alive (each refill
  // then costs less per byte). When most of a filled chunk's blocks are already freed,
  // the live set is smaller than the chunk: a larger one would only hold more memory
  // (and touch more of it) for the same blocks, so the class stays where it is. A
  // heuristic: remote frees are read with a relaxed load, a stale count only errs
  // towards growing. The initial buffer, or nothing yet, counts as live.
  bool mostly_live = true;
  if (current_ != nullptr) {
    const std::uint32_t live = current_->refcount.load(std::memory_order_relaxed) - unused_credit_;
    const std::uint32_t net_handouts = kSurplus - unused_credit_;  // less the owner's frees in it
    const std::uint32_t handouts = net_handouts + frees_in_current_;
    // Bytes per block: over the net handouts, since the owner's LIFO frees rolled the
    // cursor back over theirs (its frees elsewhere in the chunk only make it err high).
    live_share_.retired(cursor_ - current_->payload(), net_handouts);
    mostly_live = std::uint64_t{live} * 4 >= handouts;
  }
  live_share_.sample(held_, chunk_bytes);
  if (live_share_.pinning(frames_.frames_held())) {
    // Random lifetimes pin the arena's chunks (live_share.hpp): smaller ones, down to a
    // page. A larger chunk, reused, would be pinned as before: once emptied it is no
    // longer cached (those cached already are used up first).
    if (ratchet_ > kPinnedClass) --ratchet_;
    cache_ceiling_ = std::min(cache_ceiling_, ratchet_);
  } else if (mostly_live && live_share_.allows_growth(frames_.frames_held(), class_bytes(ratchet_))) {
    ratchet_ = static_cast<std::uint8_t>(std::min(size_class + 1, resource_->max_class));
    cache_ceiling_ = std::max(cache_ceiling_, ratchet_);
  }
}

bool ThreadArena::try_claim_initial_buffer(std::size_t bytes, std::size_t alignment) {
  BumpRange range;
  if (!claim_initial_buffer(*resource_, bytes, alignment, range)) return false;
  // Bumped like a chunk without a header: current_ stays null, so no free is ever
  // matched against it (frees inside it are dropped by address range).
  retire_current();
  cursor_ = range.begin;
  limit_ = range.end;
  // Chunks after the buffer start at about twice its size, as monotonic's buffers grow.
  const std::size_t next = std::min<std::size_t>(2 * (range.end - range.begin), kChunkAlign);
  ratchet_ = std::max(ratchet_, static_cast<std::uint8_t>(std::min(class_for_bytes(next), resource_->max_class)));
  return true;
}

void ThreadArena::install(ChunkHeader* chunk) noexcept {
  // The chunk is private to this thread here (fresh, or taken from a cache with a zero
  // count), so a plain store sets the surplus; blocks handed out later reach other
  // threads only through their own synchronisation, after this store.
  chunk->refcount.store(kSurplus, std::memory_order_relaxed);
  chunk->slots_carved = 0;  // a chunk apart, cached once the ceiling rose, is one no more
  unused_credit_ = kSurplus;
  frees_in_current_ = 0;
  current_ = chunk;
  current_span_ = chunk->total_bytes;
  cursor_ = chunk->payload();
  limit_ = chunk->end();
}

void ThreadArena::rewind_current() noexcept {
  // No live block is left in current_, so no other thread can touch its count: reset
  // it, so that remote frees never accumulate against the surplus while the chunk
  // keeps being reused in place.
  cursor_ = current_->payload();
  current_->refcount.store(kSurplus, std::memory_order_relaxed);
  unused_credit_ = kSurplus;
  frees_in_current_ = 0;
}

void ThreadArena::retire_current() noexcept {
  ChunkHeader* chunk = current_;
  current_ = nullptr;
  current_span_ = 0;
  cursor_ = 0;
  limit_ = 0;
  if (chunk == nullptr) return;
  // Hand back the unused surplus in one step; the count becomes the number of live blocks.
  CHUNKPMR_TEST_HOOK(retire_before_reconcile, chunk);
  drop_owner_references(chunk, unused_credit_);
}

void ThreadArena::drop_owner_references(ChunkHeader* chunk, std::uint32_t n) noexcept {
  // Release publishes this thread's use of the chunk to whichever thread frees its last
  // block; acquire (when this reaches zero) orders every remote free before the reuse.
  const std::uint32_t before = chunk->refcount.fetch_sub(n, std::memory_order_acq_rel);
  if (before < n) CHUNKPMR_FATAL("chunkpmr: chunk reference count underflow (double free?)");
  if (before == n) {
    count(released_by_owner_);
    release_owned(chunk);
  }
}

void ThreadArena::switch_pending_chunk(ChunkHeader* chunk) noexcept {
  SlowPath slow(*this);
  flush_pending_frees();
  pending_chunk_ = chunk;
}

void ThreadArena::flush_pending_frees() noexcept {
  ChunkHeader* chunk = pending_chunk_;
  if (chunk == nullptr) return;
  const std::uint32_t frees = pending_frees_;
  pending_chunk_ = nullptr;
  pending_frees_ = 0;
  drop_owner_references(chunk, frees);
}

void ThreadArena::release_reference(ChunkHeader* chunk, ThreadArena* caller) noexcept {
  const std::uint32_t before = chunk->refcount.fetch_sub(1, kDecrementOrder);
  if (before > 1) return;
  if (before == 0) CHUNKPMR_FATAL("chunkpmr: chunk reference count underflow (double free?)");
  // Last block: every other thread's accesses to the chunk happen before what follows.
  // (TSan builds made the decrement itself acq_rel instead: TSan ignores fences.)
  if constexpr (!CHUNKPMR_TSAN) std::atomic_thread_fence(std::memory_order_acquire);
  ThreadArena* owner = chunk->owner;
  if (owner == caller) {
    SlowPath slow(*owner);
    count(owner->released_by_owner_);
    owner->release_owned(chunk);
  } else {
    CHUNKPMR_TEST_HOOK(last_free_before_push, chunk);
    owner->released_by_other_threads_.fetch_add(1, std::memory_order_relaxed);
    owner->remote_.push(chunk);  // the chunk is not touched by this thread afterwards
  }
}

void ThreadArena::release_owned(ChunkHeader* chunk) noexcept {
  const bool cacheable = chunk->size_class <= cache_ceiling_ &&  // not one-shot, not over-aligned
                         chunk->size_class >= cache_.floor() &&
                         cache_.bytes() + chunk->total_bytes <= resource_->max_cached_bytes_per_thread;
  if (cacheable) {
    cache_.push(chunk);
    publish_cache_stats();
  } else {
    give_back(chunk);
  }
}

ChunkHeader* ThreadArena::take_cached(unsigned size_class) noexcept {
  cache_.raise_floor(size_class, [this](ChunkHeader* c) { give_back(c); });
  ChunkHeader* chunk = cache_.pop();
  publish_cache_stats();
  return chunk;
}

void ThreadArena::take_remote_chunks() noexcept {
  CHUNKPMR_TEST_HOOK(remote_drain_before_take, this);
  ChunkHeader* chunk = remote_.take_all();
  while (chunk != nullptr) {
    ChunkHeader* next = chunk->next.load(std::memory_order_relaxed);
    release_owned(chunk);  // below-floor stragglers and one-shot chunks go upstream here
    chunk = next;
  }
}

ChunkHeader* ThreadArena::obtain_class_chunk(unsigned size_class, bool whole_chunk) {
  if (is_small_class(size_class)) {
    if (ChunkHeader* chunk = carve(size_class, whole_chunk)) return chunk;
  } else {
    stop_carving();  // the ratchet is at the top: no small class follows until a reset
  }
  if (size_class == kLargestClass) return obtain_frame_chunk();
  return obtain_fresh(class_bytes(size_class), size_class);
}

ChunkHeader* ThreadArena::obtain_frame_chunk() {
  ChunkHeader* frame = frames_.take(*resource_);
  if (frame == nullptr) {
    trim_caches();  // this thread's free chunks may be what holds the budget
    frame = frames_.take(*resource_);
    if (frame == nullptr) throw std::bad_alloc();
  }
  hold(init_header(frame, kChunkAlign, kLargestClass, this));
  return frame;
}

ChunkHeader* ThreadArena::carve(unsigned size_class, bool whole_chunk) {
  // Classes below the ratchet (and the one asked for) are not refilled again: their
  // class frames can go back as soon as their chunks do. (A chunk apart is above the
  // ratchet, whose class frame stays.)
  const unsigned behind = std::min<unsigned>(size_class, ratchet_);
  for (unsigned c = 0; c < behind && c <= kLargestClassFrameClass; ++c) stop_class_frame(c);
  ChunkHeader* chunk = next_carve_class_ <= size_class ? carve_from_block(size_class)
                                                       : carve_repeated(size_class, whole_chunk);
  if (chunk != nullptr) hold(chunk);
  return chunk;
}

// The climb up the ratchet: one chunk of each small class from one small-class block.
// nullptr when the budget cannot hold a frame (the caller falls back to a chunk of its
// own, which may still fit where 64 KiB do not).
ChunkHeader* ThreadArena::carve_from_block(unsigned size_class) {
  if (small_block_ == nullptr) {
    ChunkHeader* frame = frames_.take(*resource_);
    if (frame == nullptr) return nullptr;
    small_block_ = init_header(frame, kChunkAlign, kSmallBlockClass, this);
    small_block_->refcount.store(1, std::memory_order_relaxed);  // our reference
  }
  ChunkHeader* chunk = carve_chunk(small_block_, class_bytes(size_class), size_class, this);
  next_carve_class_ = static_cast<std::uint8_t>(size_class + 1);
  if (!is_small_class(next_carve_class_)) stop_block();  // every place is used
  return chunk;
}

// A small class needed again (the ratchet held still, or a cap keeps it below 64 KiB):
// chunks of that class packed in a class frame, or, for 32 KiB, a frame of its own.
// A block that needs a whole chunk (`whole_chunk`: needs_whole_chunk) is never given
// place 0, 64 bytes short: it looks a few free places past such places (they stay for
// blocks that fit them), and a fresh frame's place 0 goes to the free places at once.
ChunkHeader* ThreadArena::carve_repeated(unsigned size_class, bool whole_chunk) {
  const std::size_t bytes = class_bytes(size_class);
  if (size_class > kLargestClassFrameClass) {
    ChunkHeader* frame = frames_.take(*resource_);
    return frame != nullptr ? init_header(frame, bytes, size_class, this) : nullptr;
  }
  // A place given back earlier (bounded walk: past that many places 0, a fresh place).
  constexpr int kFirstPlacesPassed = 4;
  ChunkHeader* slot = free_slots_[size_class];
  for (int passed = 0; whole_chunk && slot != nullptr && is_first_place(slot);) {
    slot = ++passed < kFirstPlacesPassed ? slot->held_next : nullptr;
  }
  if (slot != nullptr) {
    unlink_slot(size_class, slot);
    ChunkHeader* owner_frame = frame_of(slot->base());
    return carve_chunk(owner_frame, slot->base() - owner_frame->base(), size_class, this);
  }
  if (class_frames_[size_class] == nullptr) {
    ChunkHeader* fresh = frames_.take(*resource_);
    if (fresh == nullptr) return nullptr;
    class_frames_[size_class] = init_header(fresh, kChunkAlign, kClassFrameBase + size_class, this);
    class_frames_[size_class]->refcount.store(1, std::memory_order_relaxed);  // our reference
    class_frame_next_[size_class] = 0;
  }
  if (whole_chunk && class_frame_next_[size_class] == 0) {
    return_chunk_memory(carve_next_place(size_class));  // place 0: a free place at once
  }
  return carve_next_place(size_class);
}

// The next place of the class frame being carved (class frames have at least four).
ChunkHeader* ThreadArena::carve_next_place(unsigned size_class) noexcept {
  ChunkHeader* frame = class_frames_[size_class];
  const std::size_t bytes = class_bytes(size_class);
  const unsigned place = class_frame_next_[size_class]++;
  ChunkHeader* chunk = carve_chunk(frame, class_frame_place(place, bytes), size_class, this);
  frame->slots_carved = static_cast<std::uint8_t>(place + 1);
  if ((place + 2) * bytes > kChunkAlign) stop_class_frame(size_class);  // every place is used
  return chunk;
}

void ThreadArena::stop_block() noexcept {
  if (small_block_ == nullptr) return;
  release_block_reference(*resource_, frames_, small_block_);
  small_block_ = nullptr;
}

void ThreadArena::stop_class_frame(unsigned size_class) noexcept {
  ChunkHeader*& frame = class_frames_[size_class];
  if (frame == nullptr) return;
  drop_class_frame_reference(frame);
  frame = nullptr;
}

// Where a chunk goes when it is given back: a place of a class frame stays with this
// arena (it is carved again before any new frame is taken) until its whole frame is
// free; anything else goes to its block, its region or upstream.
void ThreadArena::return_chunk_memory(ChunkHeader* chunk) noexcept {
  ChunkHeader* frame = frame_of(chunk->base());  // read only for a carved chunk
  if (chunk->size_class == kOverAlignedClass || !chunk->is_carved() ||
      frame->size_class == kSmallBlockClass) {
    return_chunk(*resource_, frames_, chunk);
    return;
  }
  chunk->cookie = 0;  // a stale free into this place trips the debug check
  const unsigned size_class = chunk->size_class;
  chunk->held_prev = nullptr;
  chunk->held_next = free_slots_[size_class];
  if (chunk->held_next != nullptr) chunk->held_next->held_prev = chunk;
  free_slots_[size_class] = chunk;
  drop_class_frame_reference(frame);
}

void ThreadArena::drop_class_frame_reference(ChunkHeader* frame) noexcept {
  if (frame->refcount.load(std::memory_order_relaxed) == 1) {
    // The last reference: every place carved from the frame is on the free list now.
    // Take them off before the frame goes back.
    const unsigned size_class = frame->size_class - kClassFrameBase;
    for (unsigned k = 0; k < frame->slots_carved; ++k) {
      unlink_slot(size_class, reinterpret_cast<ChunkHeader*>(frame->base() + class_frame_place(k, class_bytes(size_class))));
    }
  }
  release_block_reference(*resource_, frames_, frame);
}

void ThreadArena::unlink_slot(unsigned size_class, ChunkHeader* slot) noexcept {
  if (slot->held_prev != nullptr) {
    slot->held_prev->held_next = slot->held_next;
  } else {
    free_slots_[size_class] = slot->held_next;
  }
  if (slot->held_next != nullptr) slot->held_next->held_prev = slot->held_prev;
}

void ThreadArena::stop_carving() noexcept {
  stop_block();
  for (unsigned c = 0; c <= kLargestClassFrameClass; ++c) stop_class_frame(c);
}

void ThreadArena::reserve_or_trim(std::size_t bytes) {
  if (!reserve_budget(*resource_, bytes)) {
    trim_caches();  // this thread's free chunks may be what holds the budget
    if (!reserve_budget(*resource_, bytes)) throw std::bad_alloc();
  }
}

ChunkHeader* ThreadArena::obtain_fresh(std::size_t total_bytes, unsigned size_class) {
  reserve_or_trim(total_bytes);
  ChunkHeader* chunk = obtain_chunk(*resource_, total_bytes, size_class, this);
  hold(chunk);
  return chunk;
}

ChunkHeader*& ThreadArena::held_list_of(const ChunkHeader* chunk) noexcept {
  return in_arena_regions(chunk) ? held_ : held_own_;
}

void ThreadArena::hold(ChunkHeader* chunk) noexcept {
  ChunkHeader*& head = held_list_of(chunk);
  chunk->held_next = head;
  if (head != nullptr) head->held_prev = chunk;
  head = chunk;
}

void ThreadArena::give_back(ChunkHeader* chunk) noexcept {
  live_share_.forget(chunk);
  if (chunk->held_prev != nullptr) {
    chunk->held_prev->held_next = chunk->held_next;
  } else {
    held_list_of(chunk) = chunk->held_next;
  }
  if (chunk->held_next != nullptr) chunk->held_next->held_prev = chunk->held_prev;
  return_chunk_memory(chunk);
}

void ThreadArena::trim_caches() noexcept {
  SlowPath slow(*this);
  flush_pending_frees();
  // A current chunk with no live block would pin its region (and a half-carved block
  // its frame) with nothing in them: let both go too, so that a trimmed arena holds
  // only memory that live blocks use. The next allocation refills.
  if (current_ != nullptr &&
      current_->refcount.load(std::memory_order_acquire) == unused_credit_) {
    retire_current();
  }
  stop_carving();
  take_remote_chunks();
  cache_.clear([this](ChunkHeader* c) { give_back(c); });
  publish_cache_stats();
}

void ThreadArena::honour_trim_request() noexcept {
  if (trim_requested_.load(std::memory_order_relaxed) &&
      trim_requested_.exchange(false, std::memory_order_relaxed)) {
    trim_caches();
  }
}

void ThreadArena::publish_cache_stats() noexcept {
  cached_chunks_.store(cache_.count(), std::memory_order_relaxed);
  cached_bytes_.store(cache_.bytes(), std::memory_order_relaxed);
}

void ThreadArena::reclaim_abandoned() noexcept {
  // Even with live blocks: its thread is gone, its next user refills. Not while it
  // bumps the initial buffer (current_ null), whose rest would be lost until release().
  if (current_ != nullptr) retire_current();
  trim_caches();     // the blocks it carves from, its caches and its remote stack
  trim_requested_.store(false, std::memory_order_relaxed);
}

void ThreadArena::return_every_chunk() noexcept {
  // The arena is destroyed right after (free_everything): only what goes upstream
  // matters, and the lists destroy() checks. Every chunk (current, retired with live
  // blocks, cached locally or on the remote stack) is on one of the held lists; the
  // lists that link some of them are simply dropped.
  // Chunks of their own go back one by one (the next link is read first).
  while (held_own_ != nullptr) {
    ChunkHeader* next = held_own_->held_next;
    return_chunk(*resource_, frames_, held_own_);
    held_own_ = next;
  }
  // Everything else lies in the regions, which go whole (region.hpp: Teardown): the
  // chunks on held_, the blocks and class frames they were carved from, their free
  // places. Not one of their headers is read (test_chunks guards them).
  held_ = nullptr;
  small_block_ = nullptr;
  std::fill(std::begin(class_frames_), std::end(class_frames_), nullptr);
  std::fill(std::begin(free_slots_), std::end(free_slots_), nullptr);
  frames_.release_all(*resource_);
}

void ThreadArena::add_stats(ResourceStats& out) const noexcept {
  constexpr auto relaxed = std::memory_order_relaxed;
  out.normal_chunks_allocated += normal_allocated_.load(relaxed);
  out.oversized_chunks_allocated += oversized_allocated_.load(relaxed);
  out.chunk_reuses += reuses_.load(relaxed);
  out.chunks_released_by_owner += released_by_owner_.load(relaxed);
  out.chunks_released_by_other_threads += released_by_other_threads_.load(relaxed);
  out.cached_chunks += cached_chunks_.load(relaxed);
  out.cached_bytes += cached_bytes_.load(relaxed);
}

}  // namespace chunkpmr::detail
