// Drop-in behaviour where std::pmr::monotonic_buffer_resource users rely on it, and the
// memory_resource contract.
#define BOOST_TEST_MODULE conformance
#include <boost/test/unit_test.hpp>

#include <chunkpmr/chunk_provider_resource.hpp>

#include "test_support.hpp"

#include <array>
#include <cstring>
#include <map>
#include <string>
#include <vector>
#include <cstdint>
#include <limits>
#include <memory_resource>
#include <type_traits>

using chunkpmr::ChunkProviderResource;
using chunkpmr::ResourceOptions;
using chunkpmr::test::CountingResource;

// Same constructor forms as monotonic_buffer_resource; the one-argument ones explicit.
static_assert(std::is_default_constructible_v<ChunkProviderResource>);
static_assert(std::is_constructible_v<ChunkProviderResource, std::pmr::memory_resource*>);
static_assert(!std::is_convertible_v<std::pmr::memory_resource*, ChunkProviderResource>);
static_assert(std::is_constructible_v<ChunkProviderResource, std::size_t>);
static_assert(!std::is_convertible_v<std::size_t, ChunkProviderResource>);
static_assert(std::is_constructible_v<ChunkProviderResource, std::size_t, std::pmr::memory_resource*>);
static_assert(std::is_constructible_v<ChunkProviderResource, void*, std::size_t>);
static_assert(std::is_constructible_v<ChunkProviderResource, void*, std::size_t, std::pmr::memory_resource*>);
static_assert(!std::is_convertible_v<ResourceOptions, ChunkProviderResource>);
static_assert(!std::is_copy_constructible_v<ChunkProviderResource>);
static_assert(!std::is_copy_assignable_v<ChunkProviderResource>);
static_assert(std::is_base_of_v<std::pmr::memory_resource, ChunkProviderResource>);

namespace {

struct DefaultResourceGuard {
  explicit DefaultResourceGuard(std::pmr::memory_resource* r)
      : previous(std::pmr::set_default_resource(r)) {}
  ~DefaultResourceGuard() { std::pmr::set_default_resource(previous); }
  std::pmr::memory_resource* previous;
};

}  // namespace

BOOST_AUTO_TEST_CASE(upstream_is_captured_at_construction) {
  CountingResource counting;
  CountingResource other;
  {
    DefaultResourceGuard guard(&counting);
    ChunkProviderResource from_default;
    ChunkProviderResource from_size(4096);
    std::array<std::byte, 64> buffer;
    ChunkProviderResource from_buffer(buffer.data(), buffer.size());
    std::pmr::set_default_resource(&other);  // later changes do not matter
    BOOST_TEST(from_default.upstream_resource() == &counting);
    BOOST_TEST(from_size.upstream_resource() == &counting);
    BOOST_TEST(from_buffer.upstream_resource() == &counting);
    ChunkProviderResource explicit_upstream(&counting);
    BOOST_TEST(explicit_upstream.upstream_resource() == &counting);
    ChunkProviderResource with_size(4096, &counting);
    BOOST_TEST(with_size.upstream_resource() == &counting);
    ChunkProviderResource with_buffer(buffer.data(), buffer.size(), &counting);
    BOOST_TEST(with_buffer.upstream_resource() == &counting);
  }
  BOOST_TEST(counting.allocations() == 0u);  // construction is lazy
  BOOST_TEST(other.allocations() == 0u);
}

BOOST_AUTO_TEST_CASE(invalid_options_are_rejected) {
  BOOST_CHECK_THROW(ChunkProviderResource(ResourceOptions{.upstream = nullptr}),
                    std::invalid_argument);
  BOOST_CHECK_THROW(ChunkProviderResource(ResourceOptions{.max_normal_alloc = 65473}),
                    std::invalid_argument);
  BOOST_CHECK_NO_THROW(ChunkProviderResource(ResourceOptions{.max_normal_alloc = 65472}));
}

BOOST_AUTO_TEST_CASE(equality_is_identity) {
  ChunkProviderResource a;
  ChunkProviderResource b;
  BOOST_TEST(a.is_equal(a));
  BOOST_TEST(!a.is_equal(b));
  BOOST_TEST(!a.is_equal(*std::pmr::new_delete_resource()));
  BOOST_TEST((std::pmr::polymorphic_allocator<int>(&a) != std::pmr::polymorphic_allocator<int>(&b)));
}

