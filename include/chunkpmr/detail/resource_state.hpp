// SPDX-License-Identifier: BSL-1.0
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

namespace chunkpmr::detail {

class ThreadArena;

struct ResourceState {
  // Configuration, fixed at construction. ChunkProviderResource::options() reads the
  // ResourceOptions back from these fields (and first_buffer), so they keep the values
  // as given: the resource stores no second copy.
  std::pmr::memory_resource* upstream = nullptr;
  std::size_t byte_budget = 0;
  std::size_t max_normal_alloc = 0;
  std::size_t max_cached_bytes_per_thread = 0;
  std::size_t initial_size = 0;  // size of the first buffer (at least; see first_buffer.hpp)
  unsigned initial_class = 0;    // first size class of every arena (from initial_size)
  unsigned max_class = 0;        // the ratchet's top class (from max_chunk_bytes)
  std::size_t max_chunk_bytes = 0;  // ResourceOptions::max_chunk_bytes, for options() only

  // Never reused across the process, and renewed by release(): keys every thread's
  // arena lookup, so a stale thread-local entry can never match a live resource.
  // Written only while no other thread uses the resource (construction, release()).
  std::uint64_t id = 0;

  // The initial buffer: the user's (buffer constructors), or else the first buffer,
  // obtained from upstream by the first refill of any thread. Frees of blocks inside
  // [initial_base, initial_base + initial_bytes) are ignored, as in monotonic.
  // The range is published by storing the base first and then the size with release;
  // readers load the size (acquire) before the base, so they never pair a new size
  // with an old base (src/first_buffer.cpp).
  std::byte* user_buffer = nullptr;
  std::size_t user_buffer_size = 0;
  std::atomic<std::uintptr_t> initial_base{0};
  std::atomic<std::size_t> initial_bytes{0};
  std::atomic<bool> initial_claimed{false};
  bool first_buffer = true;  // ResourceOptions::first_buffer, for options() only (in padding)
  // The first buffer as asked of upstream (0 bytes: none), given back by release().
  std::size_t first_buffer_bytes = 0;
  std::size_t first_buffer_alignment = 0;

  // Bytes held from upstream by chunks and the first buffer (live and cached): the
  // budget and the gauge.
  std::atomic<std::size_t> bytes_held{0};
  std::atomic<std::size_t> peak_bytes_held{0};

  // Every arena of this resource: a lock-free list, pushed at the head and never
  // unlinked while the resource lives (src/arena_lookup.hpp).
  std::atomic<ThreadArena*> arenas{nullptr};

  // Room for the first arena, so that a resource used by one thread asks upstream for
  // chunks only (and serves an initial buffer over null_memory_resource()). The arena
  // is placed at the first 64-byte boundary inside; the resource itself needs no more
  // than ordinary alignment, so `new ChunkProviderResource` is a plain operator new.
  // The size is checked against the real type in src/thread_arena.cpp.
  static constexpr std::size_t kInlineArenaBytes = 448;
  static constexpr std::size_t kInlineArenaAlign = 64;
  std::byte inline_arena_storage[kInlineArenaBytes + kInlineArenaAlign - 1];
  std::atomic<bool> inline_arena_in_use{false};
  void* inline_arena() noexcept {
    const auto address = reinterpret_cast<std::uintptr_t>(inline_arena_storage);
    return inline_arena_storage + ((kInlineArenaAlign - address % kInlineArenaAlign) % kInlineArenaAlign);
  }

  // Over-aligned (> 16 KiB) allocations, each an upstream request of its own (held by
  // the arena that made it): a counter for stats(), bumped by any thread.
  std::atomic<std::uint64_t> passthrough_allocations{0};
};

}  // namespace chunkpmr::detail
