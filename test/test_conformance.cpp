// SPDX-License-Identifier: BSL-1.0
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
using chunkpmr::test::allocate_and_keep;
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

namespace {

// Records every request, then refuses it with its own exception type (or, if told to,
// hands back a dummy block even for an absurd size, as a careless upstream might).
struct UpstreamRefused {};
class RecordingUpstream : public std::pmr::memory_resource {
 public:
  std::vector<std::pair<std::size_t, std::size_t>> asked, given_back;
  bool returns_anyway = false;

 private:
  alignas(65536) static inline std::byte dummy[65536];
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    asked.emplace_back(bytes, alignment);
    if (returns_anyway) return dummy;
    throw UpstreamRefused{};
  }
  void do_deallocate(void*, std::size_t bytes, std::size_t alignment) override {
    given_back.emplace_back(bytes, alignment);
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override { return this == &o; }
};

}  // namespace

BOOST_AUTO_TEST_CASE(impossible_sizes_reach_upstream_as_they_are) {
  // volatile: keep the compiler from diagnosing the deliberately absurd sizes.
  volatile std::size_t max_size = std::numeric_limits<std::size_t>::max();
  const std::size_t huge = max_size;
  const std::size_t top_alignment = std::size_t{1} << 63;
  const std::pair<std::size_t, std::size_t> requests[] = {
      {huge, 8}, {huge - 64, 16}, {huge - 70000, 8}, {huge - 8, 65536}, {huge / 2, 8},
      {huge / 2, 65536}, {huge - 41, top_alignment}, {huge / 2 + 1, top_alignment}};
  for (bool first_buffer : {true, false}) {
    RecordingUpstream upstream;
    ChunkProviderResource r(ResourceOptions{.upstream = &upstream, .first_buffer = first_buffer});
    for (auto [bytes, alignment] : requests) {
      BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, bytes, alignment), UpstreamRefused);
    }
    BOOST_TEST((upstream.asked == std::vector(std::begin(requests), std::end(requests))));
    upstream.returns_anyway = true;  // no such block can exist: handed back, bad_alloc
    BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, huge - 8, 64), std::bad_alloc);
    BOOST_TEST((upstream.given_back ==
                std::vector<std::pair<std::size_t, std::size_t>>{{huge - 8, 64}}));
    BOOST_TEST(r.stats().bytes_held == 0u);
  }
  CountingResource counting;
  {
    ChunkProviderResource r(&counting);
    counting.fail_always(true);  // representable, but upstream refuses
    BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, 1 << 20, 8), std::bad_alloc);
    BOOST_TEST(counting.outstanding_blocks() == 0u);
    BOOST_TEST(r.stats().bytes_held == 0u);
    counting.fail_always(false);
    BOOST_TEST(r.allocate(1 << 20, 8) != nullptr);  // still usable
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

BOOST_AUTO_TEST_CASE(initial_size_means_what_it_means_for_monotonic) {
  // The first upstream request is at least initial_size, and allocations totalling up
  // to initial_size - 1 need no second one; the first block sits at the start of it.
  for (std::size_t initial : {std::size_t{1}, std::size_t{100}, std::size_t{4096},
                              std::size_t{5000}, std::size_t{65536}, std::size_t{100000},
                              std::size_t{1000000}}) {
    BOOST_TEST_CONTEXT("initial_size " << initial) {
      CountingResource counting;
      {
        ChunkProviderResource r(initial, &counting);
        BOOST_TEST(counting.allocations() == 0u);  // lazy
        const std::size_t total = initial - 1;
        void* first = r.allocate(std::max<std::size_t>(total / 3, 1), 1);
        std::size_t given = std::max<std::size_t>(total / 3, 1);
        while (given + 1000 < total) {
          allocate_and_keep(r, 1000, 1);
          given += 1000;
        }
        if (total > given) allocate_and_keep(r, total - given, 1);
        BOOST_TEST(counting.allocations() == 1u);
        const auto history = counting.history();
        BOOST_REQUIRE(!history.empty());
        BOOST_TEST(history[0].bytes >= initial);
        BOOST_TEST(history[0].alignment < 65536u);  // not a frame
        BOOST_TEST(counting.outstanding_blocks() == 1u);
        static_cast<void>(first);
      }
      BOOST_TEST(counting.outstanding_blocks() == 0u);
    }
  }
  // The (999999) request of a 1 MB resource comes from the first buffer, block at its start.
  CountingResource counting;
  ChunkProviderResource r(1000000, &counting);
  void* p = r.allocate(999999, 8);
  BOOST_TEST(counting.allocations() == 1u);
  BOOST_TEST(counting.history()[0].bytes >= 1000000u);
  BOOST_TEST(counting.outstanding_blocks() == 1u);
  r.deallocate(p, 999999, 8);
}