BOOST_AUTO_TEST_CASE(zero_byte_requests_are_distinct_and_freeable) {
  CountingResource counting;
  {
    ChunkProviderResource r(&counting);
    void* a = r.allocate(0, 1);
    void* b = r.allocate(0, 1);
    void* c = r.allocate(0, 8);
    BOOST_TEST(a != nullptr);
    BOOST_TEST(a != b);
    BOOST_TEST(b != c);
    BOOST_TEST(reinterpret_cast<std::uintptr_t>(c) % 8 == 0u);
    r.deallocate(b, 0, 1);
    r.deallocate(a, 0, 1);
    r.deallocate(c, 0, 8);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(every_alignment_is_honoured) {
  CountingResource counting;
  {
    ChunkProviderResource r(ResourceOptions{.upstream = &counting, .max_normal_alloc = 65472});
    for (std::size_t alignment = 1; alignment <= (std::size_t{1} << 20); alignment *= 2) {
      for (std::size_t bytes : {std::size_t{1}, std::size_t{3}, std::size_t{100}, alignment}) {
        void* p = r.allocate(bytes, alignment);
        BOOST_TEST(reinterpret_cast<std::uintptr_t>(p) % alignment == 0u,
                   "alignment " << alignment << " bytes " << bytes);
        std::memset(p, 0xAB, bytes);
        r.deallocate(p, bytes, alignment);
      }
    }
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(null_upstream_gives_bad_alloc) {
  ChunkProviderResource r(std::pmr::null_memory_resource());
  BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, 8, 8), std::bad_alloc);
  BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, 8, 8), std::bad_alloc);  // still consistent
  BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, 100000, 8), std::bad_alloc);
  BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, 8, 65536), std::bad_alloc);
}

BOOST_AUTO_TEST_CASE(unrepresentable_sizes_give_bad_alloc) {
  CountingResource counting;
  {
    ChunkProviderResource r(&counting);
    // volatile: keep the compiler from diagnosing the deliberately absurd sizes.
    volatile std::size_t max_size = std::numeric_limits<std::size_t>::max();
    const std::size_t huge = max_size;
    BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, huge, 8), std::bad_alloc);
    BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, huge - 64, 16), std::bad_alloc);
    BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, huge - 70000, 8), std::bad_alloc);
    BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, huge - 8, 65536), std::bad_alloc);
    BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, huge / 2, 8), std::bad_alloc);
    BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, huge / 2, 65536), std::bad_alloc);
    BOOST_TEST(counting.allocations() <= 1u);  // refused before asking upstream (arena aside)
    counting.fail_always(true);  // representable, but upstream refuses
    BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, 1 << 20, 8), std::bad_alloc);
    counting.fail_always(false);
    void* p = r.allocate(64, 8);  // usable afterwards
    r.deallocate(p, 64, 8);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
}

BOOST_AUTO_TEST_CASE(initial_buffer_bumps_contiguously_and_is_used_first) {
  CountingResource counting;
  alignas(64) std::array<std::byte, 1024> buffer;
  ChunkProviderResource r(buffer.data(), buffer.size(), &counting);
  auto* first = static_cast<std::byte*>(r.allocate(16, 8));
  auto* second = static_cast<std::byte*>(r.allocate(16, 8));
  auto* third = static_cast<std::byte*>(r.allocate(32, 16));
  BOOST_TEST(first == buffer.data());
  BOOST_TEST(second == first + 16);
  BOOST_TEST(third == second + 16);
  r.deallocate(second, 16, 8);  // a no-op inside the buffer
  BOOST_TEST(static_cast<std::byte*>(r.allocate(8, 8)) == third + 32);
  BOOST_TEST(counting.allocations() == 0u);
  // Exhausting the buffer moves on to chunks from upstream.
  void* big = r.allocate(2000, 8);
  BOOST_TEST(counting.allocations() == 1u);
  BOOST_TEST((static_cast<std::byte*>(big) < buffer.data() ||
              static_cast<std::byte*>(big) >= buffer.data() + buffer.size()));
}

