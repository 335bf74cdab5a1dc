// SPDX-License-Identifier: BSL-1.0
// Test helpers: an instrumented upstream that records every block it hands out.
#pragma once

#include "../src/chunk_header.hpp"

#include <chunkpmr/chunk_provider_resource.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory_resource>
#include <mutex>
#include <new>
#include <stdexcept>
#include <vector>

namespace chunkpmr::test {

// Forwards to new_delete_resource and records every outstanding block. Deallocation
// must hand back exactly the (size, alignment) pair it was allocated with. Can be
// told to fail the k-th allocation (1-based) or every allocation from then on.
class CountingResource : public std::pmr::memory_resource {
 public:
  struct Block {
    std::size_t bytes;
    std::size_t alignment;
  };

  ~CountingResource() override {
    // Every test must have returned everything; a leak is a test failure reported by
    // the test itself. Here we only avoid leaking from the test harness.
    for (auto& [p, b] : live_) std::pmr::new_delete_resource()->deallocate(p, b.bytes, b.alignment);
  }

  std::size_t outstanding_blocks() const {
    std::lock_guard lock(mutex_);
    return live_.size();
  }
  std::size_t outstanding_bytes() const {
    std::lock_guard lock(mutex_);
    std::size_t total = 0;
    for (auto& [p, b] : live_) total += b.bytes;
    return total;
  }
  std::size_t allocations() const { return allocations_.load(); }
  std::size_t deallocations() const { return deallocations_.load(); }
  std::size_t mismatched_deallocations() const { return mismatched_.load(); }
  // The (size, alignment) of every allocation so far, in order.
  std::vector<Block> history() const {
    std::lock_guard lock(mutex_);
    return history_;
  }
  // Chunks and regions are the blocks requested with 64 KiB alignment, and regions of 16
  // frames or more: ordinary requests of whole 64 KiB frames, one more than they hold
  // (see src/region.hpp). The resource's per-thread bookkeeping and its first buffer
  // come from upstream too, with ordinary alignment and other sizes (tests that count
  // chunks keep first buffers away from 17+ frame sizes).
  static bool is_chunk_request(const Block& b) {
    constexpr std::size_t frame = 64 * 1024;
    return b.alignment == frame ||
           (b.alignment == alignof(std::max_align_t) && b.bytes >= 17 * frame && b.bytes % frame == 0);
  }
  std::vector<Block> chunk_history() const {
    std::vector<Block> chunks;
    for (const Block& b : history()) if (is_chunk_request(b)) chunks.push_back(b);
    return chunks;
  }
  std::size_t outstanding_chunks() const {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (auto& [p, b] : live_) n += is_chunk_request(b);
    return n;
  }
  std::size_t outstanding_chunks_of_size(std::size_t bytes) const {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (auto& [p, b] : live_) n += is_chunk_request(b) && b.bytes == bytes;
    return n;
  }
  std::size_t outstanding_with_alignment(std::size_t alignment) const {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (auto& [p, b] : live_) n += b.alignment == alignment;
    return n;
  }

  // Fail the k-th allocation from now (1-based); 0 disables.
  void fail_at(std::size_t k) { fail_countdown_.store(k); }
  void fail_always(bool on) { fail_always_.store(on); }

 protected:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (fail_always_.load()) throw std::bad_alloc();
    std::size_t k = fail_countdown_.load();
    if (k != 0 && fail_countdown_.fetch_sub(1) == 1) throw std::bad_alloc();
    void* p = std::pmr::new_delete_resource()->allocate(bytes, alignment);
    std::lock_guard lock(mutex_);
    live_[p] = Block{bytes, alignment};
    history_.push_back(Block{bytes, alignment});
    ++allocations_;
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    {
      std::lock_guard lock(mutex_);
      auto it = live_.find(p);
      if (it == live_.end() || it->second.bytes != bytes || it->second.alignment != alignment) {
        ++mismatched_;
        return;  // never free what we cannot vouch for
      }
      live_.erase(it);
      ++deallocations_;
    }
    std::pmr::new_delete_resource()->deallocate(p, bytes, alignment);
  }
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

 private:
  mutable std::mutex mutex_;
  std::map<void*, Block> live_;
  std::vector<Block> history_;
  std::atomic<std::size_t> allocations_{0};
  std::atomic<std::size_t> deallocations_{0};
  std::atomic<std::size_t> mismatched_{0};
  std::atomic<std::size_t> fail_countdown_{0};
  std::atomic<bool> fail_always_{false};
};

// Boost.Test's assertions are not thread-safe: worker threads count failed checks
// here, and each test asserts on its main thread that the count did not move.
inline std::atomic<int> worker_failures{0};
#define WORKER_CHECK(cond)                                                      \
  do {                                                                          \
    if (!(cond)) ::chunkpmr::test::worker_failures.fetch_add(1);               \
  } while (0)

// Allocates a block the test deliberately never frees (release() or the destructor
// reclaims it, as with monotonic_buffer_resource).
inline void allocate_and_keep(std::pmr::memory_resource& r, std::size_t bytes, std::size_t alignment) {
  static_cast<void>(r.allocate(bytes, alignment));
}

// Deterministic byte pattern for verifying block contents.
inline unsigned char pattern_byte(std::uintptr_t seed, std::size_t i) {
  return static_cast<unsigned char>((seed * 131u + i * 7u) ^ (seed >> 5));
}
inline void fill_pattern(void* p, std::size_t n, std::uintptr_t seed) {
  auto* b = static_cast<unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) b[i] = pattern_byte(seed, i);
}
inline bool check_pattern(const void* p, std::size_t n, std::uintptr_t seed) {
  auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i)
    if (b[i] != pattern_byte(seed, i)) return false;
  return true;
}

constexpr std::size_t kChunk64K = 64 * 1024;

// Options for a resource whose first allocations already come from chunks (no first
// buffer): the tests that pin chunk layout and upstream calls use it.
inline chunkpmr::ResourceOptions chunks_only(std::pmr::memory_resource* upstream) {
  return chunkpmr::ResourceOptions{.upstream = upstream, .first_buffer = false};
}

// The chunk holding a block, found by the library's own lookup (a white-box view for
// tests that pin the chunk layout): where it starts, its size, and where its 64 KiB
// frame starts (the chunk itself, or the small-class block it was carved from).
struct ChunkSpan {
  std::uintptr_t base;
  std::size_t bytes;
  std::uintptr_t frame;
};
inline ChunkSpan chunk_span(const void* p) {
  const chunkpmr::detail::ChunkHeader* chunk = chunkpmr::detail::chunk_of(p);
  return {chunk->base(), chunk->total_bytes,
          reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{kChunk64K - 1}};
}
// A budget below one 64 KiB small-class block: every chunk is then one of its own, as
// upstream sees it (tests of cache rules that watch single chunks come and go).
constexpr std::size_t kNoBlockBudget = 60000;

}  // namespace chunkpmr::test
