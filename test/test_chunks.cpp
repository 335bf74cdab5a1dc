// SPDX-License-Identifier: BSL-1.0
// Chunk rules on one thread: sizes, masking alignment, routing boundaries, the class
// ratchet, the cache floor and cap, LIFO reuse and steady-state reuse.
#define BOOST_TEST_MODULE chunks
#include <boost/test/unit_test.hpp>

#include <chunkpmr/chunk_provider_resource.hpp>

#include "test_support.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory_resource>
#include <set>
#include <string>
#include <sys/mman.h>
#include <thread>
#include <vector>

using chunkpmr::ChunkProviderResource;
using chunkpmr::test::chunks_only;
using chunkpmr::ResourceOptions;
using chunkpmr::test::CountingResource;
using chunkpmr::test::chunk_span;
using chunkpmr::test::kChunk64K;
using chunkpmr::test::kNoBlockBudget;

namespace {

constexpr std::size_t kHeader = 64;  // documented chunk header size

// Frees the blocks of `bytes` (alignment 8) whose chunk `doomed` picks; returns the rest.
template <class Pred>
std::vector<void*> free_where(ChunkProviderResource& r, const std::vector<void*>& blocks,
                              std::size_t bytes, Pred doomed) {
  std::vector<void*> kept;
  for (void* p : blocks) {
    if (doomed(chunk_span(p))) {
      r.deallocate(p, bytes, 8);
    } else {
      kept.push_back(p);
    }
  }
  return kept;
}

}  // namespace

