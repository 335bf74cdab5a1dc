// SPDX-License-Identifier: BSL-1.0
// The resources compared in the benchmarks, each over an upstream that tracks the
// bytes it hands out (so footprint is reported next to time).
#pragma once

#include <chunkpmr/boost_container.hpp>
#include <chunkpmr/chunk_provider_resource.hpp>

#include <boost/container/pmr/monotonic_buffer_resource.hpp>
#include <boost/container/pmr/synchronized_pool_resource.hpp>
#include <boost/container/pmr/unsynchronized_pool_resource.hpp>
#include <oneapi/tbb/scalable_allocator.h>

#include <atomic>
#include <cstdlib>
#include <cstddef>
#include <memory>
#include <memory_resource>
#include <string>

namespace chunkpmr::bench {

// chunkpmr's options in the benchmarks: the defaults, except max_chunk_bytes when the
// environment sets CHUNKPMR_BENCH_MAX_CHUNK_BYTES (bench/run_report.sh measures the
// footprint against chunk size with it).
inline std::size_t bench_max_chunk_bytes() {
  if (const char* v = std::getenv("CHUNKPMR_BENCH_MAX_CHUNK_BYTES")) return std::strtoull(v, nullptr, 10);
  return ResourceOptions{}.max_chunk_bytes;
}

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

// A Boost.Container resource seen as a std::pmr one, so std containers can use it.
class StdFromBoost : public std::pmr::memory_resource {
 public:
  explicit StdFromBoost(boost::container::pmr::memory_resource& r) : r_(r) {}

 protected:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    return r_.allocate(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    r_.deallocate(p, bytes, alignment);
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override { return this == &o; }

 private:
  boost::container::pmr::memory_resource& r_;
};

enum class Peer {
  chunkpmr,
  std_monotonic,
  std_unsync_pool,
  std_sync_pool,
  boost_monotonic,
  boost_unsync_pool,
  boost_sync_pool,
  new_delete,  // the process's malloc: glibc, or mimalloc / jemalloc under LD_PRELOAD
  tbb_scalable,
};

inline constexpr Peer kAllPeers[] = {Peer::chunkpmr,        Peer::std_monotonic,
                                     Peer::std_unsync_pool, Peer::std_sync_pool,
                                     Peer::boost_monotonic, Peer::boost_unsync_pool,
                                     Peer::boost_sync_pool, Peer::new_delete,
                                     Peer::tbb_scalable};

inline const char* peer_name(Peer p) {
  switch (p) {
    case Peer::chunkpmr: return "chunkpmr";
    case Peer::std_monotonic: return "std_monotonic";
    case Peer::std_unsync_pool: return "std_unsync_pool";
    case Peer::std_sync_pool: return "std_sync_pool";
    case Peer::boost_monotonic: return "boost_monotonic";
    case Peer::boost_unsync_pool: return "boost_unsync_pool";
    case Peer::boost_sync_pool: return "boost_sync_pool";
    case Peer::new_delete: return "new_delete";
    case Peer::tbb_scalable: return "tbb_scalable";
  }
  return "?";
}

inline bool thread_safe(Peer p) {
  return p == Peer::chunkpmr || p == Peer::std_sync_pool || p == Peer::boost_sync_pool ||
         p == Peer::new_delete || p == Peer::tbb_scalable;
}

// Resources with an upstream report the bytes they held from it; malloc-like peers are
// their own upstream (footprint not observable here).
inline bool has_upstream(Peer p) { return p != Peer::new_delete && p != Peer::tbb_scalable; }

// One resource under test with its tracking upstream.
class Subject {
 public:
  explicit Subject(Peer peer) : peer_(peer), boost_upstream_(upstream_) {
    namespace bpmr = boost::container::pmr;
    switch (peer) {
      case Peer::chunkpmr: own(std::make_unique<ChunkProviderResource>(ResourceOptions{
          .upstream = &upstream_, .max_chunk_bytes = bench_max_chunk_bytes()})); break;
      case Peer::std_monotonic: own(std::make_unique<std::pmr::monotonic_buffer_resource>(&upstream_)); break;
      case Peer::std_unsync_pool: own(std::make_unique<std::pmr::unsynchronized_pool_resource>(&upstream_)); break;
      case Peer::std_sync_pool: own(std::make_unique<std::pmr::synchronized_pool_resource>(&upstream_)); break;
      case Peer::boost_monotonic: own_boost(std::make_unique<bpmr::monotonic_buffer_resource>(&boost_upstream_)); break;
      case Peer::boost_unsync_pool: own_boost(std::make_unique<bpmr::unsynchronized_pool_resource>(&boost_upstream_)); break;
      case Peer::boost_sync_pool: own_boost(std::make_unique<bpmr::synchronized_pool_resource>(&boost_upstream_)); break;
      case Peer::new_delete: resource_ = std::pmr::new_delete_resource(); break;
      case Peer::tbb_scalable: resource_ = tbb::scalable_memory_resource(); break;
    }
  }
  std::pmr::memory_resource* get() { return resource_; }
  Peer peer() const { return peer_; }

  // Drops everything at once where the resource can; false otherwise.
  bool release() {
    namespace bpmr = boost::container::pmr;
    switch (peer_) {
      case Peer::chunkpmr: static_cast<ChunkProviderResource*>(owned_.get())->release(); return true;
      case Peer::std_monotonic: static_cast<std::pmr::monotonic_buffer_resource*>(owned_.get())->release(); return true;
      case Peer::std_unsync_pool: static_cast<std::pmr::unsynchronized_pool_resource*>(owned_.get())->release(); return true;
      case Peer::std_sync_pool: static_cast<std::pmr::synchronized_pool_resource*>(owned_.get())->release(); return true;
      case Peer::boost_monotonic: static_cast<bpmr::monotonic_buffer_resource*>(boost_owned_.get())->release(); return true;
      case Peer::boost_unsync_pool: static_cast<bpmr::unsynchronized_pool_resource*>(boost_owned_.get())->release(); return true;
      case Peer::boost_sync_pool: static_cast<bpmr::synchronized_pool_resource*>(boost_owned_.get())->release(); return true;
      case Peer::new_delete:
      case Peer::tbb_scalable: return false;
    }
    return false;
  }
  const TrackingUpstream& upstream() const { return upstream_; }

 private:
  void own(std::unique_ptr<std::pmr::memory_resource> r) {
    owned_ = std::move(r);
    resource_ = owned_.get();
  }
  void own_boost(std::unique_ptr<boost::container::pmr::memory_resource> r) {
    boost_owned_ = std::move(r);
    adaptor_ = std::make_unique<StdFromBoost>(*boost_owned_);
    resource_ = adaptor_.get();
  }

  Peer peer_;
  TrackingUpstream upstream_;
  BoostMemoryResource boost_upstream_;
  std::unique_ptr<std::pmr::memory_resource> owned_;
  std::unique_ptr<boost::container::pmr::memory_resource> boost_owned_;
  std::unique_ptr<StdFromBoost> adaptor_;
  std::pmr::memory_resource* resource_ = nullptr;
};

}  // namespace chunkpmr::bench
