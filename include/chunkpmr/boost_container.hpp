// SPDX-License-Identifier: BSL-1.0
/// \file
/// \brief chunkpmr::BoostMemoryResource: run Boost.Container's pmr containers and pool
/// resources on any `std::pmr::memory_resource`, typically a ChunkProviderResource.
///
/// \code
/// chunkpmr::ChunkProviderResource chunks;
/// chunkpmr::BoostMemoryResource boost_chunks(chunks);
/// boost::container::pmr::unsynchronized_pool_resource pool(&boost_chunks);
/// boost::container::pmr::vector<int> v(&pool);
/// \endcode
///
/// Header-only; needs Boost.Container 1.74 or later (CMake: link
/// `chunkpmr::boost_container`, which brings `chunkpmr::chunkpmr` and
/// `Boost::container`).
#pragma once

#include <boost/container/pmr/memory_resource.hpp>

#include <cstddef>
#include <memory_resource>

namespace chunkpmr {

/// \brief A `boost::container::pmr::memory_resource` that forwards every call to a
/// `std::pmr::memory_resource`.
///
/// A thin forwarder: it holds a reference and adds no state, so the wrapped resource
/// must outlive the wrapper and everything allocated through it.
///
/// \threadsafety As the wrapped resource: the wrapper itself is never modified after
/// construction.
class BoostMemoryResource : public boost::container::pmr::memory_resource {
 public:
  /// \brief Makes a wrapper that forwards to `resource`.
  /// \param resource the resource to forward to.
  /// \pre `resource` outlives the wrapper and every block allocated through it.
  /// \post `&this->resource() == &resource`.
  /// \throws Nothing.
  /// \complexity Constant.
  explicit BoostMemoryResource(std::pmr::memory_resource& resource) noexcept
      : resource_(&resource) {}

  /// \brief The wrapped resource.
  /// \returns The resource given at construction.
  /// \throws Nothing.
  /// \complexity Constant.
  std::pmr::memory_resource& resource() const noexcept { return *resource_; }

 protected:
  /// \brief Allocates from the wrapped resource.
  /// \param bytes the size of the block.
  /// \param alignment its alignment.
  /// \pre As for `resource().allocate(bytes, alignment)`.
  /// \returns `resource().allocate(bytes, alignment)`.
  /// \throws Whatever `resource().allocate(bytes, alignment)` throws.
  /// \complexity As `resource().allocate(bytes, alignment)`.
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    return resource_->allocate(bytes, alignment);
  }

  /// \brief Frees through the wrapped resource.
  /// \param p the block.
  /// \param bytes the size it was allocated with.
  /// \param alignment the alignment it was allocated with.
  /// \pre `p` was allocated through this wrapper, or through another wrapper whose
  /// resource compares equal to resource(), with the same `bytes` and `alignment`, and
  /// was not deallocated since.
  /// \effects `resource().deallocate(p, bytes, alignment)`.
  /// \throws Whatever that throws (nothing, for a ChunkProviderResource).
  /// \complexity As `resource().deallocate(p, bytes, alignment)`.
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    resource_->deallocate(p, bytes, alignment);
  }

  /// \brief Equality: both forward to resources that compare equal.
  /// \param other the resource to compare with.
  /// \returns `true` if `other` is a BoostMemoryResource whose resource() compares equal
  /// to this one's (for a ChunkProviderResource: is the same object); `false`
  /// otherwise.
  /// \throws Nothing.
  /// \complexity As `resource().is_equal()`.
  bool do_is_equal(const boost::container::pmr::memory_resource& other) const noexcept override {
    const auto* wrapper = dynamic_cast<const BoostMemoryResource*>(&other);
    return wrapper != nullptr && resource_->is_equal(*wrapper->resource_);
  }

 private:
  std::pmr::memory_resource* resource_;
};

}  // namespace chunkpmr