BOOST_AUTO_TEST_CASE(chunks_are_class_sized_and_64k_aligned) {
  CountingResource counting;
  {
    ChunkProviderResource r(chunks_only(&counting));
    for (int i = 0; i < 20000; ++i) chunkpmr::test::allocate_and_keep(r, static_cast<std::size_t>(i % 200) + 1, 8);
  }
  auto history = counting.chunk_history();
  BOOST_REQUIRE(!history.empty());
  // Upstream sees regions of whole 64 KiB frames, a power of two from 1 to 256 or the
  // largest size, 510: below 16 frames a 64 KiB-aligned request of exactly them, from 16
  // on an ordinary request of one frame more.
  for (auto& block : history) {
    BOOST_TEST(block.bytes % kChunk64K == 0u);
    const bool aligned = block.alignment == kChunk64K;
    const std::size_t frames = block.bytes / kChunk64K - (aligned ? 0 : 1);
    BOOST_TEST(((frames >= 1u && frames <= 256u && (frames & (frames - 1)) == 0u) || frames == 510u));
    BOOST_TEST(aligned == (frames < 16u));
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(exact_fit_uses_the_whole_payload) {
  CountingResource counting;
  ChunkProviderResource r(chunks_only(&counting));  // first chunk 512 bytes: 448 of payload
  auto* first = static_cast<std::byte*>(r.allocate(512 - kHeader, 64));
  BOOST_TEST(chunk_span(first).bytes == 512u);
  BOOST_TEST(reinterpret_cast<std::uintptr_t>(first) == chunk_span(first).base + kHeader);
  void* next = r.allocate(1, 1);  // the chunk is full: a new one
  BOOST_TEST(chunk_span(next).base != chunk_span(first).base);
  BOOST_TEST(chunk_span(next).bytes == 1024u);

  ChunkProviderResource r2(chunks_only(&counting));
  void* p = r2.allocate(512 - kHeader + 1, 8);  // one byte too many for a 512-byte chunk
  BOOST_TEST(chunk_span(p).bytes == 1024u);
  r2.deallocate(p, 512 - kHeader + 1, 8);
}

BOOST_AUTO_TEST_CASE(small_classes_are_carved_from_one_64k_block) {
  CountingResource counting;
  {
    ChunkProviderResource r(chunks_only(&counting));
    std::vector<void*> blocks;
    std::vector<chunkpmr::test::ChunkSpan> chunks;
    while (chunks.size() < 9) {  // 512 B .. 32 KiB carved, then two 64 KiB chunks
      void* p = r.allocate(400, 8);
      blocks.push_back(p);
      if (chunks.empty() || chunk_span(p).base != chunks.back().base) chunks.push_back(chunk_span(p));
    }
    const std::uintptr_t block = chunks.front().frame;
    for (std::size_t c = 0; c < 7; ++c) {
      BOOST_TEST(chunks[c].bytes == std::size_t{512} << c);
      BOOST_TEST(chunks[c].frame == block);
      BOOST_TEST(chunks[c].base == block + chunks[c].bytes);  // the buddy layout
    }
    for (std::size_t c = 7; c < 9; ++c) {
      BOOST_TEST(chunks[c].bytes == kChunk64K);
      BOOST_TEST(chunks[c].base == chunks[c].frame);
    }
    // Upstream saw regions of 1, 1 and 2 frames: the block for all seven small
    // classes, the first 64 KiB chunk, then the second with one frame to spare.
    auto history = counting.chunk_history();
    BOOST_REQUIRE(history.size() == 3u);
    BOOST_TEST(history[0].bytes == kChunk64K);
    BOOST_TEST(history[1].bytes == kChunk64K);
    BOOST_TEST(history[2].bytes == 2 * kChunk64K);
    BOOST_TEST(r.stats().normal_chunks_allocated == 9u);
    BOOST_TEST(r.stats().bytes_held == 4 * kChunk64K);

    // The block goes back once every carved chunk has, the arena having moved past
    // the small classes, and its one-frame region with it; the 64 KiB chunks stay
    // (one current, one cached), and so do their regions.
    for (void* p : blocks) r.deallocate(p, 400, 8);
    void* big = r.allocate(70000, 8);  // a slow path applies the batched frees
    r.deallocate(big, 70000, 8);
    BOOST_TEST(counting.outstanding_blocks() == 2u);
    BOOST_TEST(r.stats().bytes_held == 3 * kChunk64K);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(a_budget_below_a_block_gets_chunks_of_their_own) {
  CountingResource counting;
  {
    ChunkProviderResource r(ResourceOptions{.upstream = &counting, .byte_budget = 4096, .first_buffer = false});
    std::vector<void*> blocks;
    for (int i = 0; i < 5; ++i) blocks.push_back(r.allocate(400, 8));  // 512, 1 KiB, 2 KiB
    auto history = counting.chunk_history();
    BOOST_TEST(history.size() == 3u);
    for (std::size_t c = 0; c < history.size(); ++c) {
      BOOST_TEST(history[c].bytes == std::size_t{512} << c);
      BOOST_TEST(history[c].alignment == kChunk64K);
    }
    BOOST_TEST(chunk_span(blocks.back()).base == chunk_span(blocks.back()).frame);
    BOOST_TEST(r.stats().bytes_held == 512u + 1024u + 2048u);
    BOOST_CHECK_THROW(chunkpmr::test::allocate_and_keep(r, 4000, 8), std::bad_alloc);  // 4 KiB more exceeds it
    for (void* p : blocks) r.deallocate(p, 400, 8);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
}

BOOST_AUTO_TEST_CASE(max_normal_alloc_boundary) {
  CountingResource counting;
  const ResourceOptions options = ResourceOptions{.upstream = &counting, .max_normal_alloc = 4096, .first_buffer = false};
  {
    ChunkProviderResource r(options);
    void* p = r.allocate(4096 - 8, 8);  // bytes + alignment == max_normal_alloc: a class chunk
    auto s = r.stats();
    BOOST_TEST(s.normal_chunks_allocated == 1u);
    BOOST_TEST(s.oversized_chunks_allocated == 0u);
    BOOST_TEST(chunk_span(p).bytes == 8192u);
    r.deallocate(p, 4096 - 8, 8);
  }
  {
    ChunkProviderResource r(options);
    void* p = r.allocate(4096 - 7, 8);  // one more: a one-shot chunk sized to fit
    auto s = r.stats();
    BOOST_TEST(s.normal_chunks_allocated == 0u);
    BOOST_TEST(s.oversized_chunks_allocated == 1u);
    BOOST_TEST(counting.chunk_history().back().bytes == kHeader + 4096 - 7);
    BOOST_TEST(counting.chunk_history().back().alignment == kChunk64K);
    BOOST_TEST(reinterpret_cast<std::uintptr_t>(p) == chunk_span(p).frame + kHeader);
    const std::size_t before = counting.outstanding_chunks();
    r.deallocate(p, 4096 - 7, 8);  // returned upstream at once, never cached
    BOOST_TEST(counting.outstanding_chunks() == before - 1);
    BOOST_TEST(r.stats().cached_chunks == 0u);
  }
  {
    ChunkProviderResource r(options);
    void* small = r.allocate(8, 8);  // a large request that fits the current chunk is
    chunkpmr::test::allocate_and_keep(r, 200, 8);              // served from it, not from a one-shot chunk
    BOOST_TEST(r.stats().oversized_chunks_allocated == 0u);
    r.deallocate(small, 8, 8);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
}

BOOST_AUTO_TEST_CASE(alignment_16k_from_chunks_32k_passes_through) {
  CountingResource counting;
  {
    ChunkProviderResource r(ResourceOptions{.upstream = &counting, .max_normal_alloc = 65472, .first_buffer = false});
    void* p16 = r.allocate(100, 16384);
    BOOST_TEST(reinterpret_cast<std::uintptr_t>(p16) % 16384 == 0u);
    BOOST_TEST(chunk_span(p16).bytes == 32768u);  // from a chunk: the first 16 KiB-aligned
    BOOST_TEST(reinterpret_cast<std::uintptr_t>(p16) - chunk_span(p16).base == 16384u);  // offset
    BOOST_TEST(r.stats().passthrough_allocations == 0u);

    void* p32 = r.allocate(100, 32768);
    BOOST_TEST(reinterpret_cast<std::uintptr_t>(p32) % 32768 == 0u);
    BOOST_TEST(counting.history().back().alignment == 32768u);  // straight to upstream
    BOOST_TEST(r.stats().passthrough_allocations == 1u);
    BOOST_TEST(counting.outstanding_with_alignment(32768) == 1u);
    r.deallocate(p32, 100, 32768);
    BOOST_TEST(counting.outstanding_with_alignment(32768) == 0u);
    r.deallocate(p16, 100, 16384);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(default_16k_alignment_takes_a_one_shot_chunk) {
  CountingResource counting;
  {
    ChunkProviderResource r(chunks_only(&counting));  // max_normal_alloc 16 KiB: 1 + 16384 exceeds it
    void* p = r.allocate(1, 16384);
    BOOST_TEST(reinterpret_cast<std::uintptr_t>(p) % 16384 == 0u);
    BOOST_TEST(r.stats().oversized_chunks_allocated == 1u);
    BOOST_TEST(counting.chunk_history().back().bytes == 16384u + 1u);
    r.deallocate(p, 1, 16384);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
}

BOOST_AUTO_TEST_CASE(class_ratchet_grows_one_class_per_refill_up_to_64k) {
  CountingResource counting;
  ChunkProviderResource r(chunks_only(&counting));
  std::vector<std::size_t> sizes;
  std::uintptr_t last = 0;
  for (int i = 0; i < 1000; ++i) {
    void* p = r.allocate(400, 8);
    if (chunk_span(p).base != last) sizes.push_back(chunk_span(p).bytes);
    last = chunk_span(p).base;
  }
  BOOST_REQUIRE(sizes.size() >= 10u);
  for (std::size_t i = 0; i < 8; ++i) BOOST_TEST(sizes[i] == (std::size_t{512} << i));
  for (std::size_t i = 8; i < sizes.size(); ++i) BOOST_TEST(sizes[i] == kChunk64K);
}

BOOST_AUTO_TEST_CASE(initial_chunk_bytes_sets_the_first_class) {
  CountingResource counting;
  ChunkProviderResource a(ResourceOptions{.upstream = &counting, .initial_chunk_bytes = 3000, .first_buffer = false});
  void* p = a.allocate(1, 1);
  BOOST_TEST(chunk_span(p).bytes == 4096u);
  BOOST_TEST(chunk_span(p).base == chunk_span(p).frame + 4096u);  // its place in the block
  ChunkProviderResource b(ResourceOptions{.upstream = &counting, .initial_chunk_bytes = 1 << 30, .first_buffer = false});
  void* q = b.allocate(1, 1);
  BOOST_TEST(chunk_span(q).bytes == kChunk64K);
  BOOST_TEST(chunk_span(q).base == chunk_span(q).frame);
}

BOOST_AUTO_TEST_CASE(lifo_free_rolls_the_cursor_back) {
  ChunkProviderResource r(chunks_only(std::pmr::get_default_resource()));
  void* keep = r.allocate(24, 8);
  void* a = r.allocate(40, 8);
  r.deallocate(a, 40, 8);
  void* b = r.allocate(40, 8);
  BOOST_TEST(a == b);
  void* c = r.allocate(16, 8);
  r.deallocate(b, 40, 8);  // not the most recent: no rollback
  void* d = r.allocate(8, 8);
  BOOST_TEST(d == static_cast<std::byte*>(c) + 16);
  r.deallocate(c, 16, 8);
  r.deallocate(d, 8, 8);
  r.deallocate(keep, 24, 8);
}

BOOST_AUTO_TEST_CASE(emptied_current_chunk_is_rewound_in_place) {
  CountingResource counting;
  ChunkProviderResource r(ResourceOptions{.upstream = &counting, .initial_chunk_bytes = kChunk64K, .first_buffer = false});
  std::vector<void*> blocks;
  for (int i = 0; i < 100; ++i) blocks.push_back(r.allocate(64, 8));
  // Free in FIFO order: no LIFO rollback helps, but the last free empties the chunk.
  for (void* p : blocks) r.deallocate(p, 64, 8);
  BOOST_TEST(r.allocate(64, 8) == blocks.front());
  BOOST_TEST(counting.chunk_history().size() == 1u);
}

BOOST_AUTO_TEST_CASE(remote_frees_of_the_current_chunk_do_not_exhaust_the_surplus) {
  // A current chunk repeatedly emptied by another thread keeps being reused in place;
  // its count is reset on each rewind, so millions of remote frees never reach zero.
  CountingResource counting;
  ChunkProviderResource r(ResourceOptions{.upstream = &counting, .initial_chunk_bytes = kChunk64K, .first_buffer = false});
  void* anchor = r.allocate(8, 8);
  for (int round = 0; round < 2000; ++round) {
    std::vector<void*> blocks;
    for (int i = 0; i < 500; ++i) blocks.push_back(r.allocate(8, 8));
    std::thread([&] {
      for (void* p : blocks) r.deallocate(p, 8, 8);
    }).join();
  }
  r.deallocate(anchor, 8, 8);
  BOOST_TEST(r.allocate(8, 8) != nullptr);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(steady_state_churn_makes_no_upstream_calls) {
  CountingResource counting;
  ChunkProviderResource r(chunks_only(&counting));
  std::size_t after_warmup = 0;
  for (int round = 0; round < 300; ++round) {
    {
      std::pmr::vector<std::pmr::string> strings(&r);
      for (int i = 0; i < 500; ++i)
        strings.emplace_back(std::string(static_cast<std::size_t>(20 + i % 40), 'a' + static_cast<char>(i % 26)));
      std::pmr::vector<int> numbers(&r);
      for (int i = 0; i < 3000; ++i) numbers.push_back(i);
    }
    if (round == 20) after_warmup = counting.allocations();
  }
  BOOST_TEST(counting.allocations() == after_warmup);
  BOOST_TEST(r.stats().chunk_reuses > 0u);
}

BOOST_AUTO_TEST_CASE(below_floor_chunks_go_back_upstream) {
  CountingResource counting;
  ChunkProviderResource r(ResourceOptions{.upstream = &counting, .byte_budget = kNoBlockBudget, .first_buffer = false});
  void* in_first = r.allocate(400, 8);  // class 0 chunk (512 bytes)
  chunkpmr::test::allocate_and_keep(r, 400, 8);                   // refill: class 1 becomes current, floor 1
  BOOST_TEST(counting.outstanding_chunks() == 2u);
  r.deallocate(in_first, 400, 8);  // the owner's free is batched, not yet applied
  BOOST_TEST(counting.outstanding_chunks_of_size(512) == 1u);
  void* big = r.allocate(40000, 8);  // the next slow path applies it: the 512-byte
  BOOST_TEST(counting.outstanding_chunks_of_size(512) == 0u);  // chunk, below the floor,
  BOOST_TEST(r.stats().cached_chunks == 0u);                   // went upstream
  r.deallocate(big, 40000, 8);
}

BOOST_AUTO_TEST_CASE(owner_frees_in_retired_chunks_are_batched_per_chunk) {
  CountingResource counting;
  ChunkProviderResource r(ResourceOptions{.upstream = &counting, .initial_chunk_bytes = kChunk64K, .first_buffer = false});
  std::vector<void*> first;
  for (int i = 0; i < 65; ++i) first.push_back(r.allocate(1000, 8));  // fills chunk 1
  std::vector<void*> second;
  for (int i = 0; i < 65; ++i) second.push_back(r.allocate(1000, 8));  // fills chunk 2
  void* current = r.allocate(1000, 8);  // chunk 3 is current
  for (void* p : first) r.deallocate(p, 1000, 8);
  BOOST_TEST(r.stats().cached_chunks == 0u);  // 65 frees counted, not yet applied
  r.deallocate(second.front(), 1000, 8);      // a free into another chunk applies them
  BOOST_TEST(r.stats().cached_chunks == 1u);
  BOOST_TEST(r.stats().chunks_released_by_owner == 1u);
  for (std::size_t i = 1; i < second.size(); ++i) r.deallocate(second[i], 1000, 8);
  r.trim();  // trim applies pending frees too, then returns the cache
  BOOST_TEST(r.stats().chunks_released_by_owner == 2u);
  BOOST_TEST(counting.outstanding_chunks() == 1u);
  r.deallocate(current, 1000, 8);
}

BOOST_AUTO_TEST_CASE(raising_the_floor_evicts_smaller_cached_chunks) {
  CountingResource counting;
  ChunkProviderResource r(ResourceOptions{.upstream = &counting, .byte_budget = kNoBlockBudget, .first_buffer = false});
  // Fill the 512-byte chunk, have another thread free its block: at the next refill it
  // retires empty and is cached (class 0 >= floor 0) ...
  void* p = r.allocate(400, 8);
  std::thread([&] { r.deallocate(p, 400, 8); }).join();
  // ... and the same refill asks for class 1, raising the floor and evicting it.
  chunkpmr::test::allocate_and_keep(r, 400, 8);
  BOOST_TEST(counting.outstanding_chunks() == 1u);
  BOOST_TEST(counting.chunk_history().back().bytes == 1024u);
  BOOST_TEST(r.stats().cached_chunks == 0u);
}

BOOST_AUTO_TEST_CASE(cache_cap_returns_surplus_chunks_upstream) {
  CountingResource counting;
  ChunkProviderResource r(ResourceOptions{.upstream = &counting,
                                          .initial_chunk_bytes = kChunk64K,
                                          .max_cached_bytes_per_thread = kChunk64K, .first_buffer = false});
  std::vector<void*> blocks;
  for (int i = 0; i < 640; ++i) blocks.push_back(r.allocate(1000, 8));  // ~10 chunks
  const std::size_t chunks = r.stats().normal_chunks_allocated;
  BOOST_REQUIRE(chunks >= 10u);
  BOOST_TEST(counting.outstanding_chunks() == 5u);  // regions of 1, 1, 2, 4, 8 frames
  for (void* p : blocks) r.deallocate(p, 1000, 8);
  // Larger than any chunk: a slow path, which applies the last batched frees.
  void* big = r.allocate(70000, 8);
  r.deallocate(big, 70000, 8);
  // The current chunk stays (rewound); one emptied chunk fits the cap; the rest left,
  // and every region with no frame out went upstream with them.
  BOOST_TEST(r.stats().cached_chunks == 1u);
  BOOST_TEST(r.stats().cached_bytes == kChunk64K);
  BOOST_TEST(counting.outstanding_chunks() <= 2u);
  BOOST_TEST(r.stats().bytes_held == counting.outstanding_bytes());
  r.trim();
  BOOST_TEST(r.stats().cached_chunks == 0u);
  // No live block anywhere: the emptied current chunk goes too, and its region.
  BOOST_TEST(counting.outstanding_chunks() == 0u);
  BOOST_TEST(r.stats().bytes_held == 0u);
}

BOOST_AUTO_TEST_CASE(cached_chunks_are_reused_before_upstream) {
  CountingResource counting;
  ChunkProviderResource r(ResourceOptions{.upstream = &counting, .initial_chunk_bytes = kChunk64K, .first_buffer = false});
  std::vector<void*> blocks;
  for (int i = 0; i < 640; ++i) blocks.push_back(r.allocate(1000, 8));
  for (void* p : blocks) r.deallocate(p, 1000, 8);
  const std::size_t allocations = counting.allocations();
  blocks.clear();
  for (int i = 0; i < 640; ++i) blocks.push_back(r.allocate(1000, 8));
  BOOST_TEST(counting.allocations() == allocations);
  BOOST_TEST(r.stats().chunk_reuses >= 8u);
  for (void* p : blocks) r.deallocate(p, 1000, 8);
}

BOOST_AUTO_TEST_CASE(stats_track_bytes_held_and_peak) {
  CountingResource counting;
  ChunkProviderResource r(ResourceOptions{.upstream = &counting, .initial_chunk_bytes = kChunk64K, .first_buffer = false});
  std::vector<void*> blocks;
  for (int i = 0; i < 200; ++i) blocks.push_back(r.allocate(1000, 8));
  auto s = r.stats();
  BOOST_TEST(s.bytes_held == 4 * kChunk64K);
  BOOST_TEST(s.peak_bytes_held == 4 * kChunk64K);
  BOOST_TEST(s.live_thread_arenas == 1u);
  BOOST_TEST(s.normal_chunks_allocated == 4u);
  for (void* p : blocks) r.deallocate(p, 1000, 8);
  r.trim();
  s = r.stats();
  BOOST_TEST(s.bytes_held == 0u);  // nothing live: the emptied current chunk went too
  BOOST_TEST(s.peak_bytes_held == 4 * kChunk64K);
  BOOST_TEST(s.chunks_released_by_owner == 4u);
}

BOOST_AUTO_TEST_CASE(regions_double_with_what_the_arena_holds_and_go_back_exactly) {
  // A growing arena asks upstream for regions of 1, 1, 2, 4, 8, 16, 32, ... frames: as
  // many as it holds, so at most one call per MiB once past the first MiB. From 16
  // frames on a region is an ordinary request one frame larger. Each goes back with the
  // very (bytes, alignment) pair it was asked with.
  CountingResource counting;
  {
    ChunkProviderResource r(ResourceOptions{.upstream = &counting,
                                            .initial_chunk_bytes = kChunk64K,
                                            .first_buffer = false});
    for (int i = 0; i < 5000; ++i) chunkpmr::test::allocate_and_keep(r, 1000, 8);  // ~5 MB
    const auto history = counting.chunk_history();
    // ~5 MB in 1000-byte blocks: 82 frames' worth, so regions of 1..64 frames.
    const std::size_t expected_frames[] = {1, 1, 2, 4, 8, 16, 32, 64};
    BOOST_REQUIRE(history.size() == std::size(expected_frames));
    for (std::size_t i = 0; i < history.size(); ++i) {
      const std::size_t frames = expected_frames[i];
      BOOST_TEST(history[i].bytes == (frames < 16 ? frames : frames + 1) * kChunk64K);
      BOOST_TEST(history[i].alignment == (frames < 16 ? kChunk64K : alignof(std::max_align_t)));
    }
    BOOST_TEST(history.size() <= 5 + counting.outstanding_bytes() / (1 << 20));
    BOOST_TEST(r.stats().bytes_held == counting.outstanding_bytes());
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

namespace {

// Hands out ordinary requests at a chosen offset from a 64 KiB boundary (0, 16, or the
// last 16-byte place before the next one) and records each block, so a test can check
// that every allocation lies inside a block upstream gave.
class OffsetUpstream : public std::pmr::memory_resource {
 public:
  explicit OffsetUpstream(std::size_t offset) : offset_(offset) {}
  ~OffsetUpstream() override { BOOST_TEST(blocks_.empty()); }
  bool inside_a_block(const void* p, std::size_t bytes) const {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    for (auto& [start, size] : blocks_)
      if (a >= start && a + bytes <= start + size) return true;
    return false;
  }
  std::size_t ordinary_regions = 0;

 private:
  // An ordinary block is preceded by a guard the resource must not write.
  static constexpr std::uint64_t kGuard = 0x6a09e667f3bcc908u;
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (alignment > alignof(std::max_align_t)) return keep(inner_->allocate(bytes, alignment), bytes);
    auto* raw = static_cast<std::byte*>(inner_->allocate(bytes + 2 * kChunk64K, kChunk64K));
    if (bytes >= 17 * kChunk64K) ++ordinary_regions;
    std::byte* block = raw + kChunk64K + offset_;
    std::memcpy(block - sizeof kGuard, &kGuard, sizeof kGuard);
    return keep(block, bytes);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    BOOST_REQUIRE(blocks_.count(a) == 1u);
    BOOST_TEST(blocks_[a] == bytes);
    blocks_.erase(a);
    if (alignment > alignof(std::max_align_t)) return inner_->deallocate(p, bytes, alignment);
    auto* block = static_cast<std::byte*>(p);
    std::uint64_t guard = 0;
    std::memcpy(&guard, block - sizeof guard, sizeof guard);
    BOOST_TEST(guard == kGuard);  // nothing was written before the block
    inner_->deallocate(block - kChunk64K - offset_, bytes + 2 * kChunk64K, kChunk64K);
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override { return this == &o; }
  void* keep(void* p, std::size_t bytes) {
    blocks_[reinterpret_cast<std::uintptr_t>(p)] = bytes;
    return p;
  }
  std::size_t offset_;
  std::pmr::memory_resource* inner_ = std::pmr::new_delete_resource();
  std::map<std::uintptr_t, std::size_t> blocks_;
};

}  // namespace

BOOST_AUTO_TEST_CASE(an_ordinary_region_request_holds_its_frames_wherever_upstream_puts_it) {
  // Regions of 16 frames and more are ordinary requests one frame larger, the frames at
  // the block's first 64 KiB boundary past the word that records the block. Upstream
  // blocks starting on a boundary, just past one and just before one are the extremes.
  for (std::size_t offset : {std::size_t{0}, std::size_t{16}, kChunk64K - 16}) {
    BOOST_TEST_CONTEXT("block offset " << offset) {
      OffsetUpstream upstream(offset);
      {
        ChunkProviderResource r(ResourceOptions{.upstream = &upstream,
                                                .initial_chunk_bytes = kChunk64K,
                                                .first_buffer = false});
        std::vector<std::pair<void*, std::size_t>> blocks;
        for (int i = 0; i < 3000; ++i) {  // ~3 MB: regions of 16 and 32 frames
          const std::size_t bytes = 1000 + static_cast<std::size_t>(i % 64);
          void* p = r.allocate(bytes, 8);
          std::memset(p, i & 0xff, bytes);
          BOOST_TEST(upstream.inside_a_block(p, bytes));
          blocks.emplace_back(p, bytes);
        }
        BOOST_TEST(upstream.ordinary_regions == 2u);
        // Masking still finds every chunk: frees from the owner and the payloads intact.
        for (std::size_t i = 0; i < blocks.size(); ++i) {
          auto* bytes = static_cast<unsigned char*>(blocks[i].first);
          BOOST_TEST(bytes[blocks[i].second - 1] == (i & 0xff));
          r.deallocate(blocks[i].first, blocks[i].second, 8);
        }
        r.trim();  // nothing is live: every region goes back
        BOOST_TEST(r.stats().bytes_held == 0u);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(release_gives_back_each_region_in_one_call_and_each_request_of_its_own) {
  // release() gives every region back whole, one call each, whatever its frames hold
  // (64 KiB chunks and frames given back; a small-class block, class frames, cached
  // chunks), and every upstream request of its own one by one (one-shot chunks,
  // over-aligned blocks, and the class chunks a budget below a frame gets). A region
  // that went back before, out of the middle of the arena's list, is not given back
  // again. Then the resource starts over from a one-frame region.
  struct Setup {
    const char* name;
    std::size_t max_chunk_bytes;
    std::size_t byte_budget;
    std::size_t cache;
  };
  const Setup setups[] = {{"64 KiB chunks", 0, SIZE_MAX, 0},
                          {"8 KiB class frames", 8192, SIZE_MAX, 1 << 20},
                          {"chunks of their own", 0, kNoBlockBudget, 1 << 20}};
  for (const Setup& setup : setups) {
    BOOST_TEST_CONTEXT(setup.name) {
      const bool tight = setup.byte_budget != SIZE_MAX;
      CountingResource counting;
      ResourceOptions options{.upstream = &counting,
                              .byte_budget = setup.byte_budget,
                              .max_cached_bytes_per_thread = setup.cache,
                              .first_buffer = false};
      if (!tight) options.initial_chunk_bytes = kChunk64K;
      if (setup.max_chunk_bytes != 0) options.max_chunk_bytes = setup.max_chunk_bytes;
      ChunkProviderResource r(options);
      const int blocks = tight ? 20 : 3000;  // ~3 MB: 7 regions
      std::vector<void*> kept;
      for (int i = 0; i < blocks; ++i) {
        void* p = r.allocate(1000, 8);
        std::memset(p, 0x5a, 1000);
        kept.push_back(p);
      }
      if (setup.max_chunk_bytes == 0 && !tight) {
        // Empty the second region (one frame, behind newer ones on the arena's list).
        std::vector<std::uintptr_t> frames;
        for (void* p : kept) {
          const std::uintptr_t frame = chunk_span(p).frame;
          if (std::find(frames.begin(), frames.end(), frame) == frames.end()) frames.push_back(frame);
        }
        const std::size_t regions = counting.outstanding_chunks();
        kept = free_where(r, kept, 1000, [&](const chunkpmr::test::ChunkSpan& c) { return c.frame == frames[1]; });
        r.deallocate(r.allocate(70000, 8), 70000, 8);  // a slow path: the batched frees land
        BOOST_TEST(counting.outstanding_chunks() == regions - 1);
      }
      // An emptied chunk (not the current one): cached, or with no cache its frame goes
      // back to its region (under the tight budget the one-shot chunk trims the cache).
      const std::uintptr_t emptied = chunk_span(kept[kept.size() / 2]).base;
      kept = free_where(r, kept, 1000, [&](const chunkpmr::test::ChunkSpan& c) { return c.base == emptied; });
      const std::size_t one_shot_bytes = tight ? 17000 : 300000;
      r.deallocate(r.allocate(one_shot_bytes, 8), one_shot_bytes, 8);  // a slow path: the batched frees land
      if (setup.cache != 0 && !tight) BOOST_TEST(r.stats().cached_chunks >= 1u);
      std::memset(r.allocate(one_shot_bytes, 8), 0x5a, one_shot_bytes);
      (void)r.allocate(1000, std::size_t{1} << 17);
      BOOST_TEST(counting.outstanding_with_alignment(std::size_t{1} << 17) == 1u);
      const std::size_t outstanding = counting.outstanding_blocks();
      const std::size_t calls = counting.deallocations();
      BOOST_TEST(r.stats().bytes_held == counting.outstanding_bytes());
      r.release();
      BOOST_TEST(counting.outstanding_blocks() == 0u);
      BOOST_TEST(counting.deallocations() - calls == outstanding);
      BOOST_TEST(counting.mismatched_deallocations() == 0u);
      BOOST_TEST(r.stats().bytes_held == 0u);
      // Starting over: a one-frame region first, blocks intact, all back at the end.
      const std::size_t requests = counting.chunk_history().size();
      std::vector<void*> again;
      for (int i = 0; i < blocks; ++i) {
        void* p = r.allocate(1000, 8);
        std::memset(p, i & 0xff, 1000);
        again.push_back(p);
      }
      if (!tight) {
        BOOST_REQUIRE(counting.chunk_history().size() > requests);
        BOOST_TEST(counting.chunk_history()[requests].bytes == kChunk64K);
      }
      for (std::size_t i = 0; i < again.size(); ++i) {
        BOOST_TEST(static_cast<unsigned char*>(again[i])[999] == (i & 0xff));
        r.deallocate(again[i], 1000, 8);
      }
      r.release();
      BOOST_TEST(counting.outstanding_blocks() == 0u);
      BOOST_TEST(counting.mismatched_deallocations() == 0u);
    }
  }
}

namespace {

// Maps every request with mmap and, once told, makes the memory of every region
// inaccessible but for its first frame's header page and the page before it (an
// ordinary region's request records its block in the word before the first frame).
class GuardingUpstream : public std::pmr::memory_resource {
 public:
  ~GuardingUpstream() override { BOOST_TEST(maps_.empty()); }
  void guard_regions() {
    for (auto& [block, m] : maps_) {
      BOOST_REQUIRE(CountingResource::is_chunk_request({m.bytes, m.alignment}));
      const auto start = reinterpret_cast<std::uintptr_t>(block);
      const std::uintptr_t first = m.alignment == kChunk64K ? start : (start + 8 + kChunk64K - 1) & ~(kChunk64K - 1);
      BOOST_REQUIRE(mprotect(m.map, m.map_bytes, PROT_NONE) == 0);
      auto* keep = reinterpret_cast<void*>((first - 8) & ~(kPage - 1));
      BOOST_REQUIRE(mprotect(keep, first + kPage - reinterpret_cast<std::uintptr_t>(keep), PROT_READ | PROT_WRITE) == 0);
    }
  }

 private:
  static constexpr std::size_t kPage = 4096;
  struct Mapping {
    void* map;
    std::size_t map_bytes;
    std::size_t bytes;
    std::size_t alignment;
  };
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    const std::size_t map_bytes = (bytes + alignment + kPage - 1) & ~(kPage - 1);
    void* map = mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) throw std::bad_alloc();
    void* block = reinterpret_cast<void*>((reinterpret_cast<std::uintptr_t>(map) + kPage + alignment - 1) & ~(alignment - 1));
    if (alignment <= kPage) block = map;
    maps_[block] = Mapping{map, map_bytes, bytes, alignment};
    return block;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    auto it = maps_.find(p);
    BOOST_REQUIRE(it != maps_.end());
    BOOST_TEST(it->second.bytes == bytes);
    BOOST_TEST(it->second.alignment == alignment);
    munmap(it->second.map, it->second.map_bytes);
    maps_.erase(it);
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override { return this == &o; }
  std::map<void*, Mapping> maps_;
};

}  // namespace

BOOST_AUTO_TEST_CASE(release_reads_no_frame_of_a_region_but_its_first_frames_header) {
  // A million-block release() used to read every chunk's header, one per 64 KiB frame.
  // With every page of every region made inaccessible but the first frame's header (and
  // the word before it), release() still gives every region back: it reads nothing else.
  // Only regions here: 64 KiB chunks, no one-shot chunk, no first buffer.
  GuardingUpstream upstream;
  ChunkProviderResource r(ResourceOptions{.upstream = &upstream,
                                          .initial_chunk_bytes = kChunk64K,
                                          .first_buffer = false});
  std::vector<void*> blocks;
  for (int i = 0; i < 6000; ++i) blocks.push_back(r.allocate(1000, 8));  // ~6 MB: regions of 1..64 frames
  blocks = free_where(r, blocks, 1000, [](const chunkpmr::test::ChunkSpan& c) { return c.frame % (3 * kChunk64K) == 0; });
  r.deallocate(r.allocate(9000, 8), 9000, 8);  // a slow path: the batched frees land, chunks cached
  BOOST_TEST(r.stats().cached_chunks > 0u);
  upstream.guard_regions();
  r.release();
}

BOOST_AUTO_TEST_CASE(regions_stop_growing_at_510_frames) {
  // 510 frames (one more asked: 511 * 64 KiB) is the largest region: glibc raises its
  // mmap threshold only for blocks up to 32 MiB, and a region that stays under it comes
  // from glibc's heap the next time (and its trim threshold, twice the mmap threshold,
  // then keeps up to ~64 MiB freed by release() off the kernel). Regions double up to
  // 256 frames; past 512 frames held, every further region has 510 frames.
  CountingResource counting;
  {
    ChunkProviderResource r(ResourceOptions{.upstream = &counting,
                                            .initial_chunk_bytes = kChunk64K,
                                            .first_buffer = false});
    // 1100 frames' worth of 1000-byte blocks (never written: only the chunk headers are
    // touched): regions of 1, 1, 2, ... 256, then 510 and 510.
    for (int i = 0; i < 1100 * 65; ++i) chunkpmr::test::allocate_and_keep(r, 1000, 8);
    const auto history = counting.chunk_history();
    BOOST_REQUIRE(history.size() == 12u);
    BOOST_TEST(history[9].bytes == 257 * kChunk64K);
    for (std::size_t i = 10; i < history.size(); ++i) {
      BOOST_TEST(history[i].bytes == 511 * kChunk64K);
      BOOST_TEST(history[i].alignment == alignof(std::max_align_t));
    }
    BOOST_TEST(r.stats().bytes_held == counting.outstanding_bytes());
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(frames_of_a_region_are_reused_before_asking_upstream) {
  // One live block keeps a 16-frame region out; its other frames' chunks are emptied
  // and, with no chunk cache, given back to the region. Growing again takes those
  // frames: no upstream call.
  CountingResource counting;
  ChunkProviderResource r(ResourceOptions{.upstream = &counting,
                                          .initial_chunk_bytes = kChunk64K,
                                          .max_cached_bytes_per_thread = 0,
                                          .first_buffer = false});
  std::vector<void*> blocks;
  for (int i = 0; i < 2000; ++i) blocks.push_back(r.allocate(1000, 8));  // 31 chunks: 6 regions
  BOOST_REQUIRE(counting.chunk_history().size() == 6u);
  void* keep = blocks.back();
  blocks.pop_back();
  for (void* p : blocks) r.deallocate(p, 1000, 8);
  void* big = r.allocate(70000, 8);  // a slow path: the batched frees land
  r.deallocate(big, 70000, 8);
  const std::size_t calls = counting.chunk_history().size();
  BOOST_TEST(counting.outstanding_chunks() == 1u);  // only the region holding `keep`
  blocks.clear();
  for (int i = 0; i < 900; ++i) blocks.push_back(r.allocate(1000, 8));  // 14 frames' worth
  BOOST_TEST(counting.chunk_history().size() == calls);
  BOOST_TEST(counting.outstanding_chunks() == 1u);
  for (void* p : blocks) r.deallocate(p, 1000, 8);
  r.deallocate(keep, 1000, 8);
}

BOOST_AUTO_TEST_CASE(max_chunk_bytes_caps_the_ratchet_and_packs_class_frames) {
  // With chunks capped at 8 KiB, the climb takes 512 B .. 8 KiB from one small-class
  // block, and every later 8 KiB chunk comes from a class frame: eight per 64 KiB frame,
  // at multiples of 8 KiB, the first right after the frame's header (64 bytes short).
  // Frees from another thread find their chunk in either.
  CountingResource counting;
  {
    ChunkProviderResource r(ResourceOptions{.upstream = &counting, .first_buffer = false,
                                            .max_chunk_bytes = 8192});
    std::vector<void*> blocks;
    std::vector<chunkpmr::test::ChunkSpan> chunks;
    for (int i = 0; i < 2000; ++i) {  // ~200 KB: about 25 chunks of 8 KiB
      void* p = r.allocate(100, 8);
      chunkpmr::test::fill_pattern(p, 100, static_cast<std::uintptr_t>(i));
      blocks.push_back(p);
      if (chunks.empty() || chunk_span(p).base != chunks.back().base) chunks.push_back(chunk_span(p));
    }
    BOOST_REQUIRE(chunks.size() > 12u);
    for (std::size_t c = 0; c < 5; ++c) {  // the climb: the buddy layout of one block
      BOOST_TEST(chunks[c].bytes == std::size_t{512} << c);
      BOOST_TEST(chunks[c].base == chunks[0].frame + chunks[c].bytes);
    }
    std::size_t in_frame = 0;
    for (std::size_t c = 5; c < chunks.size(); ++c) {
      const std::uintptr_t offset = chunks[c].base - chunks[c].frame;
      if (offset == kHeader) {  // place 0, after the frame's header
        BOOST_TEST(chunks[c].bytes == 8192u - kHeader);
      } else {
        BOOST_TEST(chunks[c].bytes == 8192u);
        BOOST_TEST((offset != 0 && offset % 8192 == 0));
      }
      in_frame += chunks[c].frame == chunks[5].frame;
    }
    BOOST_TEST(chunks[5].base == chunks[5].frame + kHeader);  // a class frame starts at place 0
    BOOST_TEST(in_frame == 8u);  // the first class frame holds eight chunks
    std::thread([&] {
      for (std::size_t i = 0; i < blocks.size(); i += 2) {
        WORKER_CHECK(chunkpmr::test::check_pattern(blocks[i], 100, i));
        r.deallocate(blocks[i], 100, 8);
      }
    }).join();
    for (std::size_t i = 1; i < blocks.size(); i += 2) {
      BOOST_TEST(chunkpmr::test::check_pattern(blocks[i], 100, i));
      r.deallocate(blocks[i], 100, 8);
    }
    r.trim();
    BOOST_TEST(r.stats().bytes_held == 0u);  // every frame and region went back
    BOOST_TEST(counting.outstanding_blocks() == 0u);
    BOOST_TEST(chunkpmr::test::worker_failures.load() == 0);
  }
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

namespace {

// Fills the chunk whose first block is `first` with 8-byte blocks, then frees all but
// the last of them in allocation order (no LIFO rollback, and the chunk never empties,
// so it is not rewound): when the next refill retires it, its live set is one block.
// Returns the block left live.
void* fill_and_free_all_but_last(ChunkProviderResource& r, void* first) {
  const chunkpmr::test::ChunkSpan span = chunk_span(first);
  BOOST_REQUIRE(reinterpret_cast<std::uintptr_t>(first) == span.base + kHeader);
  std::vector<void*> blocks{first};
  const std::size_t n = (span.bytes - kHeader) / 8;
  while (blocks.size() < n) {
    void* p = r.allocate(8, 8);
    BOOST_REQUIRE(chunk_span(p).base == span.base);
    blocks.push_back(p);
  }
  for (std::size_t i = 0; i + 1 < n; ++i) r.deallocate(blocks[i], 8, 8);
  return blocks.back();
}

// Allocates 8-byte blocks until one lands in a new chunk, keeping every block of the
// chunk that holds `first` live (appended to `live`). Returns the new chunk's first block.
void* fill_live(ChunkProviderResource& r, void* first, std::vector<void*>& live) {
  const std::uintptr_t base = chunk_span(first).base;
  live.push_back(first);
  for (;;) {
    void* p = r.allocate(8, 8);
    if (chunk_span(p).base != base) return p;
    live.push_back(p);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_class_frame_of_page_chunks_holds_sixteen) {
  // Chunks capped at 4 KiB: after the climb, every page chunk comes from a class frame,
  // sixteen to a 64 KiB frame (the first one after the frame's 64-byte header), so an
  // arena of page chunks holds a frame for every 64 KiB of chunks it uses.
  CountingResource counting;
  {
    ChunkProviderResource r(ResourceOptions{.upstream = &counting, .first_buffer = false,
                                            .max_chunk_bytes = 4096});
    std::vector<void*> blocks;
    std::map<std::uintptr_t, std::vector<chunkpmr::test::ChunkSpan>> by_frame;  // class frames' chunks
    const std::uintptr_t block = chunk_span(r.allocate(8, 8)).frame;  // the climb's small-class block
    while (by_frame.size() < 3) {
      void* p = r.allocate(1000, 8);
      chunkpmr::test::fill_pattern(p, 1000, reinterpret_cast<std::uintptr_t>(p));
      blocks.push_back(p);
      const chunkpmr::test::ChunkSpan span = chunk_span(p);
      auto& chunks = by_frame[span.frame];
      if (span.frame != block && (chunks.empty() || chunks.back().base != span.base)) chunks.push_back(span);
    }
    by_frame.erase(block);
    std::size_t full = 0;
    for (const auto& [frame, chunks] : by_frame) {
      if (chunks.size() < 16) continue;  // the frame being carved
      ++full;
      BOOST_TEST(chunks.size() == 16u);
      for (std::size_t k = 0; k < chunks.size(); ++k) {
        BOOST_TEST(chunks[k].base == frame + (k == 0 ? kHeader : k * 4096));
        BOOST_TEST(chunks[k].bytes == (k == 0 ? 4096 - kHeader : 4096u));
      }
    }
    BOOST_TEST(full >= 1u);
    for (void* p : blocks) {
      BOOST_TEST(chunkpmr::test::check_pattern(p, 1000, reinterpret_cast<std::uintptr_t>(p)));
      r.deallocate(p, 1000, 8);
    }
    r.release();
    BOOST_TEST(r.stats().bytes_held == 0u);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(a_block_that_fills_a_page_chunk_never_gets_the_shorter_first_place) {
  // With page chunks (max_chunk_bytes = 4096), a block of 4096 - 64 bytes fills a chunk
  // exactly, but not the one in place 0 of a class frame (64 bytes short): such blocks
  // get full places only, never a chunk above the cap, and each place 0 they pass over
  // stays free for a block that fits it (here one 128-aligned, which starts 128 bytes
  // into its page either way). Every chunk they take is counted once.
  CountingResource counting;
  {
    ChunkProviderResource r(ResourceOptions{.upstream = &counting, .max_cached_bytes_per_thread = 0,
                                            .first_buffer = false, .max_chunk_bytes = 4096});
    constexpr std::size_t kFill = 4096 - kHeader;
    constexpr int kFills = 40;  // three class frames' worth, after the climb's block
    const std::uintptr_t block = chunk_span(r.allocate(8, 8)).frame;  // the climb's small-class block
    const std::uint64_t chunks_before = r.stats().normal_chunks_allocated;
    std::vector<std::pair<void*, std::size_t>> live;
    std::set<std::uintptr_t> class_frames;
    for (int i = 0; i < kFills; ++i) {
      void* p = r.allocate(kFill, 8);
      chunkpmr::test::fill_pattern(p, kFill, i);
      live.emplace_back(p, kFill);
      const chunkpmr::test::ChunkSpan span = chunk_span(p);
      BOOST_TEST(span.bytes == 4096u);
      BOOST_TEST((span.base - span.frame) % 4096 == 0u);  // not place 0, at frame + 64
      if (span.frame != block) class_frames.insert(span.frame);
    }
    BOOST_TEST(class_frames.size() >= 2u);
    BOOST_TEST(r.stats().normal_chunks_allocated - chunks_before == static_cast<std::uint64_t>(kFills));
    BOOST_TEST(r.stats().chunk_reuses == 0u);
    void* fits = r.allocate(4096 - 128, 128);
    const chunkpmr::test::ChunkSpan first_place = chunk_span(fits);
    BOOST_TEST(first_place.base == first_place.frame + kHeader);  // place 0, passed over before
    BOOST_TEST(first_place.bytes == 4096 - kHeader);
    BOOST_TEST(class_frames.count(first_place.frame) == 1u);
    for (std::size_t i = 0; i < live.size(); ++i) {
      BOOST_TEST(chunkpmr::test::check_pattern(live[i].first, live[i].second, i));
      r.deallocate(live[i].first, live[i].second, 8);
    }
    r.deallocate(fits, 4096 - 128, 128);
    r.release();
    BOOST_TEST(r.stats().bytes_held == 0u);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(a_cached_first_place_is_passed_over_by_a_block_that_fills_a_chunk) {
  // Place 0 of a class frame, emptied and cached, is the cache's top when a block that
  // fills a whole page chunk needs a refill: the block gets a full place instead (no
  // reuse counted), and the place 0 goes to its frame's free places, where the next
  // block that fits it takes it.
  CountingResource counting;
  {
    ChunkProviderResource r(ResourceOptions{.upstream = &counting, .first_buffer = false,
                                            .max_chunk_bytes = 4096});
    std::vector<void*> blocks;
    std::uintptr_t first_place = 0;
    while (first_place == 0) {  // 1000-byte blocks until one lands in a place 0
      blocks.push_back(r.allocate(1000, 8));
      const chunkpmr::test::ChunkSpan span = chunk_span(blocks.back());
      if (span.base == span.frame + kHeader) first_place = span.base;
    }
    for (int i = 0; i < 4; ++i) blocks.push_back(r.allocate(1000, 8));  // past that chunk
    BOOST_REQUIRE(chunk_span(blocks.back()).base != first_place);
    const std::vector<void*> others =
        free_where(r, blocks, 1000, [&](const chunkpmr::test::ChunkSpan& s) { return s.base == first_place; });
    const std::uint64_t reuses = r.stats().chunk_reuses;
    void* fill = r.allocate(4096 - kHeader, 8);
    BOOST_TEST(chunk_span(fill).bytes == 4096u);
    BOOST_TEST(chunk_span(fill).base != first_place);
    BOOST_TEST(r.stats().chunk_reuses == reuses);  // the cached place 0 was not used
    void* fits = r.allocate(1000, 8);  // the full chunk's refill: place 0 again
    BOOST_TEST(chunk_span(fits).base == first_place);
    r.deallocate(fill, 4096 - kHeader, 8);
    r.deallocate(fits, 1000, 8);
    for (void* p : others) r.deallocate(p, 1000, 8);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(ratchet_holds_while_the_live_set_is_small_and_lower_class_frames_go) {
  // The ratchet grows only past a chunk that retires mostly live: chunks whose blocks
  // were nearly all freed keep the class where it is. A class needed again comes from
  // a class frame; once the ratchet moves past that class the frame is stopped, so it
  // goes back with its last chunk instead of being pinned by the arena's reference.
  CountingResource counting;
  {
    ChunkProviderResource r(ResourceOptions{.upstream = &counting, .max_cached_bytes_per_thread = 0,
                                            .first_buffer = false});
    void* a = r.allocate(8, 8);  // refill 1: 512 B; nothing retired yet, the ratchet moves to 1 KiB
    BOOST_TEST(chunk_span(a).bytes == 512u);
    void* keep_a = fill_and_free_all_but_last(r, a);
    void* b = r.allocate(8, 8);  // refill 2: 1 KiB; the 512-byte chunk retired nearly empty
    BOOST_TEST(chunk_span(b).bytes == 1024u);
    void* keep_b = fill_and_free_all_but_last(r, b);
    void* c = r.allocate(8, 8);  // refill 3: the ratchet held, 1 KiB again, from a class frame
    BOOST_TEST(chunk_span(c).bytes == 1024u - kHeader);  // its place 0, after the frame's header
    BOOST_TEST(chunk_span(c).base == chunk_span(c).frame + kHeader);
    BOOST_TEST(chunk_span(c).frame != chunk_span(a).frame);
    std::vector<void*> live;
    void* d = fill_live(r, c, live);  // refill 4: still 1 KiB (the ratchet moves after it)
    BOOST_TEST(chunk_span(d).bytes == 1024u);
    BOOST_TEST(chunk_span(d).frame == chunk_span(c).frame);
    void* e = fill_live(r, d, live);  // refill 5: 2 KiB, back in the small-class block
    BOOST_TEST(chunk_span(e).bytes == 2048u);
    BOOST_TEST(chunk_span(e).frame == chunk_span(a).frame);
    // Both 1 KiB class-frame chunks empty: the class frame (a region of its own) goes
    // upstream; only the small-class block stays held.
    BOOST_TEST(r.stats().bytes_held == 2 * kChunk64K);
    for (void* p : live) r.deallocate(p, 8, 8);
    r.deallocate(r.allocate(70000, 8), 70000, 8);  // a slow path applies the batched frees
    BOOST_TEST(r.stats().bytes_held == kChunk64K);
    r.deallocate(keep_a, 8, 8);
    r.deallocate(keep_b, 8, 8);
    r.deallocate(e, 8, 8);
    r.trim();
    BOOST_TEST(r.stats().bytes_held == 0u);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(class_frame_places_given_back_are_carved_again) {
  // With chunks capped at 8 KiB and no chunk cache, an emptied chunk of a class frame
  // gives its place back to the arena: the next 8 KiB chunk is carved there, before any
  // place never used.
  CountingResource counting;
  {
    ChunkProviderResource r(ResourceOptions{.upstream = &counting, .max_cached_bytes_per_thread = 0,
                                            .first_buffer = false, .max_chunk_bytes = 8192});
    std::vector<void*> blocks{r.allocate(1000, 8)};
    const std::uintptr_t block = chunk_span(blocks[0]).frame;  // the climb's small-class block
    std::vector<chunkpmr::test::ChunkSpan> chunks;  // chunks carved from class frames
    while (chunks.size() < 4) {
      void* p = r.allocate(1000, 8);
      blocks.push_back(p);
      const chunkpmr::test::ChunkSpan span = chunk_span(p);
      if (span.frame != block && (chunks.empty() || span.base != chunks.back().base)) chunks.push_back(span);
    }
    const chunkpmr::test::ChunkSpan freed = chunks[1];  // the class frame's second place
    BOOST_REQUIRE(freed.bytes == 8192u);
    BOOST_REQUIRE(freed.frame == chunks[3].frame);
    std::vector<void*> kept =
        free_where(r, blocks, 1000, [&](const chunkpmr::test::ChunkSpan& s) { return s.base == freed.base; });
    r.deallocate(r.allocate(70000, 8), 70000, 8);  // a slow path applies the batched frees
    BOOST_TEST(r.stats().cached_chunks == 0u);
    const std::uintptr_t current = chunks.back().base;
    void* p;
    do {
      p = r.allocate(1000, 8);
      kept.push_back(p);
    } while (chunk_span(p).base == current);
    BOOST_TEST(chunk_span(p).base == freed.base);  // the given-back place, not place 5
    for (void* q : kept) r.deallocate(q, 1000, 8);
    r.trim();
    BOOST_TEST(r.stats().bytes_held == 0u);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(a_class_frame_given_back_whole_is_taken_again_whole) {
  // A full class frame whose chunks all come back returns to its region (which stays:
  // another frame of it is out); none of its places may linger on the arena's list of
  // given-back places, or the frame would be carved twice when it is taken again.
  // Every live block keeps its contents and no two live chunks overlap.
  CountingResource counting;
  {
    ChunkProviderResource r(ResourceOptions{.upstream = &counting, .max_cached_bytes_per_thread = 0,
                                            .first_buffer = false, .max_chunk_bytes = 8192});
    std::vector<void*> blocks;
    std::vector<std::uintptr_t> frames;  // class frames, in the order they were started
    std::uintptr_t block = 0;            // the climb's small-class block
    auto allocate = [&] {
      void* p = r.allocate(1000, 8);
      chunkpmr::test::fill_pattern(p, 1000, reinterpret_cast<std::uintptr_t>(p));
      blocks.push_back(p);
      const chunkpmr::test::ChunkSpan span = chunk_span(p);
      if (block == 0) block = span.frame;
      if (span.frame != block && (frames.empty() || frames.back() != span.frame)) {
        frames.push_back(span.frame);
      }
    };
    while (frames.size() < 3) allocate();  // two full class frames, a third started
    const std::uintptr_t whole = frames[1];
    blocks = free_where(r, blocks, 1000, [&](const chunkpmr::test::ChunkSpan& s) { return s.frame == whole; });
    r.deallocate(r.allocate(70000, 8), 70000, 8);  // a slow path applies the batched frees
    for (int i = 0; i < 160; ++i) allocate();  // 20 more chunks: the freed frame is taken again
    BOOST_TEST(std::count_if(blocks.begin(), blocks.end(),
                             [&](void* p) { return chunk_span(p).frame == whole; }) > 0);
    std::vector<std::uintptr_t> addresses;
    for (void* p : blocks) {
      BOOST_TEST(chunkpmr::test::check_pattern(p, 1000, reinterpret_cast<std::uintptr_t>(p)));
      addresses.push_back(reinterpret_cast<std::uintptr_t>(p));
    }
    std::sort(addresses.begin(), addresses.end());
    for (std::size_t i = 1; i < addresses.size(); ++i) BOOST_TEST(addresses[i] - addresses[i - 1] >= 1000u);
    for (void* p : blocks) r.deallocate(p, 1000, 8);
    r.trim();
    BOOST_TEST(r.stats().bytes_held == 0u);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(raising_the_floor_by_one_class_evicts_a_cached_chunk) {
  // A chunk cached at the floor's class is evicted as soon as a refill asks for the
  // next class up: the cache never hands out a chunk smaller than what is asked for.
  // Chunks are capped at 1 KiB so that a 1 KiB chunk can be cached at floor 1.
  CountingResource counting;
  {
    ChunkProviderResource r(ResourceOptions{.upstream = &counting, .first_buffer = false,
                                            .max_chunk_bytes = 1024});
    void* a = r.allocate(400, 8);  // 512 B
    void* b = r.allocate(800, 8);  // 1 KiB: the floor rises to class 1
    void* c = r.allocate(800, 8);  // another 1 KiB chunk; b's chunk retires with b live
    void* e = r.allocate(800, 8);  // and two more, each with one block
    void* f = r.allocate(800, 8);
    BOOST_TEST(chunk_span(b).bytes == 1024u);  // in the small-class block
    BOOST_TEST(chunk_span(c).bytes == 1024u - kHeader);  // place 0 of a class frame
    BOOST_TEST(chunk_span(e).bytes == 1024u);  // place 1
    BOOST_TEST(chunk_span(b).base != chunk_span(c).base);
    BOOST_TEST(chunk_span(e).base != chunk_span(f).base);
    r.deallocate(b, 800, 8);
    r.deallocate(e, 800, 8);
    r.deallocate(r.allocate(70000, 8), 70000, 8);  // a slow path without a refill: both chunks are cached
    BOOST_TEST(r.stats().cached_chunks == 2u);
    BOOST_TEST(r.stats().cached_bytes == 2048u);
    void* d = r.allocate(1500, 8);  // a refill that needs 2 KiB: the floor rises to class 2
    BOOST_TEST(std::bit_ceil(chunk_span(d).bytes) == 2048u);
    BOOST_TEST(r.stats().cached_chunks == 0u);  // both 1 KiB chunks evicted, not only the top one
    BOOST_TEST(r.stats().cached_bytes == 0u);
    BOOST_TEST(r.stats().chunk_reuses == 0u);
    r.deallocate(a, 400, 8);
    r.deallocate(c, 800, 8);
    r.deallocate(f, 800, 8);
    r.deallocate(d, 1500, 8);
    r.trim();
    BOOST_TEST(r.stats().bytes_held == 0u);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(cache_stats_follow_a_refill_that_takes_a_cached_chunk) {
  // stats().cached_chunks and cached_bytes drop when a refill takes its chunk from the
  // cache, and the chunk is the one that was cached.
  CountingResource counting;
  ChunkProviderResource r(ResourceOptions{.upstream = &counting, .initial_chunk_bytes = kChunk64K,
                                          .first_buffer = false});
  std::vector<void*> first;
  void* p = r.allocate(1000, 8);
  const std::uintptr_t first_base = chunk_span(p).base;
  while (chunk_span(p).base == first_base) {
    first.push_back(p);
    p = r.allocate(1000, 8);
  }
  std::vector<void*> second{p};  // p opened the second chunk
  for (void* q : first) r.deallocate(q, 1000, 8);
  r.deallocate(r.allocate(70000, 8), 70000, 8);  // a slow path without a refill: the first chunk is cached
  BOOST_TEST(r.stats().cached_chunks == 1u);
  BOOST_TEST(r.stats().cached_bytes == kChunk64K);
  const std::size_t calls = counting.allocations();
  do {
    p = r.allocate(1000, 8);
    second.push_back(p);
  } while (chunk_span(p).base == chunk_span(second.front()).base);
  BOOST_TEST(chunk_span(p).base == first_base);  // the refill took the cached chunk
  BOOST_TEST(counting.allocations() == calls);
  BOOST_TEST(r.stats().chunk_reuses == 1u);
  BOOST_TEST(r.stats().cached_chunks == 0u);
  BOOST_TEST(r.stats().cached_bytes == 0u);
  for (void* q : second) r.deallocate(q, 1000, 8);
}

BOOST_AUTO_TEST_CASE(lifo_free_rolls_back_a_zero_byte_block) {
  // A zero-byte block takes one byte; freeing it with size 0 is the same one-byte
  // LIFO free, so the next zero-byte request gets the same address.
  ChunkProviderResource r(chunks_only(std::pmr::get_default_resource()));
  void* keep = r.allocate(24, 8);
  void* p = r.allocate(0, 1);
  r.deallocate(p, 0, 1);
  BOOST_TEST(r.allocate(0, 1) == p);
  void* q = r.allocate(0, 1);
  BOOST_TEST(q == static_cast<std::byte*>(p) + 1);
  r.deallocate(q, 0, 1);
  r.deallocate(p, 0, 1);
  r.deallocate(keep, 24, 8);
}

BOOST_AUTO_TEST_CASE(owner_free_of_a_one_shot_chunk_counts_as_released_by_owner) {
  CountingResource counting;
  ChunkProviderResource r(chunks_only(&counting));
  void* small = r.allocate(8, 8);
  void* big = r.allocate(70000, 8);
  BOOST_TEST(r.stats().oversized_chunks_allocated == 1u);
  BOOST_TEST(r.stats().chunks_released_by_owner == 0u);
  BOOST_TEST(counting.outstanding_chunks_of_size(70000 + kHeader) == 1u);
  r.deallocate(big, 70000, 8);  // goes upstream at once
  BOOST_TEST(counting.outstanding_chunks_of_size(70000 + kHeader) == 0u);
  BOOST_TEST(r.stats().chunks_released_by_owner == 1u);
  BOOST_TEST(r.stats().chunks_released_by_other_threads == 0u);
  BOOST_TEST(r.stats().cached_chunks == 0u);
  r.deallocate(small, 8, 8);
}

BOOST_AUTO_TEST_CASE(remote_frees_then_owner_frees_rewind_the_current_chunk_then_it_retires) {
  // Another thread frees some blocks of the owner's current chunk, the owner frees the
  // rest: the chunk is empty and rewound in place. More handouts fill it; it retires
  // with those blocks live, and when another thread frees them all it comes home once,
  // whole, to the cache.
  CountingResource counting;
  ChunkProviderResource r(ResourceOptions{.upstream = &counting, .initial_chunk_bytes = kChunk64K,
                                          .first_buffer = false});
  std::vector<void*> blocks;
  for (int i = 0; i < 40; ++i) blocks.push_back(r.allocate(1000, 8));
  const std::uintptr_t base = chunk_span(blocks.front()).base;
  BOOST_REQUIRE(chunk_span(blocks.back()).base == base);
  std::thread([&] {
    for (int i = 0; i < 20; ++i) r.deallocate(blocks[static_cast<std::size_t>(i)], 1000, 8);
  }).join();
  for (std::size_t i = 20; i < blocks.size(); ++i) r.deallocate(blocks[i], 1000, 8);
  void* again = r.allocate(1000, 8);
  BOOST_TEST(again == blocks.front());  // rewound in place
  std::vector<void*> filled{again};
  void* next;
  for (;;) {
    next = r.allocate(1000, 8);
    if (chunk_span(next).base != base) break;
    filled.push_back(next);
  }
  BOOST_TEST(filled.size() == 65u);  // the whole payload again, from its start
  BOOST_TEST(r.stats().chunks_released_by_owner == 0u);
  std::thread([&] {
    for (void* p : filled) r.deallocate(p, 1000, 8);
  }).join();
  BOOST_TEST(r.stats().chunks_released_by_other_threads == 1u);
  BOOST_TEST(r.stats().cached_chunks == 0u);     // on the owner's remote stack
  r.deallocate(r.allocate(70000, 8), 70000, 8);  // a slow path takes it home
  BOOST_TEST(r.stats().cached_chunks == 1u);
  BOOST_TEST(r.stats().cached_bytes == kChunk64K);
  r.deallocate(next, 1000, 8);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(an_arena_whose_regions_all_went_back_starts_small_again) {
  // Region sizes follow what the arena holds now, not what it once held: after trim()
  // with nothing live, growing again asks upstream for 1, 1, 2 ... frames once more.
  CountingResource counting;
  ChunkProviderResource r(ResourceOptions{.upstream = &counting, .initial_chunk_bytes = kChunk64K,
                                          .first_buffer = false});
  std::vector<void*> blocks;
  for (int i = 0; i < 2000; ++i) blocks.push_back(r.allocate(1000, 8));  // 31 frames in 6 regions
  for (void* p : blocks) r.deallocate(p, 1000, 8);
  r.trim();
  BOOST_TEST(counting.outstanding_chunks() == 0u);
  const std::size_t before = counting.chunk_history().size();
  blocks.clear();
  for (int i = 0; i < 4 * 65; ++i) blocks.push_back(r.allocate(1000, 8));  // four chunks
  const auto history = counting.chunk_history();
  BOOST_REQUIRE(history.size() == before + 3);
  BOOST_TEST(history[before].bytes == kChunk64K);
  BOOST_TEST(history[before + 1].bytes == kChunk64K);
  BOOST_TEST(history[before + 2].bytes == 2 * kChunk64K);
  for (void* p : blocks) r.deallocate(p, 1000, 8);
}

BOOST_AUTO_TEST_CASE(chunks_after_the_initial_buffer_start_at_twice_its_size) {
  // As monotonic_buffer_resource's next buffer, the first chunk after a 4 KiB initial
  // buffer is 8 KiB, whatever the first class would have been.
  alignas(64) static std::byte buffer[4096];
  CountingResource counting;
  ChunkProviderResource r(buffer, sizeof buffer, &counting);
  auto in_buffer = [&](void* p) {
    return p >= static_cast<void*>(buffer) && p < static_cast<void*>(buffer + sizeof buffer);
  };
  void* p = r.allocate(100, 8);
  BOOST_REQUIRE(in_buffer(p));
  while (in_buffer(p)) p = r.allocate(100, 8);
  BOOST_TEST(chunk_span(p).bytes == 8192u);
  r.deallocate(p, 100, 8);
}

BOOST_AUTO_TEST_CASE(the_small_class_block_goes_back_once_the_climb_used_every_place) {
  // Chunks capped at 32 KiB: the climb carves 2 KiB .. 32 KiB from one small-class
  // block and, every place used, drops the arena's reference to it at once (later
  // 32 KiB chunks are frames of their own). So the block goes back upstream with its
  // last chunk, without a trim().
  CountingResource counting;
  {
    ChunkProviderResource r(ResourceOptions{.upstream = &counting, .max_cached_bytes_per_thread = 0,
                                            .first_buffer = false, .max_chunk_bytes = 32768});
    std::vector<void*> blocks{r.allocate(1000, 8)};
    const std::uintptr_t block = chunk_span(blocks[0]).frame;
    BOOST_TEST(chunk_span(blocks[0]).bytes == 2048u);
    std::size_t outside = 0;  // blocks in chunks of their own frames
    while (outside < 40) {
      void* p = r.allocate(1000, 8);
      blocks.push_back(p);
      outside += chunk_span(p).frame != block;
    }
    const std::size_t held = r.stats().bytes_held;
    const std::vector<void*> kept =
        free_where(r, blocks, 1000, [&](const chunkpmr::test::ChunkSpan& s) { return s.frame == block; });
    r.deallocate(r.allocate(70000, 8), 70000, 8);  // a slow path applies the batched frees
    BOOST_TEST(r.stats().bytes_held == held - kChunk64K);  // the block's one-frame region went back
    for (void* p : kept) r.deallocate(p, 1000, 8);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

namespace {

// A fixed pseudo-random sequence (xorshift64), so that the pinning tests are repeatable.
struct Xorshift {
  std::uint64_t state = 0x9E3779B97F4A7C15ull;
  std::size_t below(std::size_t n) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return static_cast<std::size_t>(state % n);
  }
};

struct Slot {
  void* p = nullptr;
  std::size_t bytes = 0;
};

// Block sizes `first + step * k`, k < `choices`, picked at random; with `one_in` set,
// one block in `one_in` (at random) is `large` bytes instead.
struct Sizes {
  std::size_t first = 16;
  std::size_t step = 16;
  std::size_t choices = 31;
  std::size_t one_in = 0;
  std::size_t large = 0;
};

// Replaces random slots of `table` (random lifetimes: each block lives until its slot
// is picked again), `steps` times, with blocks of random `sizes`.
void replace_at_random(ChunkProviderResource& r, std::vector<Slot>& table, Xorshift& rng, long steps,
                       Sizes sizes = {}) {
  for (long s = 0; s < steps; ++s) {
    Slot& slot = table[rng.below(table.size())];
    if (slot.p != nullptr) r.deallocate(slot.p, slot.bytes, 8);
    slot.bytes = sizes.one_in != 0 && rng.below(sizes.one_in) == 0
                     ? sizes.large
                     : sizes.first + sizes.step * rng.below(sizes.choices);
    slot.p = r.allocate(slot.bytes, 8);
    std::memset(slot.p, 0x5A, slot.bytes);
  }
}

// The bytes of the chunks that hold the table's live blocks: memory no other block can
// use until the last of those blocks is freed.
std::size_t pinned_bytes(const std::vector<Slot>& table) {
  std::map<std::uintptr_t, std::size_t> chunks;
  for (const Slot& s : table) {
    if (s.p != nullptr) chunks[chunk_span(s.p).base] = chunk_span(s.p).bytes;
  }
  std::size_t sum = 0;
  for (const auto& [base, bytes] : chunks) sum += bytes;
  return sum;
}

// The class (in bytes) of the current chunk: a chunk in place 0 of a class frame has
// 64 bytes less.
std::size_t current_chunk_bytes(ChunkProviderResource& r) {
  void* p = r.allocate(8, 8);
  const std::size_t bytes = std::bit_ceil(chunk_span(p).bytes);
  r.deallocate(p, 8, 8);
  return bytes;
}

std::size_t live_bytes(const std::vector<Slot>& table) {
  std::size_t sum = 0;
  for (const Slot& s : table) sum += s.bytes;
  return sum;
}

void free_table(ChunkProviderResource& r, std::vector<Slot>& table) {
  for (Slot& s : table) {
    if (s.p != nullptr) r.deallocate(s.p, s.bytes, 8);
    s = Slot{};
  }
}

// In an arena whose chunks shrank to pages: a block of `large_bytes` between two small
// ones sits at the start of a chunk of its own of `chunk_bytes`, and the two small ones
// share the page chunk that stayed current.
void expect_placed_apart(ChunkProviderResource& r, std::size_t large_bytes, std::size_t chunk_bytes) {
  void* before = r.allocate(64, 8);
  void* large = r.allocate(large_bytes, 8);
  void* after = r.allocate(64, 8);
  BOOST_TEST(std::bit_ceil(chunk_span(large).bytes) == chunk_bytes);
  BOOST_TEST(chunk_span(large).base + chunkpmr::detail::kHeaderBytes == reinterpret_cast<std::uintptr_t>(large));
  BOOST_TEST(chunk_span(after).base == chunk_span(before).base);
  BOOST_TEST(std::bit_ceil(chunk_span(after).bytes) == 4096u);
  r.deallocate(large, large_bytes, 8);
  r.deallocate(after, 64, 8);
  r.deallocate(before, 64, 8);
}

}  // namespace

BOOST_AUTO_TEST_CASE(random_lifetimes_shrink_chunks_to_a_page_and_bump_phases_grow_them_back) {
  // Blocks with random lifetimes pin a chunk until the last of its blocks dies: once an
  // arena holds several MiB of mostly dead chunks, its new chunks are 4 KiB, which pin
  // less. A phase of blocks that stay alive (a bump workload) brings 64 KiB back.
  CountingResource counting;
  {
    ChunkProviderResource r(chunks_only(&counting));
    std::vector<Slot> table(24000);  // about 6 MiB live
    Xorshift rng;
    replace_at_random(r, table, rng, 24000);  // filled: every chunk so far mostly live
    BOOST_TEST(current_chunk_bytes(r) == kChunk64K);
    replace_at_random(r, table, rng, 400000);
    BOOST_TEST(current_chunk_bytes(r) == 4096u);
    // The chunks the live blocks pin hold a small multiple of the live bytes (with
    // 64 KiB chunks throughout, this workload pins about 6 times its live bytes; so it
    // does if the emptied 64 KiB chunks were cached and reused).
    const std::size_t live = live_bytes(table);
    BOOST_TEST_MESSAGE("pinned " << pinned_bytes(table) << " for " << live << " live");
    BOOST_TEST(pinned_bytes(table) < 4 * live);

    // Every block freed, then 16 MiB that stay alive: full chunks, and the class grows
    // back to 64 KiB.
    free_table(r, table);
    std::vector<void*> kept;
    for (std::size_t total = 0; total < (std::size_t{16} << 20); total += 256) kept.push_back(r.allocate(256, 8));
    BOOST_TEST(chunk_span(kept.back()).bytes == kChunk64K);
    for (void* p : kept) r.deallocate(p, 256, 8);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(a_small_table_with_random_lifetimes_keeps_its_shrunk_chunks) {
  // 600 blocks of 16 B to 496 B (about 160 KB live) replaced at random: with 64 KiB
  // chunks the arena soon holds over a MiB dead and its chunks shrink to a page. Its
  // page chunks then leave it under the 1 MiB dead that shrinks chunks, but over the
  // 256 KiB below which they may grow freely: they stay a page. (Allowed to grow as
  // soon as it is under 1 MiB, the arena would go back to 64 KiB chunks and pin again.)
  CountingResource counting;
  {
    ChunkProviderResource r(chunks_only(&counting));
    std::vector<Slot> table(600);
    Xorshift rng;
    long shrunk_at = -1;
    std::size_t largest_after = 0;
    for (long s = 1; s <= 400000; s += 1000) {
      replace_at_random(r, table, rng, 1000);
      const std::size_t chunk = current_chunk_bytes(r);
      if (shrunk_at < 0 && chunk == 4096) {
        shrunk_at = s;
      } else if (shrunk_at >= 0) {
        largest_after = std::max(largest_after, chunk);
      }
    }
    BOOST_TEST(shrunk_at >= 0);
    BOOST_TEST(shrunk_at < 40000);
    BOOST_TEST(largest_after == 4096u);
    free_table(r, table);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(random_lifetimes_of_larger_blocks_shrink_chunks_too) {
  // Blocks of 128 B to 4 KiB: a 64 KiB chunk holds about 30 of them, and 64 KiB chunks
  // throughout would pin about 4 times the live bytes (a quarter of what they hold is
  // live: below the half that makes chunks shrink, above an eighth).
  CountingResource counting;
  {
    ChunkProviderResource r(chunks_only(&counting));
    std::vector<Slot> table(3000);  // about 6 MiB live
    Xorshift rng;
    replace_at_random(r, table, rng, 200000, Sizes{128, 128, 31});
    BOOST_TEST(current_chunk_bytes(r) == 4096u);
    const std::size_t live = live_bytes(table);
    BOOST_TEST_MESSAGE("pinned " << pinned_bytes(table) << " for " << live << " live");
    BOOST_TEST(pinned_bytes(table) < 2 * live);
    free_table(r, table);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(random_lifetimes_of_blocks_near_a_page_keep_page_chunks) {
  // Blocks of 3 KiB: a 4 KiB chunk holds one, goes back as soon as it dies, and so
  // reads mostly live; that says nothing about lifetimes, and the chunks must not grow
  // back to 64 KiB (which would be pinned again).
  CountingResource counting;
  {
    ChunkProviderResource r(chunks_only(&counting));
    std::vector<Slot> table(2000);  // about 6 MiB live
    Xorshift rng;
    std::size_t page_chunks = 0;
    for (int round = 0; round < 40; ++round) {
      replace_at_random(r, table, rng, 5000, Sizes{3000, 8, 64});
      if (round >= 24) page_chunks += current_chunk_bytes(r) == 4096u ? 1 : 0;
    }
    BOOST_TEST(page_chunks == 16u);
    free_table(r, table);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(temporaries_freed_at_once_do_not_make_a_full_arena_look_pinned) {
  // 8 MiB of 64-byte nodes that all stay alive, each made beside three temporaries
  // freed at once (the cursor rolls back over them). Every chunk is full of live
  // nodes: the bytes per block are the nodes', and the chunks stay at 64 KiB.
  CountingResource counting;
  {
    ChunkProviderResource r(chunks_only(&counting));
    std::vector<void*> nodes;
    for (std::size_t total = 0; total < (std::size_t{8} << 20); total += 64) {
      nodes.push_back(r.allocate(64, 8));
      for (int t = 0; t < 3; ++t) {
        void* temporary = r.allocate(64, 8);
        r.deallocate(temporary, 64, 8);
      }
    }
    BOOST_TEST(current_chunk_bytes(r) == kChunk64K);
    BOOST_TEST(chunk_span(nodes.back()).bytes == kChunk64K);
    for (void* p : nodes) r.deallocate(p, 64, 8);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(blocks_freed_in_the_order_they_were_made_keep_chunks_large) {
  // A queue of 6 MiB: every held chunk but the oldest is wholly live, so nothing is
  // pinned and the chunks stay at 64 KiB.
  CountingResource counting;
  {
    ChunkProviderResource r(chunks_only(&counting));
    std::vector<Slot> queue(24000);
    Xorshift rng;
    for (long s = 0; s < 400000; ++s) {
      Slot& slot = queue[static_cast<std::size_t>(s) % queue.size()];
      if (slot.p != nullptr) r.deallocate(slot.p, slot.bytes, 8);
      slot.bytes = 16 + 16 * rng.below(31);
      slot.p = r.allocate(slot.bytes, 8);
    }
    BOOST_TEST(chunk_span(queue[399999 % queue.size()].p).bytes == kChunk64K);
    BOOST_TEST_MESSAGE("pinned " << pinned_bytes(queue) << " for " << live_bytes(queue) << " live");
    BOOST_TEST(pinned_bytes(queue) < 2 * live_bytes(queue));
    free_table(r, queue);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(a_block_too_large_for_shrunk_chunks_gets_a_chunk_of_its_own) {
  // Once random lifetimes made the chunks a page, a 12 KB block goes in a 16 KiB chunk
  // of its own and the page chunk stays current: installed, the larger chunk would
  // take the small blocks that follow and be pinned by them. Its chunk goes back with it.
  CountingResource counting;
  {
    ChunkProviderResource r(chunks_only(&counting));
    std::vector<Slot> table(24000);  // about 6 MiB live
    Xorshift rng;
    replace_at_random(r, table, rng, 400000);
    BOOST_REQUIRE(current_chunk_bytes(r) == 4096u);
    expect_placed_apart(r, 12000, 16384u);
    // Blocks that fill an 8 KiB chunk, each apart: none lands in place 0 of a class
    // frame (64 bytes short) nor in a chunk of a class above, and no two overlap.
    std::vector<void*> full;
    for (int i = 0; i < 20; ++i) {
      full.push_back(r.allocate(8192 - kHeader, 8));
      chunkpmr::test::fill_pattern(full.back(), 8192 - kHeader, i);
      const chunkpmr::test::ChunkSpan span = chunk_span(full.back());
      BOOST_TEST(span.bytes == 8192u);
      BOOST_TEST((span.base - span.frame) % 8192 == 0u);
    }
    for (int i = 0; i < 20; ++i) {
      BOOST_TEST(chunkpmr::test::check_pattern(full[i], 8192 - kHeader, i));
      r.deallocate(full[i], 8192 - kHeader, 8);
    }
    free_table(r, table);
  }
  {
    // The same for a block that needs a 64 KiB chunk (allowed by max_normal_alloc):
    // a frame of its own, and the class frames the page chunks come from stay.
    ChunkProviderResource r(ResourceOptions{.upstream = &counting, .max_normal_alloc = 65472, .first_buffer = false});
    std::vector<Slot> table(24000);
    Xorshift rng;
    replace_at_random(r, table, rng, 400000);
    BOOST_REQUIRE(current_chunk_bytes(r) == 4096u);
    expect_placed_apart(r, 40000, kChunk64K);
    free_table(r, table);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(random_lifetimes_with_a_few_large_blocks_still_pin_little) {
  // Blocks of 16 B to 1 KB, one in 64 of 12 KB, in 16 KiB chunks of their own: the
  // chunks that hold live blocks come to 2.46 times the live bytes. With each large
  // block's chunk installed as the current one, the small blocks after it would fill
  // 16 KiB chunks and be pinned in them: 2.86 times.
  CountingResource counting;
  {
    ChunkProviderResource r(chunks_only(&counting));
    std::vector<Slot> table(8000);  // about 6 MiB live
    Xorshift rng;
    replace_at_random(r, table, rng, 400000, Sizes{16, 1, 1009, 64, 12000});
    BOOST_TEST(current_chunk_bytes(r) == 4096u);
    const std::size_t live = live_bytes(table);
    BOOST_TEST_MESSAGE("pinned " << pinned_bytes(table) << " for " << live << " live");
    BOOST_TEST(pinned_bytes(table) < live * 8 / 3);
    free_table(r, table);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(a_shrunk_arena_whose_blocks_turn_large_and_long_lived_stops_placing_them_apart) {
  // After the chunks shrank and the table went, 12 MiB of 6 KB blocks that all stay
  // alive: the arena stops reading pinned, so its large blocks share chunks again
  // (installed by refills) and the chunk class grows back. (Placed apart, they would
  // never refill, and the arena would stay shrunk.)
  CountingResource counting;
  {
    ChunkProviderResource r(chunks_only(&counting));
    std::vector<Slot> table(24000);  // about 6 MiB live
    Xorshift rng;
    replace_at_random(r, table, rng, 400000);
    BOOST_REQUIRE(current_chunk_bytes(r) == 4096u);
    free_table(r, table);
    std::vector<void*> large;
    for (std::size_t total = 0; total < (std::size_t{12} << 20); total += 6000) large.push_back(r.allocate(6000, 8));
    // Among the last ten blocks, most share their chunk with the block before.
    std::size_t shared = 0;
    for (std::size_t i = large.size() - 10; i < large.size(); ++i) {
      shared += chunk_span(large[i]).base == chunk_span(large[i - 1]).base;
    }
    BOOST_TEST(shared >= 8u);
    BOOST_TEST(chunk_span(large.back()).bytes == kChunk64K);
    for (void* p : large) r.deallocate(p, 6000, 8);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}