BOOST_AUTO_TEST_CASE(first_buffer_is_sized_and_aligned_for_the_first_request) {
  for (std::size_t alignment : {std::size_t{1}, std::size_t{64}, std::size_t{4096},
                                std::size_t{16384}}) {
    for (std::size_t bytes : {std::size_t{1}, std::size_t{5000}, std::size_t{40000}}) {
      CountingResource counting;
      ChunkProviderResource r(512, &counting);
      void* p = r.allocate(bytes, alignment);
      BOOST_TEST(reinterpret_cast<std::uintptr_t>(p) % alignment == 0u);
      BOOST_REQUIRE(counting.history().size() == 1u);
      const auto first = counting.history()[0];
      BOOST_TEST(first.bytes >= std::max<std::size_t>(bytes, 512));
      BOOST_TEST(first.alignment >= alignment);
      r.deallocate(p, bytes, alignment);  // a no-op in the first buffer
      BOOST_TEST(counting.outstanding_blocks() == 1u);
    }
  }
}

BOOST_AUTO_TEST_CASE(release_restarts_growth_from_the_initial_size) {
  // LWG 3120: after release() the resource asks upstream for exactly what it asked
  // the first time, starting again with the first buffer of the initial size.
  CountingResource counting;
  ChunkProviderResource r(1024, &counting);
  std::vector<std::vector<CountingResource::Block>> rounds;
  for (int round = 0; round < 3; ++round) {
    const std::size_t before = counting.history().size();
    for (int i = 0; i < 400; ++i) allocate_and_keep(r, 200, 8);  // never freed, as with monotonic
    auto history = counting.history();
    rounds.emplace_back(history.begin() + static_cast<std::ptrdiff_t>(before), history.end());
    r.release();
    BOOST_TEST(counting.outstanding_blocks() == 0u);
  }
  BOOST_REQUIRE(rounds[0].size() > 2u);
  BOOST_TEST(rounds[0][0].bytes >= 1024u);     // the first buffer: at least initial_size,
  BOOST_TEST(rounds[0][0].alignment < 4096u);  // an ordinary request, not a 64 KiB frame
  for (const auto& round : rounds) {
    BOOST_REQUIRE(round.size() == rounds[0].size());
    for (std::size_t i = 0; i < round.size(); ++i) {
      BOOST_TEST(round[i].bytes == rounds[0][i].bytes);
      BOOST_TEST(round[i].alignment == rounds[0][i].alignment);
    }
  }
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

BOOST_AUTO_TEST_CASE(a_first_buffer_upstream_refused_is_asked_for_again) {
  // The first buffer's upstream call fails: the next allocation asks for it again
  // (an ordinary request), rather than going to 64 KiB-aligned chunks for good.
  CountingResource counting;
  {
    ChunkProviderResource r(&counting);
    counting.fail_at(1);
    BOOST_CHECK_THROW(allocate_and_keep(r, 100, 8), std::bad_alloc);
    BOOST_TEST(r.stats().bytes_held == 0u);
    allocate_and_keep(r, 100, 8);
    BOOST_REQUIRE(counting.history().size() == 1u);
    BOOST_TEST(counting.history()[0].alignment < 65536u);
    BOOST_TEST(counting.history()[0].bytes >= 4096u);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
}

BOOST_AUTO_TEST_CASE(release_gives_the_first_buffers_budget_back) {
  // release() returns the first buffer upstream and its bytes to the budget: the whole
  // budget is there for the next first buffer.
  CountingResource counting;
  {
    ChunkProviderResource r(ResourceOptions{.upstream = &counting, .byte_budget = 8192});
    chunkpmr::test::allocate_and_keep(r, 100, 8);  // a 4096-byte first buffer
    BOOST_TEST(r.stats().bytes_held == 4096u);
    r.release();
    BOOST_TEST(r.stats().bytes_held == 0u);
    void* p = r.allocate(8000, 8);  // a first buffer of 8000 bytes: all but 192 of the budget
    BOOST_TEST(counting.history().back().bytes == 8000u);
    BOOST_TEST(r.stats().bytes_held == 8000u);
    r.deallocate(p, 8000, 8);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
}
