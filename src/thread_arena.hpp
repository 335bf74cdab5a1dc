// SPDX-License-Identifier: BSL-1.0
// chunkpmr — one thread's arena for one resource.
//
// An arena holds a current chunk and bumps a cursor through it; it owns every chunk
// it obtained from upstream or carved from its small-class block (the "held" list)
// until that chunk is given back, and the blocks those chunks were carved from.
// The arena object itself lives as long as its resource (or until release()): when
// its thread exits it stays as it is, tagged with the dead thread's token, until
// another thread adopts it, so a chunk's `owner` pointer stays valid for as long as
// the chunk can be freed.
//
// Threading contract:
//  - At most one thread uses an arena's non-atomic state at a time: the one whose
//    live token is in `owner_token`, or whoever moved it to kBusyToken
//    (arena_lookup.hpp). Ownership only moves away from a token that is no longer
//    alive, with an acquire CAS that orders the previous user's writes first.
//  - Any thread may push onto `remote_`, bump `released_by_other_threads_`, set
//    `trim_requested_` and read the stats atomics.
#pragma once

#include "chunk_cache.hpp"
#include "chunk_header.hpp"
#include "live_share.hpp"
#include "region.hpp"

#include <chunkpmr/chunk_provider_resource.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace chunkpmr::detail {

class alignas(64) ThreadArena {
 public:
  // Obtains the arena's own memory from the resource's upstream (throws what it throws).
  static ThreadArena* create(ResourceState& resource);
  // Gives the arena's own memory back; the arena must hold no chunk any more.
  static void destroy(ThreadArena* arena) noexcept;

  ResourceState& resource() const noexcept { return *resource_; }

  // ---- Fast paths: the owning thread only ----

  // Bumps the cursor and sets `block`; false when the current chunk (or initial buffer)
  // is too small. `bytes` >= 1. No atomic, no lock: the handout is counted in
  // unused_credit_. (A bool result, not a nullable pointer, spares the caller a test.)
  bool try_bump(std::size_t bytes, std::size_t alignment, void*& block) noexcept {
    const std::uintptr_t cursor = cursor_;
    const std::size_t pad = (std::uintptr_t{0} - cursor) & (alignment - 1);
    std::size_t need;
    if (__builtin_add_overflow(pad, bytes, &need) || need > limit_ - cursor) return false;
    cursor_ = cursor + need;
    --unused_credit_;
    block = reinterpret_cast<void*>(cursor + pad);
    return true;
  }

  // Whether `address` lies in the current chunk: one unsigned comparison of its offset
  // from the chunk's start (a chunk in place 0 of a class frame is not aligned to its
  // size, so a mask would not do); with no current chunk the span is 0 and nothing
  // matches.
  bool in_current(std::uintptr_t address) const noexcept {
    return address - reinterpret_cast<std::uintptr_t>(current_) < current_span_;
  }

  // Free of a block in the current chunk by the owner: non-atomic bookkeeping, the
  // cursor rolls back over the most recent allocation (LIFO), and an emptied chunk is
  // rewound in place.
  void free_in_current(std::uintptr_t address, std::size_t bytes) noexcept {
    ++unused_credit_;
    ++frees_in_current_;
    if (address + bytes == cursor_) cursor_ = address;
    // live = refcount - unused_credit. Acquire pairs with other threads' release
    // decrements, so their last accesses to their blocks happen before the reuse.
    if (current_->refcount.load(std::memory_order_acquire) == unused_credit_) rewind_current();
  }

  // Free by the owner of a block in one of its retired (non-current, class) chunks.
  // Instead of an atomic decrement per free, consecutive frees into the same chunk are
  // counted here and subtracted in one step when the thread frees into another chunk,
  // refills, trims or exits (flush_pending_frees). Until then the chunk's count only
  // over-states its live blocks, so its release can be delayed but never premature.
  void free_in_retired(ChunkHeader* chunk) noexcept {
    if (chunk != pending_chunk_) switch_pending_chunk(chunk);
    ++pending_frees_;
  }

  // ---- Slow paths: the owning thread only ----

  // Called after try_bump missed (or skipped, for alignment above kMaxChunkAlignment):
  // refill, a one-shot chunk for a large request, or an over-aligned block.
  // Throws std::bad_alloc (budget, upstream failure, size overflow); the arena stays
  // consistent.
  void* allocate_slow(std::size_t bytes, std::size_t alignment);

  // Returns every free chunk this arena caches (local and remote) to upstream.
  void trim_caches() noexcept;

  // ---- Any thread ----

