// chunkpmr — run Boost.Container's pmr containers and pool resources on any
// std::pmr::memory_resource, typically a ChunkProviderResource.
//
//   chunkpmr::ChunkProviderResource chunks;
//   chunkpmr::BoostMemoryResource boost_chunks(chunks);
//   boost::container::pmr::unsynchronized_pool_resource pool(&boost_chunks);
//   boost::container::pmr::vector<int> v(&pool);
//
// The wrapper is a thin forwarder: it holds a reference and adds no state, so the
// wrapped resource must outlive it and everything allocated through it.
#pragma once

#include <boost/container/pmr/memory_resource.hpp>

#include <cstddef>
#include <memory_resource>

namespace chunkpmr {

class BoostMemoryResource : public boost::container::pmr::memory_resource {
 public:
  explicit BoostMemoryResource(std::pmr::memory_resource& resource) noexcept
      : resource_(&resource) {}

  std::pmr::memory_resource& resource() const noexcept { return *resource_; }

 protected:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    return resource_->allocate(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    resource_->deallocate(p, bytes, alignment);
  }
  // Equal when both forward to resources that compare equal (for a
  // ChunkProviderResource: the same object).
  bool do_is_equal(const boost::container::pmr::memory_resource& other) const noexcept override {
    const auto* wrapper = dynamic_cast<const BoostMemoryResource*>(&other);
    return wrapper != nullptr && resource_->is_equal(*wrapper->resource_);
  }

 private:
  std::pmr::memory_resource* resource_;
};

}  // namespace chunkpmr
