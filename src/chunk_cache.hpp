// SPDX-License-Identifier: BSL-1.0
// chunkpmr — the two free-chunk caches of a thread arena.
//
// LocalChunkCache: a plain LIFO list of free chunks, touched only by the thread that
// owns the arena. It keeps a class floor that only rises: when the arena starts asking
// for a larger class, smaller cached chunks are useless to it and go back upstream,
// and so does any later chunk below the floor. Every cached chunk is therefore at
// least as large as any class the arena asks for, so a pop never has to search.
//
// RemoteChunkStack: where other threads put chunks they emptied. A lock-free
// multi-producer, single-consumer stack: producers only push; the owner only takes
// the whole list with one exchange. With no pop of a single node there is no ABA and
// no read of a node another thread might free, and a pushed chunk is owned by nobody
// but the list until the owner takes it.
#pragma once

#include "chunk_header.hpp"
#include "test_hooks.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace chunkpmr::detail {

class LocalChunkCache {
 public:
  unsigned floor() const noexcept { return floor_; }
  std::size_t bytes() const noexcept { return bytes_; }
  std::size_t count() const noexcept { return count_; }

  // Precondition: c->size_class is a class >= floor() (the caller decides eligibility).
  void push(ChunkHeader* c) noexcept {
    c->next.store(head_, std::memory_order_relaxed);
    head_ = c;
    bytes_ += c->total_bytes;
    ++count_;
  }

  ChunkHeader* pop() noexcept {
    ChunkHeader* c = head_;
    if (c != nullptr) {
      head_ = c->next.load(std::memory_order_relaxed);
      bytes_ -= c->total_bytes;
      --count_;
    }
    return c;
  }

  // Raises the floor to `size_class` and hands every chunk below it to `give_back`.
  template <class GiveBack>
  void raise_floor(unsigned size_class, GiveBack&& give_back) noexcept {
    if (size_class <= floor_) return;
    floor_ = size_class;
    ChunkHeader* keep = nullptr;
    ChunkHeader* c = head_;
    head_ = nullptr;
    bytes_ = 0;
    count_ = 0;
    while (c != nullptr) {
      ChunkHeader* next = c->next.load(std::memory_order_relaxed);
      if (c->size_class < floor_) {
        give_back(c);
      } else {
        c->next.store(keep, std::memory_order_relaxed);
        keep = c;
      }
      c = next;
    }
    while (keep != nullptr) {
      ChunkHeader* next = keep->next.load(std::memory_order_relaxed);
      push(keep);
      keep = next;
    }
  }

  // Empties the cache into `give_back`.
  template <class GiveBack>
  void clear(GiveBack&& give_back) noexcept {
    while (ChunkHeader* c = pop()) give_back(c);
  }

  // Back to the state of a new arena (after every chunk was returned elsewhere).
  void reset() noexcept {
    head_ = nullptr;
    bytes_ = 0;
    count_ = 0;
    floor_ = 0;
  }

 private:
  ChunkHeader* head_ = nullptr;
  std::size_t bytes_ = 0;
  std::uint32_t count_ = 0;  // for stats only; each cached chunk holds at least 448 B
  unsigned floor_ = 0;
};

class RemoteChunkStack {
 public:
  // Any thread. The release on a successful exchange publishes everything the pusher
  // did to the chunk (and, through the refcount's acquire, every freeing thread's
  // writes) to the owner's acquiring take_all().
  void push(ChunkHeader* c) noexcept {
    ChunkHeader* head = head_.load(std::memory_order_relaxed);
    CHUNKPMR_TEST_HOOK(remote_push_before_cas, c);
    do {
      c->next.store(head, std::memory_order_relaxed);
    } while (!head_.compare_exchange_weak(head, c, std::memory_order_release,
                                          std::memory_order_relaxed));
  }

  // Owner thread only (or whoever has the arena to itself: arena_lookup.hpp).
  ChunkHeader* take_all() noexcept {
    if (head_.load(std::memory_order_relaxed) == nullptr) return nullptr;
    return head_.exchange(nullptr, std::memory_order_acquire);
  }

 private:
  std::atomic<ChunkHeader*> head_{nullptr};
};

}  // namespace chunkpmr::detail
