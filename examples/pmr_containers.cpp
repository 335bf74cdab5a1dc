// SPDX-License-Identifier: BSL-1.0
// std::pmr containers on a ChunkProviderResource, in steady churn without release():
// chunks freed by the containers are reused, so the footprint stops growing.
#include <chunkpmr/chunk_provider_resource.hpp>

#include <cstdio>
#include <map>
#include <memory_resource>
#include <string>
#include <vector>

int main() {
  chunkpmr::ChunkProviderResource resource;  // chunks from get_default_resource()
  for (int round = 0; round < 100; ++round) {
    std::pmr::vector<std::pmr::string> names(&resource);
    std::pmr::map<int, std::pmr::string> index(&resource);
    for (int i = 0; i < 1000; ++i) {
      names.emplace_back("customer-" + std::to_string(round * 1000 + i));
      index.emplace(i, names.back());
    }
    if (round % 25 == 0) {
      const chunkpmr::ResourceStats s = resource.stats();
      std::printf("round %3d: %zu bytes held from upstream (peak %zu), %llu chunk reuses\n",
                  round, s.bytes_held, s.peak_bytes_held,
                  static_cast<unsigned long long>(s.chunk_reuses));
    }
  }
  const chunkpmr::ResourceStats s = resource.stats();
  std::printf("after 100 rounds: %zu bytes held, peak %zu\n", s.bytes_held, s.peak_bytes_held);
  return 0;
}
