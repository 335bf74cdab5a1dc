// SPDX-License-Identifier: BSL-1.0
// A plugin with the static chunkpmr inside. It exports its three C functions and
// nothing of chunkpmr (which is built with hidden visibility).
#include <chunkpmr/chunk_provider_resource.hpp>

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <string>
#include <thread>
#include <vector>

#define PLUGIN_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

// Fills a vector of strings from `resource` on the calling thread and returns a
// checksum of what it wrote; the blocks are freed before it returns.
std::uint64_t churn(std::pmr::memory_resource& resource, int rounds) {
  std::uint64_t checksum = 0;
  for (int r = 0; r < rounds; ++r) {
    std::pmr::vector<std::pmr::string> strings(&resource);
    for (int i = 0; i < 500; ++i) {
      strings.emplace_back(static_cast<std::size_t>(16 + (i * 37) % 400), static_cast<char>('a' + i % 26));
    }
    for (const auto& s : strings) checksum += s.size() * static_cast<unsigned char>(s[0]);
  }
  return checksum;
}

std::uint64_t expected_churn(int rounds) {
  std::pmr::monotonic_buffer_resource plain;
  return churn(plain, rounds);
}

}  // namespace

// One resource, used on the calling thread and on a thread of the plugin's own; blocks
// allocated on each side are freed on the other. 0 if everything matched.
PLUGIN_EXPORT int plugin_run(int rounds) {
  chunkpmr::ChunkProviderResource resource;
  int errors = 0;
  if (churn(resource, rounds) != expected_churn(rounds)) ++errors;

  std::pmr::vector<std::pmr::string> from_here(&resource);
  for (int i = 0; i < 1000; ++i) from_here.emplace_back(200, 'h');
  std::pmr::vector<std::pmr::string> from_there(&resource);
  std::thread worker([&] {
    if (churn(resource, rounds) != expected_churn(rounds)) ++errors;
    for (int i = 0; i < 1000; ++i) from_there.emplace_back(300, 't');
    from_here.clear();  // frees, on this thread, blocks of the caller's arena
    from_here.shrink_to_fit();
  });
  worker.join();
  if (from_there.size() != 1000 || from_there.back().size() != 300) ++errors;
  from_there = decltype(from_there)(&resource);  // frees the worker's blocks here
  if (resource.stats().live_thread_arenas == 0) ++errors;
  resource.trim();
  return errors;
}

// Uses chunkpmr on the calling thread (which arms that thread's exit hook in this
// plugin) and returns the checksum; the resource is gone when it returns.
PLUGIN_EXPORT std::uint64_t plugin_use_on_this_thread(int rounds) {
  chunkpmr::ChunkProviderResource resource(chunkpmr::ResourceOptions{.first_buffer = false});
  return churn(resource, rounds);
}

PLUGIN_EXPORT std::uint64_t plugin_expected(int rounds) { return expected_churn(rounds); }
