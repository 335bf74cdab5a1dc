// What a chunk costs in resident memory when its upstream is glibc through
// new_delete_resource: 4000 blocks of each class size, requested with 64 KiB alignment
// (as chunkpmr asks) and, for comparison, with 16-byte alignment. Every block is
// written in full, so the RSS growth is what the blocks really cost. Prints a markdown
// table (bench/run_report.sh puts it into docs/PERF.md).
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>
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
  return 0;
}
