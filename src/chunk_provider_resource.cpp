// SPDX-License-Identifier: BSL-1.0
// chunkpmr — the resource façade: routing of each request, construction, release,
// trim, stats.
#include <chunkpmr/chunk_provider_resource.hpp>

#include "arena_lookup.hpp"
#include "check.hpp"
#include "chunk_source.hpp"
#include "first_buffer.hpp"
#include "thread_arena.hpp"

#include <algorithm>
#include <bit>
#include <new>
#include <stdexcept>

namespace chunkpmr {
namespace detail {

namespace {

// A size no object can have goes to upstream exactly as asked, so that upstream's own
// exception propagates (as monotonic_buffer_resource does); if upstream returns
// anyway, its block is given back and std::bad_alloc thrown.
[[noreturn, gnu::noinline]] void forward_impossible(ResourceState& r, std::size_t bytes,
                                                    std::size_t alignment) {
  void* p = r.upstream->allocate(bytes, alignment);
  r.upstream->deallocate(p, bytes, alignment);
  throw std::bad_alloc();
}

// An over-aligned block is held by the arena that made it, like a one-shot chunk
// (size_classes.hpp): its header sits after the block. Out of line, like allocate_slow,
// to keep the routing functions' fast paths free of register saves.
[[gnu::noinline]] void deallocate_over_aligned(ResourceState& r, void* p, std::size_t bytes,
                                               [[maybe_unused]] std::size_t alignment) noexcept {
  auto* header = reinterpret_cast<ChunkHeader*>(static_cast<std::byte*>(p) +
                                                over_aligned_header_offset(bytes));
  CHUNKPMR_ASSERT(header->cookie_ok() && header->size_class == kOverAlignedClass &&
                      header->owner != nullptr && &header->owner->resource() == &r &&
                      header->total_bytes == over_aligned_header_offset(bytes) + kHeaderBytes,
                  "chunkpmr: deallocate of an over-aligned block this resource did not hand "
                  "out, or with a different size than it was allocated with");
  CHUNKPMR_ASSERT(header->slots_carved == std::countr_zero(alignment),
                  "chunkpmr: deallocate of an over-aligned block with a different "
                  "alignment than it was allocated with");
  ThreadArena* mine = arena_for_free(r);
  // From upstream while this thread's arena is in a slow path: the path of a thread
  // without an arena (the block comes home later), as for any other block.
  if (mine != nullptr && mine->in_slow_path()) mine = nullptr;
  ThreadArena::release_reference(header, mine);
}

// A thread that cannot own an arena (past its exit hook, say) borrows one for this
// allocation only. Frees of the block take the path of a thread without an arena.
void* allocate_borrowed(ResourceState& r, std::size_t bytes, std::size_t alignment) {
  struct Borrowed {
    ThreadArena* arena;
    ~Borrowed() { end_borrow(arena); }
  } borrowed{begin_borrow(r)};
  if (void* p; alignment <= kMaxChunkAlignment && borrowed.arena->try_bump(bytes, alignment, p)) {
    return p;
  }
  return borrowed.arena->allocate_slow(bytes, alignment);
}

[[gnu::noinline]] void* allocate_slow(ResourceState& r, std::size_t bytes,
                                      std::size_t alignment) {
  if (bytes > kMaxObjectBytes) [[unlikely]] forward_impossible(r, bytes, alignment);
  ThreadArena* arena = find_or_attach_arena(r);
  // No arena of its own (past its exit hook, or attaching right now), or called from
  // upstream while its own arena is in a slow path: this allocation borrows one.
  if (arena == nullptr || arena->in_slow_path()) return allocate_borrowed(r, bytes, alignment);
  // Over-aligned blocks never come from a chunk (deallocate routes them by alignment).
  if (void* p; alignment <= kMaxChunkAlignment && arena->try_bump(bytes, alignment, p)) return p;
  return arena->allocate_slow(bytes, alignment);
}

}  // namespace
}  // namespace detail

using detail::ResourceState;
using detail::ThreadArena;

namespace {

std::size_t checked_max_normal_alloc(std::size_t value) {
  if (value > detail::kChunkAlign - detail::kHeaderBytes) {
    throw std::invalid_argument("chunkpmr: max_normal_alloc must be at most 65472");
  }
  return value;
}

// The configuration from options already known to be valid; allocates nothing.
void configure(ResourceState& state, const ResourceOptions& options) noexcept {
  state.upstream = options.upstream;
  state.byte_budget = options.byte_budget;
  state.max_normal_alloc = options.max_normal_alloc;
  state.max_cached_bytes_per_thread = options.max_cached_bytes_per_thread;
  state.initial_size = options.initial_chunk_bytes;
  state.first_buffer = options.first_buffer;
  // Without a first buffer, an empty user buffer takes its place: claimed, never fits.
  if (!options.first_buffer) state.user_buffer = reinterpret_cast<std::byte*>(&state);
  state.initial_class = detail::class_for_bytes(
      std::min(options.initial_chunk_bytes, detail::kChunkAlign));
  // The largest class that is not above max_chunk_bytes (at least the smallest class).
  state.max_chunk_bytes = options.max_chunk_bytes;
  const std::size_t cap = std::clamp(options.max_chunk_bytes, detail::kMinChunkBytes,
                                     detail::kChunkAlign);
  state.max_class = static_cast<unsigned>(std::bit_width(cap / detail::kMinChunkBytes)) - 1;
  state.initial_class = std::min(state.initial_class, state.max_class);
  state.id = detail::new_resource_id();
}

}  // namespace

ChunkProviderResource::ChunkProviderResource(const ResourceOptions& options) {
  if (options.upstream == nullptr) {
    throw std::invalid_argument("chunkpmr: upstream resource must not be null");
  }
  checked_max_normal_alloc(options.max_normal_alloc);
  configure(state_, options);
}

ChunkProviderResource::ChunkProviderResource() noexcept
    : ChunkProviderResource(std::pmr::get_default_resource()) {}

// The defaults are valid, so only the upstream can be wrong, and that is a precondition.
ChunkProviderResource::ChunkProviderResource(std::pmr::memory_resource* upstream) noexcept {
  CHUNKPMR_ASSERT(upstream != nullptr, "chunkpmr: upstream resource must not be null");
  configure(state_, ResourceOptions{.upstream = upstream});
}

ChunkProviderResource::ChunkProviderResource(std::size_t initial_size) noexcept
    : ChunkProviderResource(initial_size, std::pmr::get_default_resource()) {}

ChunkProviderResource::ChunkProviderResource(std::size_t initial_size,
                                             std::pmr::memory_resource* upstream) noexcept {
  CHUNKPMR_ASSERT(upstream != nullptr, "chunkpmr: upstream resource must not be null");
  configure(state_, ResourceOptions{.upstream = upstream, .initial_chunk_bytes = initial_size});
}

ChunkProviderResource::ChunkProviderResource(void* buffer, std::size_t buffer_size) noexcept
    : ChunkProviderResource(buffer, buffer_size, std::pmr::get_default_resource()) {}

ChunkProviderResource::ChunkProviderResource(void* buffer, std::size_t buffer_size,
                                             std::pmr::memory_resource* upstream) noexcept
    : ChunkProviderResource(upstream) {
  if (buffer != nullptr) {
    state_.user_buffer = static_cast<std::byte*>(buffer);
    state_.user_buffer_size = buffer_size;
    state_.initial_base.store(reinterpret_cast<std::uintptr_t>(buffer), std::memory_order_relaxed);
    state_.initial_bytes.store(buffer_size, std::memory_order_relaxed);
  }
}

ResourceOptions ChunkProviderResource::options() const noexcept {
  return ResourceOptions{.upstream = state_.upstream,
                         .byte_budget = state_.byte_budget,
                         .max_normal_alloc = state_.max_normal_alloc,
                         .initial_chunk_bytes = state_.initial_size,
                         .max_cached_bytes_per_thread = state_.max_cached_bytes_per_thread,
                         .first_buffer = state_.first_buffer,
                         .max_chunk_bytes = state_.max_chunk_bytes};
}

ChunkProviderResource::~ChunkProviderResource() {
  free_everything();
  CHUNKPMR_ASSERT(state_.arenas.load(std::memory_order_relaxed) == nullptr,
                  "chunkpmr: upstream allocated from the resource it serves while that "
                  "resource was being destroyed");
  // Every region, chunk of its own, over-aligned block and the first buffer went back
  // with its bytes: a teardown path that forgot one shows here (destroy()'s own check
  // only sees the lists return_every_chunk() has just emptied).
  CHUNKPMR_ASSERT(state_.bytes_held.load(std::memory_order_relaxed) == 0,
                  "chunkpmr: memory still held from upstream after the resource gave "
                  "everything back");
}

void ChunkProviderResource::release() { free_everything(); }

// No lock: the caller guarantees no other thread uses the resource, and an exiting
// thread never touches arenas (thread_identity.hpp). Upstream may re-enter chunkpmr,
// this resource included (a logging upstream that allocates from every resource): a
// new id first makes every thread's cached arena for it stale, and the arenas and the
// first buffer leave the resource before any memory goes, so a call made from within
// upstream finds none of them. It attaches a fresh arena, whose blocks outlive
// release(). (Blocks from before are invalid once release() begins: freeing one from
// within it is a use after release().)
void ChunkProviderResource::free_everything() noexcept {
  state_.id = detail::new_resource_id();
  ThreadArena* arena = state_.arenas.exchange(nullptr, std::memory_order_acquire);
  detail::reset_initial_buffer(state_);
  while (arena != nullptr) {
    ThreadArena* next = arena->next_in_resource();
    arena->return_every_chunk();
    ThreadArena::destroy(arena);
    arena = next;
  }
}

void ChunkProviderResource::trim() {
  ThreadArena* mine = detail::find_own_arena(state_);
  if (mine != nullptr) mine->trim_caches();
  for (ThreadArena* arena = state_.arenas.load(std::memory_order_acquire); arena != nullptr;
       arena = arena->next_in_resource()) {
    if (arena == mine) continue;
    if (detail::try_take_abandoned(arena)) {
      arena->reclaim_abandoned();  // its thread is gone: we have it to ourselves
      detail::end_borrow(arena);
    } else {
      arena->request_trim();  // its thread trims at its next slow path
    }
  }
}

ResourceStats ChunkProviderResource::stats() const noexcept {
  ResourceStats s;
  s.bytes_held = state_.bytes_held.load(std::memory_order_relaxed);
  s.peak_bytes_held = state_.peak_bytes_held.load(std::memory_order_relaxed);
  s.passthrough_allocations = state_.passthrough_allocations.load(std::memory_order_relaxed);
  for (const ThreadArena* arena = state_.arenas.load(std::memory_order_acquire);
       arena != nullptr; arena = arena->next_in_resource()) {
    arena->add_stats(s);
    if (detail::arena_owned_by_running_thread(arena)) ++s.live_thread_arenas;
  }
  return s;
}

void* ChunkProviderResource::do_allocate(std::size_t bytes, std::size_t alignment) {
  CHUNKPMR_ASSERT(std::has_single_bit(alignment), "chunkpmr: alignment must be a power of two");
  if (alignment > detail::kMaxChunkAlignment) [[unlikely]] {
    return detail::allocate_slow(state_, bytes, alignment);
  }
  bytes += (bytes == 0);  // zero-byte requests get a distinct one-byte block
  const detail::ThreadState& ts = detail::t_thread;
  if (ts.mru_id == state_.id) [[likely]] {
    if (void* p; ts.mru_arena->try_bump(bytes, alignment, p)) [[likely]] return p;
  }
  return detail::allocate_slow(state_, bytes, alignment);
}

void ChunkProviderResource::do_deallocate(void* p, std::size_t bytes,
                                          std::size_t alignment) noexcept {
  CHUNKPMR_ASSERT(std::has_single_bit(alignment), "chunkpmr: alignment must be a power of two");
  if (alignment > detail::kMaxChunkAlignment) [[unlikely]] {
    detail::deallocate_over_aligned(state_, p, bytes, alignment);
    return;
  }
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  // Blocks from the initial buffer are never reclaimed one by one (as in monotonic).
  if (detail::in_initial_buffer(state_, address)) [[unlikely]] return;
  bytes += (bytes == 0);
#if CHUNKPMR_DEBUG_CHECKS_ENABLED
  {
    const detail::ChunkHeader* frame = detail::frame_of(address);
    CHUNKPMR_ASSERT(frame->cookie_ok(),
                    "chunkpmr: deallocate of a pointer this resource did not hand out "
                    "(or of a block whose chunk was already returned)");
    const detail::ChunkHeader* chunk = detail::chunk_of(p);
    CHUNKPMR_ASSERT(chunk->cookie_ok() && chunk->owner != nullptr &&
                        &chunk->owner->resource() == &state_,
                    "chunkpmr: deallocate of a pointer this resource did not hand out "
                    "(or of a block whose chunk was already returned)");
    CHUNKPMR_ASSERT(address + bytes <= chunk->end(),
                    "chunkpmr: deallocate with a size larger than the block");
  }
#endif
  ThreadArena* mine = detail::arena_for_free(state_);
  if (mine != nullptr && mine->in_current(address)) {
    mine->free_in_current(address, bytes);
    return;
  }
  detail::ChunkHeader* chunk = detail::chunk_of(p);
  // A thread with no arena here yet remembers whose block it freed: when it attaches,
  // it adopts that arena first if its owner is gone (arena_lookup.cpp).
  if (mine == nullptr) detail::t_thread.freed_from = chunk->owner;
  // A free from upstream while this thread's arena is in a slow path takes the path of
  // a thread without an arena: one atomic decrement, the chunk comes home later.
  if (mine != nullptr && mine->in_slow_path()) mine = nullptr;
  // One-shot chunks go back at once; class chunks batch their owner's frees.
  if (mine != nullptr && chunk->owner == mine && chunk->size_class != detail::kOversizedClass) {
    mine->free_in_retired(chunk);
    return;
  }
  ThreadArena::release_reference(chunk, mine);
}

bool ChunkProviderResource::do_is_equal(const std::pmr::memory_resource& other) const noexcept {
  return this == &other;
}

}  // namespace chunkpmr