  // Drops one reference to `chunk` (a block in it was freed). `caller` is the calling
  // thread's arena for the same resource, or nullptr. Never throws.
  static void release_reference(ChunkHeader* chunk, ThreadArena* caller) noexcept;

  // Whether the arena is inside one of its slow paths on its own thread. Upstream may
  // be running then, and may itself allocate or free through this resource (a logging
  // upstream shared by every resource): such a nested call must not touch the arena's
  // lists, so the resource sends it elsewhere (a borrowed arena; the remote free path).
  // Its fast paths stay valid: every upstream call is made while the current chunk's
  // cursor, limit and credit are consistent.
  bool in_slow_path() const noexcept { return slow_depth_ != 0; }

  // Asks the owning thread to trim at its next slow path.
  void request_trim() noexcept { trim_requested_.store(true, std::memory_order_relaxed); }

  void add_stats(ResourceStats& out) const noexcept;

  // ---- Lifecycle: exclusive use (an abandoned arena taken, or the resource's end) ----

  // The owner thread is gone: retire the current chunk and return cached chunks (and
  // those waiting on remote_). Chunks still referenced stay on the held list and come
  // home through remote_. The arena stays usable by its next adopter.
  void reclaim_abandoned() noexcept;
  // Resource teardown: every held chunk goes back upstream, whatever its count (each
  // region in one call); the arena is to be destroyed next.
  void return_every_chunk() noexcept;

  // Who uses this arena (arena_lookup.hpp): a live thread token, kNoOwner or kBusyToken.
  // Read by other threads' lookups: kept off the owner's hot cache line.
  std::atomic<std::uint64_t>& owner_token() noexcept { return owner_token_; }
  const std::atomic<std::uint64_t>& owner_token() const noexcept { return owner_token_; }
  // The resource's arena list; written once before the arena is published.
  ThreadArena* next_in_resource() const noexcept { return next_in_resource_; }
  void set_next_in_resource(ThreadArena* next) noexcept { next_in_resource_ = next; }

 private:
  explicit ThreadArena(ResourceState& resource) noexcept;

  struct SlowPath {  // marks the arena as inside a slow path for the scope's duration
    explicit SlowPath(ThreadArena& arena) noexcept : arena_(arena) { ++arena_.slow_depth_; }
    ~SlowPath() { --arena_.slow_depth_; }
    SlowPath(const SlowPath&) = delete;
    SlowPath& operator=(const SlowPath&) = delete;
    ThreadArena& arena_;
  };

  // A chunk of at least class `needed` (and the ratchet's) becomes the current one.
  void refill(unsigned needed, std::size_t bytes, std::size_t alignment);
  // A chunk of `size_class` that holds the block: a cached one, else obtain_class_chunk.
  ChunkHeader* take_class_chunk(unsigned size_class, std::size_t bytes, std::size_t alignment);
  void* allocate_apart(unsigned size_class, std::size_t bytes, std::size_t alignment);
  // Pinning made the chunks a page (the cache's ceiling falls with the ratchet and rises
  // with it again; a ratchet that stayed below a page keeps its ceiling below too).
  bool shrunk() const noexcept { return cache_ceiling_ == kPinnedClass; }
  void move_ratchet(unsigned size_class, std::size_t chunk_bytes) noexcept;
  void* allocate_oversized(std::size_t bytes, std::size_t alignment);
  void* allocate_over_aligned(std::size_t bytes, std::size_t alignment);
  bool try_claim_initial_buffer(std::size_t bytes, std::size_t alignment);
  void install(ChunkHeader* chunk) noexcept;
  void retire_current() noexcept;
  void rewind_current() noexcept;
  void switch_pending_chunk(ChunkHeader* chunk) noexcept;
  void flush_pending_frees() noexcept;
  // Subtracts n references the owner held (surplus at retire, batched frees); releases
  // the chunk if that was the last of them.
  void drop_owner_references(ChunkHeader* chunk, std::uint32_t n) noexcept;
  ChunkHeader* take_cached(unsigned size_class) noexcept;
  void take_remote_chunks() noexcept;
  void release_owned(ChunkHeader* chunk) noexcept;
  // `whole_chunk`: the block needs a whole chunk of the class (needs_whole_chunk), so
  // not place 0 of a class frame.
  ChunkHeader* obtain_class_chunk(unsigned size_class, bool whole_chunk);
  ChunkHeader* obtain_frame_chunk();  // a 64 KiB class chunk: a frame of its own
  ChunkHeader* carve(unsigned size_class, bool whole_chunk);
  ChunkHeader* carve_from_block(unsigned size_class);
  ChunkHeader* carve_repeated(unsigned size_class, bool whole_chunk);
  ChunkHeader* carve_next_place(unsigned size_class) noexcept;
  void stop_block() noexcept;
  void stop_class_frame(unsigned size_class) noexcept;
  void stop_carving() noexcept;
  void return_chunk_memory(ChunkHeader* chunk) noexcept;
  void drop_class_frame_reference(ChunkHeader* frame) noexcept;
  void unlink_slot(unsigned size_class, ChunkHeader* slot) noexcept;
  ChunkHeader* obtain_fresh(std::size_t total_bytes, unsigned size_class);
  void reserve_or_trim(std::size_t bytes);
  ChunkHeader*& held_list_of(const ChunkHeader* chunk) noexcept;
  void hold(ChunkHeader* chunk) noexcept;
  void give_back(ChunkHeader* chunk) noexcept;
  void publish_cache_stats() noexcept;
  void honour_trim_request() noexcept;