BOOST_AUTO_TEST_CASE(misaligned_initial_buffer_still_honours_alignment) {
  alignas(64) std::array<std::byte, 512> storage;
  std::byte* buffer = storage.data() + 3;
  ChunkProviderResource r(buffer, 500, std::pmr::null_memory_resource());
  auto* a = static_cast<std::byte*>(r.allocate(8, 8));
  auto* b = static_cast<std::byte*>(r.allocate(8, 8));
  auto* c = static_cast<std::byte*>(r.allocate(1, 1));
  auto* d = static_cast<std::byte*>(r.allocate(4, 4));
  BOOST_TEST(a == storage.data() + 8);
  BOOST_TEST(b == a + 8);
  BOOST_TEST(c == b + 8);
  BOOST_TEST(d == c + 4);
  BOOST_TEST(reinterpret_cast<std::uintptr_t>(d) % 4 == 0u);
  // Null upstream: once the buffer is exhausted the request fails cleanly.
  BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, 1000, 8), std::bad_alloc);
}

BOOST_AUTO_TEST_CASE(release_is_repeatable_and_restarts_from_the_buffer) {
  CountingResource counting;
  alignas(64) std::array<std::byte, 256> buffer;
  ChunkProviderResource r(buffer.data(), buffer.size(), &counting);
  for (int round = 0; round < 3; ++round) {
    void* first = r.allocate(32, 8);
    BOOST_TEST(first == buffer.data());  // LWG 3120: back to the initial buffer
    for (int i = 0; i < 1000; ++i) chunkpmr::test::allocate_and_keep(r, 100, 8);  // never freed, as with monotonic
    BOOST_TEST(counting.outstanding_blocks() > 0u);
    r.release();
    BOOST_TEST(counting.outstanding_blocks() == 0u);
    BOOST_TEST(r.stats().bytes_held == 0u);
  }
  r.release();
  r.release();
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(release_restarts_growth_from_the_initial_size) {
  CountingResource counting;
  ChunkProviderResource r(1024, &counting);
  for (int round = 0; round < 2; ++round) {
    std::vector<std::size_t> sizes;
    std::uintptr_t last = 0;
    for (int i = 0; i < 200; ++i) {
      void* p = r.allocate(200, 8);  // never freed, as with monotonic
      if (chunkpmr::test::chunk_span(p).base != last) sizes.push_back(chunkpmr::test::chunk_span(p).bytes);
      last = chunkpmr::test::chunk_span(p).base;
    }
    BOOST_REQUIRE(sizes.size() > 2u);
    BOOST_TEST(sizes[0] == 1024u);  // first chunk: the initial size
    BOOST_TEST(sizes[1] == 2048u);  // then the ratchet
    r.release();
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
}

BOOST_AUTO_TEST_CASE(destruction_returns_everything_even_with_live_blocks) {
  CountingResource counting;
  {
    ChunkProviderResource r(&counting);
    for (int i = 0; i < 5000; ++i) chunkpmr::test::allocate_and_keep(r, static_cast<std::size_t>(i % 300) + 1, 8);
    chunkpmr::test::allocate_and_keep(r, 100000, 8);     // oversized
    chunkpmr::test::allocate_and_keep(r, 10, 1 << 16);   // pass-through
    BOOST_TEST(counting.outstanding_blocks() > 3u);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(pmr_containers_work) {
  CountingResource counting;
  {
    ChunkProviderResource r(&counting);
    std::pmr::vector<std::pmr::string> strings(&r);
    for (int i = 0; i < 10000; ++i) strings.emplace_back(std::string(static_cast<std::size_t>(i % 97), 'x') + std::to_string(i));
    for (int i = 0; i < 10000; ++i)
      BOOST_REQUIRE(std::string_view(strings[static_cast<std::size_t>(i)]) == std::string(static_cast<std::size_t>(i % 97), 'x') + std::to_string(i));
    std::pmr::map<int, std::pmr::string> map(&r);
    for (int i = 0; i < 1000; ++i) map.emplace(i, std::to_string(i));
    BOOST_TEST(map.size() == 1000u);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
}
