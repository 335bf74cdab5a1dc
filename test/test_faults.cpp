// SPDX-License-Identifier: BSL-1.0
// Upstream failures at every point of a workload, and the byte budget at its edges:
// each failure is std::bad_alloc, the resource stays usable, nothing leaks.
#define BOOST_TEST_MODULE faults
#include <boost/test/unit_test.hpp>

#include <chunkpmr/chunk_provider_resource.hpp>

#include "test_support.hpp"

#include <exception>
#include <memory_resource>
#include <string>
#include <thread>
#include <vector>

using chunkpmr::ChunkProviderResource;
using chunkpmr::test::chunks_only;
using chunkpmr::ResourceOptions;
using chunkpmr::test::check_pattern;
using chunkpmr::test::CountingResource;
using chunkpmr::test::fill_pattern;

namespace {

struct Block {
  void* p;
  std::size_t bytes;
  std::size_t alignment;
};

// A mixed workload: small, large (one-shot), over-aligned, frees in between, a second
// thread.
void workload(ChunkProviderResource& r, std::vector<Block>& live) {
  for (int i = 0; i < 400; ++i) {
    std::size_t bytes = static_cast<std::size_t>(1 + (i * 97) % 700);
    std::size_t alignment = std::size_t{1} << (i % 7);
    if (i % 50 == 7) bytes = 40000;
    if (i % 90 == 11) alignment = 65536;
    void* p = r.allocate(bytes, alignment);
    fill_pattern(p, bytes, reinterpret_cast<std::uintptr_t>(p));
    live.push_back(Block{p, bytes, alignment});
    if (i % 3 == 0) {
      Block b = live[live.size() / 2];
      live[live.size() / 2] = live.back();
      live.pop_back();
      BOOST_REQUIRE(check_pattern(b.p, b.bytes, reinterpret_cast<std::uintptr_t>(b.p)));
      r.deallocate(b.p, b.bytes, b.alignment);
    }
  }
  std::exception_ptr failure;
  std::thread([&] {
    try {
      std::pmr::vector<std::pmr::string> strings(&r);
      for (int i = 0; i < 300; ++i) strings.emplace_back(std::string(static_cast<std::size_t>(i % 50), 'q'));
    } catch (...) {
      failure = std::current_exception();
    }
  }).join();
  if (failure) std::rethrow_exception(failure);
}

void free_all(ChunkProviderResource& r, std::vector<Block>& live) {
  for (const Block& b : live) {
    BOOST_REQUIRE(check_pattern(b.p, b.bytes, reinterpret_cast<std::uintptr_t>(b.p)));
    r.deallocate(b.p, b.bytes, b.alignment);
  }
  live.clear();
}

}  // namespace

BOOST_AUTO_TEST_CASE(upstream_failing_at_every_call) {
  // Count the upstream calls of one clean run, then fail each of them in turn.
  std::size_t calls = 0;
  {
    CountingResource counting;
    ChunkProviderResource r(chunks_only(&counting));
    std::vector<Block> live;
    workload(r, live);
    free_all(r, live);
    calls = counting.allocations();
  }
  BOOST_TEST_MESSAGE("upstream calls in one clean run: " << calls);
  BOOST_REQUIRE(calls > 12u);  // blocks, chunks, one-shot chunks, pass-through, an arena
  for (std::size_t k = 1; k <= calls; ++k) {
    CountingResource counting;
    {
      ChunkProviderResource r(chunks_only(&counting));
      std::vector<Block> live;
      counting.fail_at(k);
      bool failed = false;
      try {
        workload(r, live);
      } catch (const std::bad_alloc&) {
        failed = true;
      }
      BOOST_TEST(failed, "call " << k << " failed without std::bad_alloc reaching the caller");
      counting.fail_at(0);
      // Usable afterwards, blocks intact.
      workload(r, live);
      free_all(r, live);
    }
    BOOST_TEST(counting.outstanding_blocks() == 0u, "leak after failing call " << k);
    BOOST_TEST(counting.mismatched_deallocations() == 0u);
  }
}

BOOST_AUTO_TEST_CASE(budget_exact_fit_and_exhaustion) {
  CountingResource counting;
  {
    // 512 + 1024: the first two chunks exactly.
    ChunkProviderResource r(ResourceOptions{.upstream = &counting, .byte_budget = 1536, .first_buffer = false});
    void* a = r.allocate(448, 8);   // 512-byte chunk, full
    void* b = r.allocate(960, 8);   // 1024-byte chunk, full: budget met exactly
    BOOST_TEST(r.stats().bytes_held == 1536u);
    BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, 1, 1), std::bad_alloc);
    BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, 100000, 8), std::bad_alloc);
    BOOST_TEST(r.stats().bytes_held == 1536u);
    BOOST_TEST(r.stats().peak_bytes_held == 1536u);
    r.deallocate(b, 960, 8);  // empties the current chunk: room again
    void* c = r.allocate(960, 8);
    BOOST_TEST(c == b);
    r.deallocate(c, 960, 8);
    r.deallocate(a, 448, 8);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
}

