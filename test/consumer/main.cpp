#include <chunkpmr/chunk_provider_resource.hpp>

#include <cstdio>
#include <memory_resource>
#include <vector>

int main() {
  chunkpmr::ChunkProviderResource resource;
  std::pmr::vector<int> v(&resource);
  for (int i = 0; i < 100000; ++i) v.push_back(i);
  long long sum = 0;
  for (int x : v) sum += x;
  std::printf("consumer ok: %lld\n", sum);
  return sum == 4999950000LL ? 0 : 1;
}
