// The resources compared in the benchmarks, each over an upstream that tracks the
// bytes it hands out (so footprint is reported next to time).
#pragma once

#include <chunkpmr/chunk_provider_resource.hpp>

#include <atomic>
#include <cstddef>
#include <memory>
#include <memory_resource>
#include <string>

namespace chunkpmr::bench {

// new/delete underneath, with relaxed counters of current and peak bytes.
class TrackingUpstream : public std::pmr::memory_resource {
 public:
  std::size_t peak_bytes() const { return peak_.load(std::memory_order_relaxed); }
  std::size_t current_bytes() const { return current_.load(std::memory_order_relaxed); }

 protected:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    void* p = std::pmr::new_delete_resource()->allocate(bytes, alignment);
    const std::size_t now = current_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    std::size_t peak = peak_.load(std::memory_order_relaxed);
    while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    current_.fetch_sub(bytes, std::memory_order_relaxed);
    std::pmr::new_delete_resource()->deallocate(p, bytes, alignment);
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override { return this == &o; }

 private:
  std::atomic<std::size_t> current_{0};
  std::atomic<std::size_t> peak_{0};
};

enum class Peer { chunkpmr, monotonic, unsync_pool, sync_pool, new_delete };

inline const char* peer_name(Peer p) {
  switch (p) {
    case Peer::chunkpmr: return "chunkpmr";
    case Peer::monotonic: return "std_monotonic";
    case Peer::unsync_pool: return "std_unsync_pool";
    case Peer::sync_pool: return "std_sync_pool";
    case Peer::new_delete: return "new_delete";
  }
  return "?";
}

// One resource under test with its tracking upstream. new_delete is the tracking
// upstream itself (glibc malloc, counted).
class Subject {
 public:
  explicit Subject(Peer peer) : peer_(peer) {
    switch (peer) {
      case Peer::chunkpmr: resource_ = std::make_unique<ChunkProviderResource>(&upstream_); break;
      case Peer::monotonic:
        resource_ = std::make_unique<std::pmr::monotonic_buffer_resource>(&upstream_);
        break;
      case Peer::unsync_pool:
        resource_ = std::make_unique<std::pmr::unsynchronized_pool_resource>(&upstream_);
        break;
      case Peer::sync_pool:
        resource_ = std::make_unique<std::pmr::synchronized_pool_resource>(&upstream_);
        break;
      case Peer::new_delete: break;
    }
  }
  std::pmr::memory_resource* get() { return resource_ ? resource_.get() : &upstream_; }
  bool frees_individually() const { return peer_ != Peer::monotonic; }
  // Drops everything at once where the resource can; false otherwise.
  bool release() {
    switch (peer_) {
      case Peer::chunkpmr: static_cast<ChunkProviderResource*>(resource_.get())->release(); return true;
      case Peer::monotonic: static_cast<std::pmr::monotonic_buffer_resource*>(resource_.get())->release(); return true;
      case Peer::unsync_pool: static_cast<std::pmr::unsynchronized_pool_resource*>(resource_.get())->release(); return true;
      case Peer::sync_pool: static_cast<std::pmr::synchronized_pool_resource*>(resource_.get())->release(); return true;
      case Peer::new_delete: return false;
    }
    return false;
  }
  const TrackingUpstream& upstream() const { return upstream_; }

 private:
  Peer peer_;
  TrackingUpstream upstream_;
  std::unique_ptr<std::pmr::memory_resource> resource_;
};

}  // namespace chunkpmr::bench
