// SPDX-License-Identifier: BSL-1.0
// libFuzzer harness: decodes the input into a sequence of operations on one resource —
// allocate, deallocate, release, trim (here and on another thread), free a block on
// another thread, allocate on a thread that then exits (its arena is adopted by the
// next), ask for a size no object can have — under a configuration drawn from the
// input (budget, max_normal_alloc, initial size from 1 B to 1 MiB, first buffer on or
// off, no chunk cache), and checks after each step that live blocks never overlap and
// keep their contents, and at the end that every byte went back upstream with the
// (size, alignment) it was asked with.
//
// Build: clang++ with -fsanitize=fuzzer,address,undefined (CMake option
// CHUNKPMR_BUILD_FUZZER). Run: fuzz_ops test/fuzz/corpus -max_total_time=60
#include <chunkpmr/chunk_provider_resource.hpp>

#include "../test_support.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <new>
#include <thread>
#include <vector>

namespace {

using chunkpmr::ChunkProviderResource;
using chunkpmr::ResourceOptions;
using chunkpmr::test::CountingResource;

void fail(const char* what) {
  std::fprintf(stderr, "fuzz_ops: %s\n", what);
  std::abort();
}

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint16_t word() { return static_cast<std::uint16_t>(byte() | (byte() << 8)); }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

struct Live {
  std::size_t bytes;
  std::size_t alignment;
  std::uintptr_t seed;
};

class Model {
 public:
  explicit Model(ChunkProviderResource& r) : r_(r) {}

  void add(void* p, std::size_t bytes, std::size_t alignment) {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    if (alignment != 0 && a % alignment != 0) fail("misaligned block");
    auto next = blocks_.lower_bound(a);
    if (next != blocks_.end() && next->first < a + std::max<std::size_t>(bytes, 1))
      fail("block overlaps a later live block");
    if (next != blocks_.begin()) {
      auto prev = std::prev(next);
      if (prev->first + std::max<std::size_t>(prev->second.bytes, 1) > a)
        fail("block overlaps an earlier live block");
    }
    const std::uintptr_t seed = ++seed_;
    chunkpmr::test::fill_pattern(p, bytes, seed);
    blocks_.emplace(a, Live{bytes, alignment, seed});
  }

  bool empty() const { return blocks_.empty(); }

  // Takes the block chosen by `selector` out of the model, verifying its contents.
  std::pair<void*, Live> take(std::uint16_t selector) {
    auto it = blocks_.begin();
    std::advance(it, selector % blocks_.size());
    void* p = reinterpret_cast<void*>(it->first);
    const Live live = it->second;
    if (!chunkpmr::test::check_pattern(p, live.bytes, live.seed)) fail("block contents changed");
    blocks_.erase(it);
    return {p, live};
  }

  void forget_all() { blocks_.clear(); }  // after release(): all blocks are invalid

  void free_all() {
    while (!blocks_.empty()) {
      auto [p, live] = take(0);
      r_.deallocate(p, live.bytes, live.alignment);
    }
  }

