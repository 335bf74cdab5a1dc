// SPDX-License-Identifier: BSL-1.0
// An outside user of chunkpmr::chunkpmr: the public headers only, linked through the
// installed package, add_subdirectory or pkg-config.
#include <chunkpmr/chunk_provider_resource.hpp>
#include <chunkpmr/version.hpp>

#include <cstdio>
#include <memory_resource>
#include <thread>
#include <type_traits>
#include <vector>

#if defined(CONSUMER_EXPECTS_SHARED) && CONSUMER_EXPECTS_SHARED != defined(CHUNKPMR_SHARED)
#error "CHUNKPMR_SHARED must be defined exactly when chunkpmr is a shared library"
#endif

using chunkpmr::ChunkProviderResource;
using chunkpmr::ResourceOptions;

// The std::pmr conventions of libstdc++'s monotonic_buffer_resource.
static_assert(std::is_nothrow_default_constructible_v<ChunkProviderResource>);
static_assert(std::is_nothrow_constructible_v<ChunkProviderResource, std::pmr::memory_resource*>);
static_assert(std::is_nothrow_constructible_v<ChunkProviderResource, std::size_t>);
static_assert(std::is_nothrow_constructible_v<ChunkProviderResource, void*, std::size_t,
                                              std::pmr::memory_resource*>);
static_assert(!std::is_nothrow_constructible_v<ChunkProviderResource, const ResourceOptions&>);
static_assert(!std::is_convertible_v<std::pmr::memory_resource*, ChunkProviderResource>);
static_assert(!std::is_copy_constructible_v<ChunkProviderResource>);
static_assert(!std::is_move_constructible_v<ChunkProviderResource>);
static_assert(CHUNKPMR_VERSION >= 200);

static int failures = 0;
static void check(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAILED: %s\n", what);
    ++failures;
  }
}

int main() {
  chunkpmr::ChunkProviderResource resource;
  std::pmr::vector<int> v(&resource);
  for (int i = 0; i < 100000; ++i) v.push_back(i);
  long long sum = 0;
  for (int x : v) sum += x;
  check(sum == 4999950000LL, "sum");

  // options() gives back what was constructed.
  std::pmr::monotonic_buffer_resource upstream;
  const ResourceOptions given{.upstream = &upstream, .byte_budget = 1 << 24,
                              .max_normal_alloc = 8192, .initial_chunk_bytes = 3000,
                              .max_cached_bytes_per_thread = 1 << 18, .first_buffer = false,
                              .max_chunk_bytes = 5000};
  ChunkProviderResource configured(given);
  const ResourceOptions back = configured.options();
  check(back.upstream == given.upstream && back.byte_budget == given.byte_budget &&
            back.max_normal_alloc == given.max_normal_alloc &&
            back.initial_chunk_bytes == given.initial_chunk_bytes &&
            back.max_cached_bytes_per_thread == given.max_cached_bytes_per_thread &&
            back.first_buffer == given.first_buffer &&
            back.max_chunk_bytes == given.max_chunk_bytes,
        "options() == the options given");
  check(resource.options().upstream == std::pmr::get_default_resource() &&
            resource.options().first_buffer && resource.options().initial_chunk_bytes == 512,
        "options() of the default constructor");
  check(ChunkProviderResource(4096, &upstream).options().initial_chunk_bytes == 4096,
        "options() of the initial_size constructor");

  // Allocation on another thread, freed on this one; stats and release().
  std::pmr::vector<std::pmr::vector<char>> blocks(&configured);
  std::thread([&] {
    for (int i = 0; i < 1000; ++i) blocks.emplace_back(100 + i % 900, 'x');
  }).join();
  check(configured.stats().bytes_held > 0, "stats().bytes_held after allocating");
  blocks.clear();
  blocks.shrink_to_fit();
  configured.trim();
  configured.release();
  check(configured.stats().bytes_held == 0, "stats().bytes_held after release()");

  if (failures != 0) return 1;
  std::printf("consumer ok (%s chunkpmr %d.%d.%d): %lld\n",
#if defined(CHUNKPMR_SHARED)
              "shared",
#else
              "static",
#endif
              CHUNKPMR_VERSION_MAJOR, CHUNKPMR_VERSION_MINOR, CHUNKPMR_VERSION_PATCH, sum);
  return 0;
}
