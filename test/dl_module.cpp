// SPDX-License-Identifier: BSL-1.0
// A MODULE for test_lifecycle's dlclose case: it owns a ChunkProviderResource (a
// namespace-scope object, destroyed when the module is unloaded) and starts a thread
// that allocates from it. See dl_module.hpp.
#include "dl_module.hpp"

#include <chunkpmr/chunk_provider_resource.hpp>

#include <cstddef>
#include <cstdint>

namespace {

chunkpmr::ChunkProviderResource g_module_resource;

unsigned char byte_at(std::uintptr_t seed, std::size_t i) {
  return static_cast<unsigned char>((seed * 131u + i * 7u) ^ (seed >> 5));
}

int use_module_resource() {
  constexpr int kBlocks = 24;
  void* blocks[kBlocks];
  std::size_t sizes[kBlocks];
  for (int i = 0; i < kBlocks; ++i) {
    sizes[i] = 16 + static_cast<std::size_t>(i) * 613 % 5000;
    blocks[i] = g_module_resource.allocate(sizes[i], 8);
    auto* b = static_cast<unsigned char*>(blocks[i]);
    for (std::size_t k = 0; k < sizes[i]; ++k) b[k] = byte_at(static_cast<std::uintptr_t>(i), k);
  }
  int bad = 0;
  for (int i = 0; i < kBlocks; ++i) {
    const auto* b = static_cast<const unsigned char*>(blocks[i]);
    for (std::size_t k = 0; k < sizes[i]; ++k)
      if (b[k] != byte_at(static_cast<std::uintptr_t>(i), k)) ++bad;
    // Every fourth block stays live: the resource's destructor reclaims it at dlclose.
    if (i % 4 != 0) g_module_resource.deallocate(blocks[i], sizes[i], 8);
  }
  return bad == 0 ? 0 : 1;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int chunkpmr_dl_start_thread(
    chunkpmr_dl_thread* t) {
  t->use = &use_module_resource;
  return pthread_create(&t->thread, nullptr, t->thread_main, t);
}
