// SPDX-License-Identifier: BSL-1.0
// What chunks cost in resident memory when the upstream is glibc through
// new_delete_resource. Two markdown tables (bench/run_report.sh puts them into
// docs/PERF.md):
//  1. the raw upstream cost: 4000 blocks of each class size, requested with 64 KiB
//     alignment (as chunkpmr asks for 64 KiB chunks) and with 16-byte alignment;
//  2. what a small resource costs: 2000 resources on one thread, each given a few
//     32-byte allocations, chunkpmr beside std::pmr::monotonic_buffer_resource.
// Every block is written in full, so the RSS growth is what the memory really costs.
#include <chunkpmr/chunk_provider_resource.hpp>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <memory_resource>
#include <string>
#include <vector>

namespace {

long rss_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

double kib_per_block(std::size_t bytes, std::size_t alignment) {
  constexpr int kBlocks = 4000;
  auto* upstream = std::pmr::new_delete_resource();
  std::vector<void*> blocks;
  blocks.reserve(kBlocks);
  const long before = rss_kib();
  for (int i = 0; i < kBlocks; ++i) {
    void* p = upstream->allocate(bytes, alignment);
    std::memset(p, 1, bytes);
    blocks.push_back(p);
  }
  const long after = rss_kib();
  for (void* p : blocks) upstream->deallocate(p, bytes, alignment);
  return static_cast<double>(after - before) / kBlocks;
}

// RSS growth per resource when each of kResources resources serves `bytes` in
// 32-byte allocations (the resources themselves are constructed before the first
// reading, so only the memory they obtain counts).
template <class Resource>
double kib_per_resource(std::size_t bytes) {
  constexpr int kResources = 2000;
  std::vector<std::unique_ptr<Resource>> resources;
  for (int i = 0; i < kResources; ++i) resources.push_back(std::make_unique<Resource>());
  const long before = rss_kib();
  for (auto& r : resources) {
    for (std::size_t done = 0; done < bytes; done += 32) std::memset(r->allocate(32, 8), 1, 32);
  }
  const long after = rss_kib();
  return static_cast<double>(after - before) / kResources;
}

}  // namespace

int main() {
  std::printf("| chunk class | RSS per chunk, 64 KiB-aligned | RSS / size | RSS per block, 16-byte-aligned |\n");
  std::printf("|---:|---:|---:|---:|\n");
  for (std::size_t bytes = 512; bytes <= 65536; bytes *= 2) {
    const double aligned = kib_per_block(bytes, 65536);
    const double plain = kib_per_block(bytes, 16);
    std::printf("| %zu B | %.1f KiB | %.2fx | %.1f KiB |\n", bytes, aligned,
                aligned * 1024.0 / static_cast<double>(bytes), plain);
  }
  std::printf("\n| bytes allocated per resource (32-byte blocks) | chunkpmr RSS per resource | "
              "monotonic RSS per resource |\n");
  std::printf("|---:|---:|---:|\n");
  for (std::size_t bytes : {256u, 2048u, 16384u, 61440u}) {
    const double ours = kib_per_resource<chunkpmr::ChunkProviderResource>(bytes);
    const double mono = kib_per_resource<std::pmr::monotonic_buffer_resource>(bytes);
    std::printf("| %zu B | %.1f KiB | %.1f KiB |\n", bytes, ours, mono);
  }
  return 0;
}
