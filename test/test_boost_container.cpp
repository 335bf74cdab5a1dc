// SPDX-License-Identifier: BSL-1.0
// Boost.Container pmr containers and Boost's pool resources on top of the resource.
#define BOOST_TEST_MODULE boost_container
#include <boost/test/unit_test.hpp>

#include <chunkpmr/boost_container.hpp>
#include <chunkpmr/chunk_provider_resource.hpp>

#include "test_support.hpp"

#include <boost/container/pmr/map.hpp>
#include <boost/container/pmr/monotonic_buffer_resource.hpp>
#include <boost/container/pmr/string.hpp>
#include <boost/container/pmr/synchronized_pool_resource.hpp>
#include <boost/container/pmr/unsynchronized_pool_resource.hpp>
#include <boost/container/pmr/vector.hpp>

#include <string>
#include <thread>

namespace bpmr = boost::container::pmr;
using chunkpmr::BoostMemoryResource;
using chunkpmr::ChunkProviderResource;
using chunkpmr::test::CountingResource;

namespace {

// Safe to call from any thread: failures are counted, not asserted.
template <class Resource>
void fill_and_check(Resource* resource) {
  bpmr::vector<bpmr::string> strings(resource);
  for (int i = 0; i < 5000; ++i) strings.emplace_back(std::to_string(i * 7919).c_str());
  bpmr::map<int, bpmr::string> map(resource);
  for (int i = 0; i < 2000; ++i) map.emplace(i, std::to_string(i).c_str());
  for (int i = 0; i < 5000; ++i)
    WORKER_CHECK(strings[static_cast<std::size_t>(i)] == std::to_string(i * 7919).c_str());
  for (int i = 0; i < 2000; ++i) WORKER_CHECK(map.at(i) == std::to_string(i).c_str());
}

}  // namespace

BOOST_AUTO_TEST_CASE(boost_containers_directly) {
  CountingResource counting;
  {
    ChunkProviderResource chunks(&counting);
    BoostMemoryResource wrapper(chunks);
    fill_and_check(&wrapper);
    BOOST_TEST(&wrapper.resource() == &chunks);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
}

BOOST_AUTO_TEST_CASE(boost_pools_on_top) {
  CountingResource counting;
  {
    ChunkProviderResource chunks(&counting);
    BoostMemoryResource wrapper(chunks);
    {
      bpmr::unsynchronized_pool_resource pool(&wrapper);
      fill_and_check(&pool);
    }
    {
      bpmr::synchronized_pool_resource pool(&wrapper);
      fill_and_check(&pool);
      std::thread([&] { fill_and_check(&pool); }).join();
    }
    {
      bpmr::monotonic_buffer_resource monotonic(&wrapper);
      fill_and_check(&monotonic);
    }
    BOOST_TEST(chunks.stats().bytes_held > 0u);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
  BOOST_TEST(chunkpmr::test::worker_failures.load() == 0);
}

BOOST_AUTO_TEST_CASE(wrapper_equality_follows_the_wrapped_resource) {
  ChunkProviderResource a;
  ChunkProviderResource b;
  BoostMemoryResource wa1(a);
  BoostMemoryResource wa2(a);
  BoostMemoryResource wb(b);
  BOOST_TEST(wa1.is_equal(wa2));
  BOOST_TEST(!wa1.is_equal(wb));
  BOOST_TEST(!wa1.is_equal(*bpmr::new_delete_resource()));
}