BOOST_AUTO_TEST_CASE(budget_trims_the_callers_cache_before_failing) {
  CountingResource counting;
  ChunkProviderResource r(ResourceOptions{.upstream = &counting,
                                          .byte_budget = 4 * 65536,
                                          .initial_chunk_bytes = 65536, .first_buffer = false});
  std::vector<void*> blocks;
  for (int i = 0; i < 4 * 65; ++i) blocks.push_back(r.allocate(1000, 8));  // 4 chunks
  for (void* p : blocks) r.deallocate(p, 1000, 8);  // 3 emptied + current
  // Two are cached; the owner's frees into the third are applied at its next slow path.
  BOOST_TEST(r.stats().cached_chunks == 2u);
  // A one-shot chunk needs budget that only cached chunks hold: they are trimmed.
  void* big = r.allocate(100000, 8);
  BOOST_TEST(r.stats().cached_chunks == 0u);
  r.deallocate(big, 100000, 8);
  // Over the budget even with nothing cached: bad_alloc, and still usable.
  BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, 4 * 65536, 8), std::bad_alloc);
  void* p = r.allocate(10, 8);
  r.deallocate(p, 10, 8);
}

BOOST_AUTO_TEST_CASE(budget_holds_across_threads) {
  CountingResource counting;
  constexpr std::size_t budget = 16 * 65536;
  ChunkProviderResource r(ResourceOptions{.upstream = &counting, .byte_budget = budget,
                                          .initial_chunk_bytes = 65536, .first_buffer = false});
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      std::vector<void*> mine;
      try {
        for (int i = 0; i < 100000; ++i) mine.push_back(r.allocate(1000, 8));
      } catch (const std::bad_alloc&) {
        failures.fetch_add(1);
      }
      WORKER_CHECK(counting.outstanding_bytes() <= budget + 4 * 1024);  // + arena records
      for (void* p : mine) r.deallocate(p, 1000, 8);
    });
  }
  for (auto& t : threads) t.join();
  BOOST_TEST(failures.load() == 4);
  BOOST_TEST(chunkpmr::test::worker_failures.load() == 0);
  BOOST_TEST(r.stats().peak_bytes_held <= budget);
}

BOOST_AUTO_TEST_CASE(budget_at_every_boundary) {
  // Every budget from 0 up to what the workload needs, in 512-byte steps (the smallest
  // chunk): the workload fails with bad_alloc exactly when the budget is too small,
  // bytes held never exceed the budget, the resource stays usable, nothing leaks.
  std::size_t needed = 0;
  {
    CountingResource counting;
    ChunkProviderResource r(chunks_only(&counting));
    std::vector<Block> live;
    workload(r, live);
    needed = r.stats().peak_bytes_held;
    free_all(r, live);
  }
  BOOST_REQUIRE(needed > 0u);
  std::size_t failures = 0;
  for (std::size_t budget = 0; budget <= needed + 512; budget += 512) {
    CountingResource counting;
    {
      ChunkProviderResource r(ResourceOptions{.upstream = &counting, .byte_budget = budget, .first_buffer = false});
      std::vector<Block> live;
      try {
        workload(r, live);
      } catch (const std::bad_alloc&) {
        ++failures;
      }
      BOOST_TEST(r.stats().peak_bytes_held <= budget);
      free_all(r, live);
      // Still usable within the budget: a block that fits a cached or fresh chunk.
      if (budget >= 512) {
        void* p = r.allocate(8, 8);
        r.deallocate(p, 8, 8);
      }
    }
    BOOST_TEST(counting.outstanding_blocks() == 0u, "leak with budget " << budget);
  }
  BOOST_TEST(failures > 0u);  // small budgets did fail
  BOOST_TEST_MESSAGE("budget sweep: " << needed / 512 + 2 << " budgets, " << failures << " failed runs");
}

namespace {

// An upstream that ignores the requested alignment: every block is 64 bytes past an
// address aligned as asked, so no 64 KiB-aligned request is honoured.
class MisaligningUpstream : public std::pmr::memory_resource {
 public:
  std::size_t outstanding = 0;

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    void* p = counting_.allocate(bytes + 64, alignment);
    ++outstanding;
    return static_cast<std::byte*>(p) + 64;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    counting_.deallocate(static_cast<std::byte*>(p) - 64, bytes + 64, alignment);
    --outstanding;
  }
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }
  CountingResource counting_;
};

}  // namespace

