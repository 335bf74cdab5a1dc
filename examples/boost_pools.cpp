// SPDX-License-Identifier: BSL-1.0
// Boost.Container's pool resource and containers running on a ChunkProviderResource:
// the pool takes its blocks from chunkpmr, which returns them upstream when trimmed.
#include <chunkpmr/boost_container.hpp>
#include <chunkpmr/chunk_provider_resource.hpp>

#include <boost/container/pmr/string.hpp>
#include <boost/container/pmr/unsynchronized_pool_resource.hpp>
#include <boost/container/pmr/vector.hpp>

#include <cstdio>

int main() {
  chunkpmr::ChunkProviderResource chunks;
  chunkpmr::BoostMemoryResource chunks_for_boost(chunks);
  {
    boost::container::pmr::unsynchronized_pool_resource pool(&chunks_for_boost);
    boost::container::pmr::vector<boost::container::pmr::string> words(&pool);
    for (int i = 0; i < 10000; ++i) words.emplace_back("a fairly long word, so it allocates");
    std::printf("with the pool alive: %zu bytes held from upstream\n", chunks.stats().bytes_held);
  }
  chunks.trim();  // the pool released its blocks; give the free chunks back upstream
  std::printf("after the pool is gone and trim(): %zu bytes held from upstream\n",
              chunks.stats().bytes_held);
  return 0;
}