  // Hot state, first cache line: owner thread only.
  std::uintptr_t cursor_ = 0;  // next free byte of the current region
  std::uintptr_t limit_ = 0;   // end of the current region (cursor_ <= limit_)
  ChunkHeader* current_ = nullptr;  // null while bumping the initial buffer, or before the first refill
  std::uintptr_t current_span_ = 0;  // current_->total_bytes; 0 with no current chunk
  std::uint32_t unused_credit_ = 0;  // kSurplus minus live owner handouts in current_
  std::uint32_t frees_in_current_ = 0;  // owner frees into current_ since it was installed
  std::uint8_t slow_depth_ = 0;  // slow paths of this arena running on its thread
  // Slow-path state packed into this line's gaps, so that the arena stays in 448 bytes:
  //  - the smallest class of the next refill;
  //  - the largest class the cache takes: it falls to the ratchet when pinning makes
  //    the arena's chunks shrink (live_share.hpp), and rises with it again;
  //  - the lowest class whose place in the small-class block is still unused (see
  //    small_block_).
  std::uint8_t ratchet_ = 0;
  std::uint8_t cache_ceiling_ = kLargestClass;
  std::uint8_t next_carve_class_ = 0;
  std::uint32_t pending_frees_ = 0;  // owner frees into pending_chunk_ not yet subtracted
  ResourceState* resource_;
  ChunkHeader* pending_chunk_ = nullptr;  // retired chunk owed pending_frees_ decrements

  // Owner thread only.
  LocalChunkCache cache_;
  // Every chunk obtained or carved and not yet given back is on one of two lists:
  // held_ those in the arena's regions (frames_), held_own_ (below) the upstream
  // requests of their own (one-shot, over-aligned, and class chunks a tight budget got
  // one by one), which teardown gives back one by one while the regions go whole.
  ChunkHeader* held_ = nullptr;
  LiveShareProbe live_share_;    // how much of the held chunks is live (live_share.hpp)
  // The small-class block this arena carves from (it holds one reference to it); with
  // next_carve_class_ above, the climb up the ratchet takes each small class once. A
  // class needed again comes from that class's class frame (one reference held while
  // places remain).
  ChunkHeader* small_block_ = nullptr;
  ChunkHeader* class_frames_[kLargestClassFrameClass + 1] = {};
  std::uint8_t class_frame_next_[kLargestClassFrameClass + 1] = {};
  // Given-back chunks of class frames that still have other chunks out, per class:
  // their places are carved again before a new class frame is taken, so a frame is not
  // pinned empty-handed. Linked through held_prev/held_next (off the held list).
  ChunkHeader* free_slots_[kLargestClassFrameClass + 1] = {};
  FrameSource frames_;  // the regions the 64 KiB frames come from

  // Shared with other threads, on their own cache lines.
  alignas(64) RemoteChunkStack remote_;
  std::atomic<bool> trim_requested_{false};
  std::atomic<std::uint64_t> owner_token_{0};
  ThreadArena* next_in_resource_ = nullptr;
  alignas(64) std::atomic<std::uint64_t> released_by_other_threads_{0};

  // Stats: written by the owner with relaxed load+store (no read-modify-write), read
  // by stats() on any thread.
  alignas(64) std::atomic<std::uint64_t> normal_allocated_{0};
  std::atomic<std::uint64_t> oversized_allocated_{0};
  std::atomic<std::uint64_t> reuses_{0};
  std::atomic<std::uint64_t> released_by_owner_{0};
  std::atomic<std::size_t> cached_chunks_{0};
  std::atomic<std::size_t> cached_bytes_{0};
  // Owner thread only, in this line's spare room (the arena fills its 448 bytes): like
  // the stats above, written only on slow paths.
  ChunkHeader* held_own_ = nullptr;
};

}  // namespace chunkpmr::detail