BOOST_AUTO_TEST_CASE(upstream_ignoring_alignment_gets_bad_alloc_not_corruption) {
  // Every kind of frame: a small-class block, a chunk of its own (budget below a
  // block), a 64 KiB class chunk, a one-shot chunk.
  MisaligningUpstream upstream;
  const ResourceOptions kinds[] = {
      {.upstream = &upstream, .first_buffer = false},
      {.upstream = &upstream, .byte_budget = 4096, .first_buffer = false},
      {.upstream = &upstream, .initial_chunk_bytes = 65536, .first_buffer = false},
  };
  for (const ResourceOptions& options : kinds) {
    ChunkProviderResource r(options);
    for (std::size_t bytes : {8u, 20000u}) {
      BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, bytes, 8), std::bad_alloc);
      BOOST_TEST(r.stats().bytes_held == 0u);  // the budget reservation was given back
      BOOST_TEST(upstream.outstanding == 0u);  // and so was the misaligned block
    }
  }
  // The first buffer is asked for with the first request's alignment: misaligned
  // memory for it is refused just the same.
  ChunkProviderResource r(&upstream);
  BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, 8, 4096), std::bad_alloc);
  BOOST_TEST(r.stats().bytes_held == 0u);
  BOOST_TEST(upstream.outstanding == 0u);
}

BOOST_AUTO_TEST_CASE(upstream_failure_under_a_budget_gives_the_reservation_back) {
  // With a finite budget, a failing upstream call must leave bytes_held where it was and
  // the whole budget usable afterwards (for chunks of their own, regions and the first
  // buffer alike).
  for (bool first_buffer : {false, true}) {
    CountingResource counting;
    {
      ChunkProviderResource r(ResourceOptions{.upstream = &counting, .byte_budget = 200000,
                                              .first_buffer = first_buffer});
      for (std::size_t bytes : {std::size_t{40000}, std::size_t{100}}) {
        const std::size_t held = r.stats().bytes_held;
        counting.fail_at(1);
        BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, bytes, 8), std::bad_alloc);
        BOOST_TEST(r.stats().bytes_held == held);
      }
      counting.fail_at(0);
      // Now fill the budget: all of it must still be there.
      void* big = r.allocate(150000, 8);  // a one-shot chunk (or the first buffer)
      BOOST_TEST(big != nullptr);
      BOOST_TEST(r.stats().bytes_held <= 200000u);
    }
    BOOST_TEST(counting.outstanding_blocks() == 0u);
  }
}

BOOST_AUTO_TEST_CASE(a_region_too_big_for_the_budget_is_halved) {
  // Exactly three frames of budget: regions of 1 and 1 frame, then a 2-frame region does
  // not fit and is halved to one frame, so the third 64 KiB chunk is still served.
  CountingResource counting;
  ChunkProviderResource r(ResourceOptions{.upstream = &counting, .byte_budget = 3 * 65536,
                                          .initial_chunk_bytes = 65536, .first_buffer = false});
  std::vector<void*> blocks;
  for (int i = 0; i < 3 * 65; ++i) blocks.push_back(r.allocate(1000, 8));  // three chunks' worth
  BOOST_TEST(counting.outstanding_chunks() == 3u);
  BOOST_TEST(r.stats().bytes_held == 3 * 65536u);
  BOOST_CHECK_THROW(for (int i = 0; i < 65; ++i) blocks.push_back(r.allocate(1000, 8)), std::bad_alloc);
  for (void* p : blocks) r.deallocate(p, 1000, 8);
}

BOOST_AUTO_TEST_CASE(a_first_buffer_the_budget_refused_is_asked_for_again) {
  // The first request is too big for the budget (as a first buffer and as a chunk):
  // the first buffer stays unclaimed, so the next, smaller request still gets one.
  CountingResource counting;
  {
    ChunkProviderResource r(ResourceOptions{.upstream = &counting, .byte_budget = 9000});
    BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, 10000, 8), std::bad_alloc);
    BOOST_TEST(r.stats().bytes_held == 0u);
    BOOST_TEST(counting.allocations() == 0u);
    void* p = r.allocate(100, 8);
    BOOST_REQUIRE(counting.allocations() == 1u);
    BOOST_TEST(counting.history().back().bytes == 4096u);  // a first buffer, not a chunk
    BOOST_TEST(counting.history().back().alignment == alignof(std::max_align_t));
    BOOST_TEST(r.stats().bytes_held == 4096u);
    r.deallocate(p, 100, 8);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
}

