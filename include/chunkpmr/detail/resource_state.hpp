// chunkpmr — the per-resource state the mechanism in src/ works on.
//
// Not part of the public interface: it is declared in a header only so that
// ChunkProviderResource can hold it by value, which keeps construction free of
// any allocation. Nothing here is meant to be touched by users.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <mutex>

namespace chunkpmr::detail {

class ThreadArena;
struct PassThroughBlock;

struct ResourceState {
  // Configuration, fixed at construction.
  std::pmr::memory_resource* upstream = nullptr;
  std::size_t byte_budget = 0;
  std::size_t max_normal_alloc = 0;
  std::size_t max_cached_bytes_per_thread = 0;
  unsigned initial_class = 0;  // first size class of every arena (from initial_chunk_bytes)

  // Never reused across the process, and renewed by release(): keys every thread's
  // arena lookup, so a stale thread-local entry can never match a live resource.
  // Written only while no other thread uses the resource (construction, release()).
  std::uint64_t id = 0;

  // Initial buffer (monotonic drop-in). The first refill on any thread claims it with
  // one exchange; it is bumped by that thread only and never reclaimed piecewise.
  std::byte* initial_buffer = nullptr;
  std::size_t initial_buffer_size = 0;
  std::atomic<bool> initial_buffer_claimed{false};

  // Bytes held from upstream by chunks (live and cached): the budget and the gauge.
  std::atomic<std::size_t> bytes_held{0};
  std::atomic<std::size_t> peak_bytes_held{0};

  // Guarded by the process-wide lifetime mutex (src/thread_registry.cpp).
  ThreadArena* arenas = nullptr;           // every arena of this resource (attached or not)
  ThreadArena* detached_arenas = nullptr;  // arenas whose thread left, waiting for adoption
  ResourceState* live_prev = nullptr;      // links in the list of live resources
  ResourceState* live_next = nullptr;
  bool registered = false;                 // on the live list (a thread has attached)

  // Allocations made by a thread after its own exit hook ran go through this arena,
  // one at a time under the mutex (rare, never on a fast path).
  std::mutex fallback_mutex;
  ThreadArena* fallback_arena = nullptr;

  // Room for the first arena, so that a resource used by one thread asks upstream for
  // chunks only (and serves an initial buffer over null_memory_resource()). The size is
  // checked against the real type in src/thread_arena.cpp.
  static constexpr std::size_t kInlineArenaBytes = 448;
  alignas(64) std::byte inline_arena[kInlineArenaBytes];
  std::atomic<bool> inline_arena_in_use{false};

  // Over-aligned (> 16 KiB) allocations forwarded to upstream, tracked so that
  // release() and the destructor give them back too.
  std::mutex passthrough_mutex;
  PassThroughBlock* passthrough_blocks = nullptr;
  std::atomic<std::uint64_t> passthrough_allocations{0};
};

}  // namespace chunkpmr::detail