 private:
  ChunkProviderResource& r_;
  std::map<std::uintptr_t, Live> blocks_;
  std::uintptr_t seed_ = 0;
};

std::size_t decode_size(Input& in) {
  const std::uint8_t b = in.byte();
  switch (b >> 6) {
    case 0: return b & 63;                            // 0..63, zero included
    case 1: return 64 + (b & 63) * 16;                // up to ~1 KiB
    case 2: return 1024 + (b & 63) * 256;             // up to ~17 KiB: around max_normal
    default: return 16 * 1024 + (b & 63) * 2048 + in.byte();  // one-shot chunks
  }
}

std::size_t decode_alignment(Input& in) {
  const std::uint8_t b = in.byte() % 20;
  return b < 15 ? std::size_t{1} << (b % 8) : std::size_t{1} << (b - 1);  // up to 256 KiB
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  CountingResource counting;
  {
    const std::uint8_t config = in.byte();
    ResourceOptions options{.upstream = &counting};
    // Budgets from 8 KiB (below one small-class block: chunks of their own) to 1 MiB.
    if (config & 1) options.byte_budget = std::size_t{8} * 1024 * (1 + (config >> 1) % 128);
    if (config & 2) options.max_normal_alloc = 4096;
    const std::size_t initial_sizes[] = {512, 1, 4096, 65536, 100000, std::size_t{1} << 20};
    const std::uint8_t config2 = in.byte();
    options.initial_chunk_bytes = (config & 4) ? 65536 : initial_sizes[config2 % 6];
    if (config & 8) options.max_cached_bytes_per_thread = 0;
    options.first_buffer = (config2 & 0x80) == 0;
    ChunkProviderResource r(options);
    Model model(r);
    int steps = 0;
    while (!in.empty() && ++steps < 2000) {
      switch (in.byte() % 10) {
        case 0:
        case 1:
        case 2: {  // allocate
          const std::size_t bytes = decode_size(in);
          const std::size_t alignment = decode_alignment(in);
          try {
            model.add(r.allocate(bytes, alignment), bytes, alignment);
          } catch (const std::bad_alloc&) {  // budget: the resource must stay usable
          }
          break;
        }
        case 3:  // deallocate
          if (!model.empty()) {
            auto [p, live] = model.take(in.word());
            r.deallocate(p, live.bytes, live.alignment);
          }
          break;
        case 4:  // free on another thread
          if (!model.empty()) {
            auto [p, live] = model.take(in.word());
            std::thread([&, p = p, live = live] { r.deallocate(p, live.bytes, live.alignment); })
                .join();
          }
          break;
        case 5: {  // a thread allocates some blocks and exits, leaving them live
          const int count = 1 + in.byte() % 16;
          std::vector<std::pair<void*, std::pair<std::size_t, std::size_t>>> made;
          std::vector<std::size_t> sizes;
          std::vector<std::size_t> alignments;
          for (int i = 0; i < count; ++i) {
            sizes.push_back(decode_size(in));
            alignments.push_back(decode_alignment(in));
          }
          std::thread([&] {
            for (int i = 0; i < count; ++i) {
              try {
                made.push_back({r.allocate(sizes[static_cast<std::size_t>(i)], alignments[static_cast<std::size_t>(i)]),
                                {sizes[static_cast<std::size_t>(i)], alignments[static_cast<std::size_t>(i)]}});
              } catch (const std::bad_alloc&) {
              }
            }
          }).join();
          for (auto& [p, sa] : made) model.add(p, sa.first, sa.second);
          break;
        }
        case 6:
          r.trim();
          break;
        case 8: {  // a size no object can have: upstream's refusal propagates, nothing changes
          volatile std::size_t max_size = SIZE_MAX;
          const std::size_t bytes = max_size - in.byte();
          const std::size_t alignment = decode_alignment(in);
          const std::size_t held = r.stats().bytes_held;
          // The counting upstream refuses it itself (operator new under ASan would abort).
          counting.fail_always(true);
          try {
            static_cast<void>(r.allocate(bytes, alignment));
            fail("an impossible size was served");
          } catch (const std::bad_alloc&) {
          }
          counting.fail_always(false);
          if (r.stats().bytes_held != held) fail("a refused impossible size changed bytes held");
          break;
        }
        case 9:  // trim() from another thread while this one holds blocks
          std::thread([&] { r.trim(); }).join();
          break;
        case 7:
          if (in.byte() % 4 == 0) {  // release() now and then: every block becomes invalid
            r.release();
            model.forget_all();
            if (r.stats().bytes_held != 0) fail("release() left chunk bytes held");
          }
          break;
      }
    }
    if (in.byte() % 2 == 0) model.free_all();  // else the destructor reclaims them
  }
  if (counting.outstanding_blocks() != 0) fail("upstream blocks leaked");
  if (counting.mismatched_deallocations() != 0) fail("upstream got a wrong (size, alignment)");
  return 0;
}
