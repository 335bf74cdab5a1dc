// SPDX-License-Identifier: BSL-1.0
// Instruction counts of the same-thread fast paths, for callgrind (which counts
// instructions exactly; this machine has no hardware counters). Run under
// bench/callgrind_fastpath.sh, which takes differences between runs so that start-up
// and setup cancel out:
//   bench_fastpath PEER alloc N            N allocations of 32 bytes, no frees
//   bench_fastpath PEER alloc_then_free N  the same, then every block freed in order
//   bench_fastpath PEER alloc_then_remote_free N
//                                         the same, the frees made by another thread
//                                         (after the allocating one is done: no overlap)
// PEER: chunkpmr std_monotonic std_unsync_pool std_sync_pool new_delete
#include <chunkpmr/chunk_provider_resource.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <memory_resource>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s PEER alloc|alloc_then_free|alloc_then_remote_free N\n", argv[0]);
    return 2;
  }
  const std::string peer = argv[1];
  const bool then_free = std::strcmp(argv[2], "alloc_then_free") == 0;
  const bool then_remote_free = std::strcmp(argv[2], "alloc_then_remote_free") == 0;
  const std::size_t n = std::strtoull(argv[3], nullptr, 10);
  std::unique_ptr<std::pmr::memory_resource> owned;
  std::pmr::memory_resource* r = nullptr;
  if (peer == "chunkpmr") owned = std::make_unique<chunkpmr::ChunkProviderResource>();
  else if (peer == "std_monotonic") owned = std::make_unique<std::pmr::monotonic_buffer_resource>();
  else if (peer == "std_unsync_pool") owned = std::make_unique<std::pmr::unsynchronized_pool_resource>();
  else if (peer == "std_sync_pool") owned = std::make_unique<std::pmr::synchronized_pool_resource>();
  else if (peer == "new_delete") r = std::pmr::new_delete_resource();
  else {
    std::fprintf(stderr, "unknown peer %s\n", peer.c_str());
    return 2;
  }
  if (owned) r = owned.get();
  // The block list is sized before counting starts (same cost in every run of a peer).
  std::vector<void*> blocks(n);
  void* volatile sink;
  for (std::size_t i = 0; i < n; ++i) blocks[i] = r->allocate(32, 8);
  sink = blocks[n / 2];
  auto free_all = [&] {
    for (std::size_t i = 0; i < n; ++i) r->deallocate(blocks[i], 32, 8);
  };
  if (then_free) free_all();
  if (then_remote_free) std::thread(free_all).join();
  static_cast<void>(sink);
  return 0;
}
