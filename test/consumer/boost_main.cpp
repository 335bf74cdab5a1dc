// SPDX-License-Identifier: BSL-1.0
// An outside user of chunkpmr::boost_container alone: Boost.Container's pmr pool and
// containers over a ChunkProviderResource, with no other chunkpmr or Boost target named.
#include <chunkpmr/boost_container.hpp>
#include <chunkpmr/chunk_provider_resource.hpp>

#include <boost/container/pmr/string.hpp>
#include <boost/container/pmr/unsynchronized_pool_resource.hpp>
#include <boost/container/pmr/vector.hpp>

#include <cstdio>
#include <string>

#if defined(CONSUMER_EXPECTS_SHARED) && CONSUMER_EXPECTS_SHARED != defined(CHUNKPMR_SHARED)
#error "CHUNKPMR_SHARED must be defined exactly when chunkpmr is a shared library"
#endif

int main() {
  chunkpmr::ChunkProviderResource chunks;
  chunkpmr::BoostMemoryResource chunks_for_boost(chunks);
  long long total = 0;
  {
    boost::container::pmr::unsynchronized_pool_resource pool(&chunks_for_boost);
    boost::container::pmr::vector<boost::container::pmr::string> names(&pool);
    for (int i = 0; i < 10000; ++i) {
      names.emplace_back("a string long enough to need its own block, number ");
      names.back() += std::to_string(i).c_str();
    }
    for (const auto& name : names) total += static_cast<long long>(name.size());
    if (pool.upstream_resource() != &chunks_for_boost) return 1;
    if (chunks.stats().bytes_held == 0) return 1;  // the pool's memory came from chunks
  }
  // The pool gave everything back on destruction; trim() returns the cached chunks.
  chunks.trim();
  if (!chunks_for_boost.is_equal(chunks_for_boost)) return 1;
  chunkpmr::ChunkProviderResource other;
  chunkpmr::BoostMemoryResource other_for_boost(other);
  if (chunks_for_boost.is_equal(other_for_boost)) return 1;
  std::printf("boost consumer ok: %lld\n", total);
  return total > 0 ? 0 : 1;
}
