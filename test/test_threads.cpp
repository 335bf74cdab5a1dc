// SPDX-License-Identifier: BSL-1.0
// Frees on other threads, thread exit with live blocks, resources outliving or
// outlived by their threads, and allocation during thread teardown.
#define BOOST_TEST_MODULE threads
#include <boost/test/unit_test.hpp>

#include <chunkpmr/chunk_provider_resource.hpp>

#include "test_support.hpp"

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <optional>
#include <random>
#include <semaphore>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using chunkpmr::ChunkProviderResource;
using chunkpmr::test::chunks_only;
using chunkpmr::ResourceOptions;
using chunkpmr::test::check_pattern;
using chunkpmr::test::CountingResource;
using chunkpmr::test::fill_pattern;

namespace {

struct NoWorkerFailures {
  ~NoWorkerFailures() { BOOST_TEST(chunkpmr::test::worker_failures.load() == 0); }
};

std::string expected_text(int i) {
  return std::string(static_cast<std::size_t>(i % 61), static_cast<char>('a' + i % 26)) + "#" +
         std::to_string(i);
}

struct Block {
  void* p;
  std::size_t bytes;
  std::uintptr_t seed;
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(containers_moved_to_and_destroyed_on_other_threads, NoWorkerFailures) {
  CountingResource counting;
  {
    ChunkProviderResource r(chunks_only(&counting));
    for (int round = 0; round < 20; ++round) {
      std::pmr::vector<std::pmr::string> built(&r);
      for (int i = 0; i < 2000; ++i) built.emplace_back(expected_text(i));
      std::thread consumer([moved = std::move(built)]() mutable {
        for (int i = 0; i < 2000; ++i)
          WORKER_CHECK(std::string_view(moved[static_cast<std::size_t>(i)]) == expected_text(i));
        moved.clear();
        moved.shrink_to_fit();
      });
      consumer.join();
    }
    BOOST_TEST(r.stats().chunks_released_by_other_threads > 0u);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_FIXTURE_TEST_CASE(producer_consumer_reuses_chunks_freed_remotely, NoWorkerFailures) {
  CountingResource counting;
  ChunkProviderResource r(ResourceOptions{.upstream = &counting, .initial_chunk_bytes = 65536, .first_buffer = false});
  std::mutex mutex;
  std::condition_variable ready;
  std::condition_variable drained;
  constexpr std::size_t kMaxQueued = 4096;
  std::vector<Block> queue;
  bool done = false;
  std::thread consumer([&] {
    for (;;) {
      std::vector<Block> batch;
      {
        std::unique_lock lock(mutex);
        ready.wait(lock, [&] { return done || !queue.empty(); });
        if (queue.empty() && done) return;
        batch.swap(queue);
      }
      drained.notify_one();
      for (const Block& b : batch) {
        WORKER_CHECK(check_pattern(b.p, b.bytes, b.seed));
        r.deallocate(b.p, b.bytes, 8);
      }
    }
  });
  for (int i = 0; i < 200000; ++i) {
    const std::size_t bytes = static_cast<std::size_t>(16 + (i * 37) % 200);
    void* p = r.allocate(bytes, 8);
    fill_pattern(p, bytes, static_cast<std::uintptr_t>(i));
    {
      std::unique_lock lock(mutex);
      queue.push_back(Block{p, bytes, static_cast<std::uintptr_t>(i)});
      if (queue.size() >= kMaxQueued) {  // back-pressure bounds the live set
        ready.notify_one();
        drained.wait(lock, [&] { return queue.empty(); });
      }
    }
    if (i % 64 == 0) ready.notify_one();
  }
  {
    std::lock_guard lock(mutex);
    done = true;
  }
  ready.notify_one();
  consumer.join();
  // Freed chunks came home and were reused: the footprint stayed bounded by the live
  // set. At most 2 * 4096 blocks of <= 216 bytes are live (queued + the consumer's
  // batch); 200000 blocks without reuse would need over 300 chunks.
  BOOST_TEST(counting.outstanding_chunks() <= 2 * 4096 * 216 / 65472 + 4);
  BOOST_TEST(r.stats().chunks_released_by_other_threads > 0u);
}

BOOST_FIXTURE_TEST_CASE(one_shot_chunks_freed_remotely_go_back_at_the_next_slow_path,
                        NoWorkerFailures) {
  CountingResource counting;
  ChunkProviderResource r(chunks_only(&counting));
  for (int i = 0; i < 100; ++i) {
    void* big = r.allocate(100000, 8);
    std::thread([&] { r.deallocate(big, 100000, 8); }).join();
  }
  // Each allocation drained the previous iteration's chunk: never more than 2 held.
  BOOST_TEST(counting.outstanding_chunks() <= 1u);
  BOOST_TEST(r.stats().peak_bytes_held <= 2 * (100000u + 64u));
}

BOOST_FIXTURE_TEST_CASE(allocating_thread_exits_before_its_blocks_are_freed, NoWorkerFailures) {
  CountingResource counting;
  {
    ChunkProviderResource r(chunks_only(&counting));
    std::vector<Block> blocks;
    std::thread producer([&] {
      for (int i = 0; i < 20000; ++i) {
        const std::size_t bytes = static_cast<std::size_t>(1 + i % 300);
        void* p = r.allocate(bytes, 8);
        fill_pattern(p, bytes, static_cast<std::uintptr_t>(i));
        blocks.push_back(Block{p, bytes, static_cast<std::uintptr_t>(i)});
      }
    });
    producer.join();  // its arena is detached; its chunks stay valid
    BOOST_TEST(r.stats().live_thread_arenas == 0u);
    for (const Block& b : blocks) {
      BOOST_REQUIRE(check_pattern(b.p, b.bytes, b.seed));
      r.deallocate(b.p, b.bytes, 8);
    }
    r.trim();  // the detached arena's chunks came home: hand them all back
    BOOST_TEST(r.stats().bytes_held == 0u);
    BOOST_TEST(counting.outstanding_chunks() == 0u);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_FIXTURE_TEST_CASE(a_small_class_block_outlives_the_thread_that_carved_it,
                        NoWorkerFailures) {
  // The thread exits with live blocks in chunks carved from its small-class block
  // (512 B, 1 KiB, 2 KiB): the block stays until the last of them is freed here.
  CountingResource counting;
  {
    ChunkProviderResource r(chunks_only(&counting));
    std::vector<Block> blocks;
    std::thread([&] {
      for (int i = 0; i < 5; ++i) {
        void* p = r.allocate(400, 8);
        fill_pattern(p, 400, static_cast<std::uintptr_t>(i));
        blocks.push_back(Block{p, 400, static_cast<std::uintptr_t>(i)});
      }
    }).join();
    BOOST_TEST(counting.outstanding_chunks() == 1u);  // the block
    BOOST_TEST(r.stats().bytes_held == chunkpmr::test::kChunk64K);
    for (const Block& b : blocks) {
      BOOST_REQUIRE(check_pattern(b.p, b.bytes, b.seed));
      r.deallocate(b.p, b.bytes, 8);
    }
    r.trim();  // the detached arena's chunks came home; the last one frees the block
    BOOST_TEST(r.stats().bytes_held == 0u);
    BOOST_TEST(counting.outstanding_chunks() == 0u);
    std::thread([&] {  // an adopter of that arena carves from a block of its own
      void* p = r.allocate(400, 8);
      WORKER_CHECK(chunkpmr::test::chunk_span(p).bytes == 4096u);  // the ratchet went on
      r.deallocate(p, 400, 8);
    }).join();
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_FIXTURE_TEST_CASE(a_thread_that_only_freed_gets_the_owner_path_once_it_allocates,
                        NoWorkerFailures) {
  // A thread's frees remember that it has no arena for the resource; when it then
  // allocates (and gets an arena) its own frees must take the owner's path: the LIFO
  // rollback shows it (the remote path would leave the cursor where it is).
  // r serves from chunks: a block of a first buffer would be dropped by its address
  // range before any lookup, and the "no arena" entry would never be set.
  ChunkProviderResource r(chunks_only(std::pmr::get_default_resource()));
  ChunkProviderResource other;
  void* from_main = r.allocate(40, 8);
  std::thread([&] {
    void* elsewhere = other.allocate(8, 8);  // an arena for another resource
    r.deallocate(from_main, 40, 8);  // no arena for r here: the remote path
    void* a = r.allocate(40, 8);
    other.deallocate(other.allocate(8, 8), 8, 8);  // back to the other arena: it is the
    r.deallocate(a, 40, 8);                        // most recent, r's arena is found again
    void* b = r.allocate(40, 8);
    WORKER_CHECK(a == b);
    r.deallocate(b, 40, 8);
    other.deallocate(elsewhere, 8, 8);
  }).join();
}

BOOST_FIXTURE_TEST_CASE(exited_threads_arenas_are_adopted, NoWorkerFailures) {
  CountingResource counting;
  ChunkProviderResource r(chunks_only(&counting));
  void* keep = r.allocate(8, 8);  // the main thread holds the inline arena
  for (int i = 0; i < 50; ++i) {
    std::thread([&] {
      void* p = r.allocate(100, 8);
      r.deallocate(p, 100, 8);
    }).join();
  }
  // Fifty threads, one after another, shared a single upstream-allocated arena.
  BOOST_TEST(counting.outstanding_blocks() - counting.outstanding_chunks() == 1u);
  BOOST_TEST(r.stats().live_thread_arenas == 1u);
  r.deallocate(keep, 8, 8);
}

BOOST_FIXTURE_TEST_CASE(a_thread_adopts_the_arena_whose_blocks_it_freed_first, NoWorkerFailures) {
  // Two threads make an arena each and exit, leaving blocks behind. A thread that takes
  // over the older arena's blocks (frees one, then allocates) adopts that arena, not the
  // first dead one in the resource's list (the newer): the blocks it frees come home,
  // and two workloads' chunks stay in two arenas.
  CountingResource counting;
  ChunkProviderResource r(chunks_only(&counting));
  void* keep = r.allocate(8, 8);  // the main thread holds the inline arena
  void* older[2] = {};
  void* newer = nullptr;
  std::binary_semaphore older_made{0};
  std::binary_semaphore newer_made{0};
  std::thread first([&] {
    older[0] = r.allocate(100, 8);
    older[1] = r.allocate(100, 8);
    older_made.release();
    newer_made.acquire();  // alive until the second has its own arena
  });
  std::thread second([&] {
    older_made.acquire();
    newer = r.allocate(100, 8);
    newer_made.release();
  });
  first.join();
  second.join();
  const auto* older_arena = chunkpmr::detail::chunk_of(older[0])->owner;
  BOOST_REQUIRE(chunkpmr::detail::chunk_of(newer)->owner != older_arena);
  std::thread([&] {
    r.deallocate(older[0], 100, 8);
    void* p = r.allocate(100, 8);
    WORKER_CHECK(chunkpmr::detail::chunk_of(p)->owner == older_arena);
    r.deallocate(p, 100, 8);
  }).join();
  r.deallocate(older[1], 100, 8);
  r.deallocate(newer, 100, 8);
  r.deallocate(keep, 8, 8);
}

BOOST_FIXTURE_TEST_CASE(resource_destroyed_while_its_threads_live_on, NoWorkerFailures) {
  CountingResource counting;
  std::optional<ChunkProviderResource> resource(std::in_place, &counting);
  std::mutex mutex;
  std::condition_variable cv;
  int phase = 0;
  auto wait_for = [&](int p) {
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return phase >= p; });
  };
  auto advance = [&](int p) {
    std::lock_guard lock(mutex);
    phase = p;
    cv.notify_all();
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      chunkpmr::test::allocate_and_keep(*resource, 1000, 8);  // left for the destructor
      void* p = resource->allocate(50, 8);
      resource->deallocate(p, 50, 8);
      {
        std::lock_guard lock(mutex);
        ++phase;
        cv.notify_all();
      }
      wait_for(10);
      // The old resource is gone; a new one may sit at the same address.
      void* q = resource->allocate(64, 8);
      fill_pattern(q, 64, 7);
      WORKER_CHECK(check_pattern(q, 64, 7));
      resource->deallocate(q, 64, 8);
    });  // thread exit then detaches only arenas of live resources
  }
  wait_for(4);
  resource.reset();
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  resource.emplace(&counting);
  advance(10);
  for (auto& t : threads) t.join();
  resource.reset();
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_FIXTURE_TEST_CASE(many_resources_on_a_long_lived_thread_leak_nothing, NoWorkerFailures) {
  CountingResource counting;
  std::thread worker([&] {
    for (int i = 0; i < 20000; ++i) {
      ChunkProviderResource r(chunks_only(&counting));
      void* p = r.allocate(static_cast<std::size_t>(8 + i % 100), 8);
      if (i % 3 == 0) r.deallocate(p, static_cast<std::size_t>(8 + i % 100), 8);
      // More than one live resource per thread at a time, past the slot table size.
      if (i % 1000 == 0) {
        std::vector<std::optional<ChunkProviderResource>> several(20);
        for (auto& s : several) {
          s.emplace(&counting);
          chunkpmr::test::allocate_and_keep(*s, 10, 8);
        }
        for (auto& s : several) chunkpmr::test::allocate_and_keep(*s, 10, 8);
      }
    }
  });
  worker.join();
  BOOST_TEST(counting.outstanding_blocks() == 0u);
}

BOOST_FIXTURE_TEST_CASE(more_resources_than_slots_on_one_thread, NoWorkerFailures) {
  CountingResource counting;
  {
    std::vector<std::optional<ChunkProviderResource>> resources(32);
    for (auto& r : resources) r.emplace(&counting);
    std::vector<std::pair<std::size_t, Block>> blocks;
    for (int round = 0; round < 50; ++round) {
      for (std::size_t k = 0; k < resources.size(); ++k) {
        void* p = resources[k]->allocate(40, 8);
        fill_pattern(p, 40, k * 1000 + static_cast<std::size_t>(round));
        blocks.emplace_back(k, Block{p, 40, k * 1000 + static_cast<std::size_t>(round)});
      }
    }
    for (auto& [k, b] : blocks) {
      BOOST_REQUIRE(check_pattern(b.p, b.bytes, b.seed));
      resources[k]->deallocate(b.p, b.bytes, 8);
    }
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

namespace {

// A pthread key whose destructor runs after chunkpmr's own exit hook (keys run in
// creation order), so the allocation it makes happens after the thread's teardown.
ChunkProviderResource* g_teardown_resource = nullptr;
std::atomic<void*> g_teardown_block{nullptr};

void allocate_during_teardown(void*) {
  void* p = g_teardown_resource->allocate(128, 16);
  fill_pattern(p, 128, 99);
  g_teardown_block.store(p);
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(allocation_during_thread_teardown_uses_the_fallback, NoWorkerFailures) {
  CountingResource counting;
  {
    ChunkProviderResource r(chunks_only(&counting));
    g_teardown_resource = &r;
    void* warm = r.allocate(8, 8);  // chunkpmr's exit key exists before ours
    pthread_key_t key;
    BOOST_REQUIRE(pthread_key_create(&key, &allocate_during_teardown) == 0);
    std::thread([&] {
      pthread_setspecific(key, &r);
      void* p = r.allocate(64, 8);
      r.deallocate(p, 64, 8);
    }).join();
    pthread_key_delete(key);
    void* p = g_teardown_block.load();
    BOOST_REQUIRE(p != nullptr);
    BOOST_TEST(check_pattern(p, 128, 99));
    BOOST_TEST(r.stats().live_thread_arenas == 1u);  // no arena was resurrected
    r.deallocate(p, 128, 16);
    r.deallocate(warm, 8, 8);
    r.trim();
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_FIXTURE_TEST_CASE(thread_local_destructors_may_still_free_and_allocate, NoWorkerFailures) {
  CountingResource counting;
  {
    ChunkProviderResource r(chunks_only(&counting));
    std::thread([&] {
      struct Holder {
        ChunkProviderResource* r;
        std::pmr::vector<int> v{r};
        ~Holder() {
          v.assign(1000, 42);  // allocates during C++ thread_local teardown
          v.clear();
          v.shrink_to_fit();
        }
      };
      thread_local Holder holder{&r};
      holder.v.assign(100, 1);
    }).join();
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
}

BOOST_FIXTURE_TEST_CASE(independent_threads_on_one_resource, NoWorkerFailures) {
  CountingResource counting;
  {
    ChunkProviderResource r(chunks_only(&counting));
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&r, t] {
        std::vector<Block> live;
        for (int i = 0; i < 50000; ++i) {
          const std::size_t bytes = static_cast<std::size_t>(1 + (i * 13 + t) % 500);
          void* p = r.allocate(bytes, 8);
          fill_pattern(p, bytes, static_cast<std::uintptr_t>(i * 4 + t));
          live.push_back(Block{p, bytes, static_cast<std::uintptr_t>(i * 4 + t)});
          if (live.size() > 300) {
            const Block b = live[static_cast<std::size_t>(i) % live.size()];
            live[static_cast<std::size_t>(i) % live.size()] = live.back();
            live.pop_back();
            WORKER_CHECK(check_pattern(b.p, b.bytes, b.seed));
            r.deallocate(b.p, b.bytes, 8);
          }
        }
        for (const Block& b : live) {
          WORKER_CHECK(check_pattern(b.p, b.bytes, b.seed));
          r.deallocate(b.p, b.bytes, 8);
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_AUTO_TEST_CASE(trim_keeps_the_initial_buffer_of_an_abandoned_arena) {
  // An exited thread's arena was bumping the initial buffer: trim() takes the arena
  // over but must not throw the unused rest of the buffer away.
  alignas(64) static std::byte buffer[64 * 1024];
  ChunkProviderResource r(buffer, sizeof buffer, std::pmr::null_memory_resource());
  std::thread([&] { r.deallocate(r.allocate(100, 8), 100, 8); }).join();
  r.trim();
  void* p = r.allocate(100, 8);  // adopts the arena: still inside the buffer
  BOOST_TEST((p >= static_cast<void*>(buffer) && p < static_cast<void*>(buffer + sizeof buffer)));
  r.deallocate(p, 100, 8);
}

namespace {

// An upstream that logs every call into a pmr::string on `log` — which may be the very
// resource it serves (a logging upstream shared by every resource). A thread_local
// guard stops the logging from logging itself.
class SelfLoggingUpstream : public std::pmr::memory_resource {
 public:
  std::pmr::memory_resource* log = nullptr;
  CountingResource counting;

 private:
  static inline thread_local bool t_logging = false;
  void note(const char* what, std::size_t bytes) {
    if (t_logging || log == nullptr) return;
    t_logging = true;
    try {  // a log line the budget cannot hold is dropped: deallocate must not throw
      std::pmr::string line(log);
      line = what;
      line += " of a block of this many bytes: ";
      line += std::to_string(bytes);
    } catch (const std::bad_alloc&) {
    }
    t_logging = false;
  }
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    note("allocate", bytes);
    void* p = counting.allocate(bytes, alignment);
    note("allocated", bytes);
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    note("deallocate", bytes);
    counting.deallocate(p, bytes, alignment);
    note("deallocated", bytes);
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override { return this == &o; }
};

}  // namespace

BOOST_AUTO_TEST_CASE(upstream_that_allocates_from_the_resource_it_serves) {
  // Every upstream call (first buffer, arena, region, one-shot chunk, and every give-back)
  // re-enters the same resource on the same thread, in the middle of its slow paths.
  for (int config = 0; config < 4; ++config) {
    const std::size_t budget = config & 1 ? std::size_t{60000} : SIZE_MAX;
    const bool first_buffer = (config & 2) != 0;
    SelfLoggingUpstream upstream;
    {
      ChunkProviderResource r(ResourceOptions{
          .upstream = &upstream, .byte_budget = budget, .first_buffer = first_buffer});
      upstream.log = &r;
      // The very first allocation: the arena, the first region and the small-class
      // block are all obtained while the log re-enters.
      r.deallocate(r.allocate(8, 8), 8, 8);
      r.trim();
      // trim()'s own give-backs are logged too: the log's (freed) strings may leave a
      // chunk in this arena or a borrowed one, never more than a frame each.
      BOOST_TEST(r.stats().bytes_held <= 2 * chunkpmr::test::kChunk64K + 4096);
      std::vector<std::pair<void*, std::size_t>> blocks;
      std::mt19937 rng(3);
      for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < 2000; ++i) {
          const std::size_t bytes = 8 + rng() % (i % 50 == 0 ? 30000 : 500);
          try {
            void* p = r.allocate(bytes, 8);
            fill_pattern(p, bytes, reinterpret_cast<std::uintptr_t>(p));
            blocks.emplace_back(p, bytes);
          } catch (const std::bad_alloc&) {  // the small budget
          }
        }
        std::thread([&] {
          for (std::size_t i = 0; i < blocks.size(); i += 3) {
            WORKER_CHECK(check_pattern(blocks[i].first, blocks[i].second,
                                       reinterpret_cast<std::uintptr_t>(blocks[i].first)));
            r.deallocate(blocks[i].first, blocks[i].second, 8);
            blocks[i].first = nullptr;
          }
        }).join();
        for (auto& [p, bytes] : blocks) {
          if (p == nullptr) continue;
          BOOST_TEST(check_pattern(p, bytes, reinterpret_cast<std::uintptr_t>(p)));
          r.deallocate(p, bytes, 8);
        }
        blocks.clear();
        r.trim();
        BOOST_TEST(r.stats().live_thread_arenas == 1u);  // no second arena for this thread
      }
      upstream.log = nullptr;
    }
    BOOST_TEST(upstream.counting.outstanding_blocks() == 0u);
    BOOST_TEST(upstream.counting.mismatched_deallocations() == 0u);
    BOOST_TEST(chunkpmr::test::worker_failures.load() == 0);
  }
}

namespace {

// An upstream that, while armed, allocates a block from the resource it serves at every
// give-back and keeps it: release() calls it for every region it gives back.
class KeepingUpstream : public std::pmr::memory_resource {
 public:
  CountingResource counting;
  std::pmr::memory_resource* resource = nullptr;  // armed while set
  std::vector<std::pair<void*, std::size_t>> kept;

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    return counting.allocate(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    counting.deallocate(p, bytes, alignment);
    if (resource == nullptr) return;
    const std::size_t size = 100 + kept.size() % 900;
    void* block = resource->allocate(size, 8);
    fill_pattern(block, size, reinterpret_cast<std::uintptr_t>(block));
    kept.emplace_back(block, size);
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override { return this == &o; }
};

}  // namespace

BOOST_AUTO_TEST_CASE(upstream_that_allocates_from_the_resource_during_its_release) {
  // Every region release() gives back makes upstream allocate from the same resource on
  // the same thread. Those calls find none of the arenas being torn down (nor the first
  // buffer being given back): their blocks come from a fresh arena and outlive
  // release(). With and without a first buffer, and with a second thread's arena.
  for (const bool first_buffer : {false, true}) {
    BOOST_TEST_CONTEXT("first_buffer " << first_buffer) {
      KeepingUpstream upstream;
      {
        ChunkProviderResource r(ResourceOptions{.upstream = &upstream, .first_buffer = first_buffer});
        for (int round = 0; round < 3; ++round) {
          for (int i = 0; i < 3000; ++i) {  // ~3 MB: several regions
            void* p = r.allocate(1000, 8);
            std::memset(p, 0x5a, 1000);
          }
          std::thread([&] {
            for (int i = 0; i < 500; ++i) std::memset(r.allocate(1000, 8), 0x5a, 1000);
          }).join();
          upstream.resource = &r;
          r.release();
          upstream.resource = nullptr;
          BOOST_TEST(!upstream.kept.empty());
          BOOST_TEST(r.stats().live_thread_arenas == 1u);  // the fresh one, this thread's
          // Kept blocks are intact after release(), also after more allocations.
          for (int i = 0; i < 2000; ++i) std::memset(r.allocate(500, 8), 0x77, 500);
          for (auto& [p, bytes] : upstream.kept) {
            BOOST_TEST(check_pattern(p, bytes, reinterpret_cast<std::uintptr_t>(p)));
            r.deallocate(p, bytes, 8);
          }
          upstream.kept.clear();
        }
      }
      BOOST_TEST(upstream.counting.outstanding_blocks() == 0u);
      BOOST_TEST(upstream.counting.mismatched_deallocations() == 0u);
    }
  }
  BOOST_TEST(chunkpmr::test::worker_failures.load() == 0);
}

BOOST_AUTO_TEST_CASE(trim_from_another_thread_is_honoured_at_the_next_slow_path) {
  // Thread B trims while thread A holds cached chunks; A returns them upstream at its
  // next slow path.
  CountingResource counting;
  ChunkProviderResource r(ResourceOptions{.upstream = &counting, .initial_chunk_bytes = 65536,
                                          .first_buffer = false});
  std::binary_semaphore cached{0};
  std::binary_semaphore trimmed{0};
  std::size_t cached_before = 0;
  std::size_t cached_after = 0;
  std::thread a([&] {
    std::vector<void*> blocks;
    for (int i = 0; i < 640; ++i) blocks.push_back(r.allocate(1000, 8));  // ~10 chunks
    for (void* p : blocks) r.deallocate(p, 1000, 8);
    r.deallocate(r.allocate(70000, 8), 70000, 8);  // a slow path: the frees land, chunks cached
    cached_before = r.stats().cached_chunks;
    cached.release();
    trimmed.acquire();
    r.deallocate(r.allocate(70000, 8), 70000, 8);  // the next slow path honours the request
    cached_after = r.stats().cached_chunks;
  });
  cached.acquire();
  std::thread([&] { r.trim(); }).join();
  trimmed.release();
  a.join();
  BOOST_TEST(cached_before > 0u);
  BOOST_TEST(cached_after == 0u);
}

BOOST_AUTO_TEST_CASE(over_aligned_block_freed_elsewhere_comes_home_like_a_one_shot_chunk) {
  // An over-aligned (> 16 KiB) block is its own upstream request, held by the arena of
  // the thread that made it. Freed on another thread it goes to that arena's remote
  // stack and upstream at the owner's next slow path; an exited owner's is reclaimed
  // by trim(). No lock either way, and bytes held count it while it lives.
  constexpr std::size_t kAlign = 32768;
  CountingResource counting;
  ChunkProviderResource r(ResourceOptions{.upstream = &counting, .first_buffer = false});
  void* p = r.allocate(1000, kAlign);
  BOOST_TEST(reinterpret_cast<std::uintptr_t>(p) % kAlign == 0u);
  fill_pattern(p, 1000, 7);
  BOOST_TEST(counting.outstanding_with_alignment(kAlign) == 1u);
  BOOST_TEST(r.stats().bytes_held == counting.outstanding_bytes());
  BOOST_TEST(r.stats().passthrough_allocations == 1u);
  std::thread([&] {
    BOOST_TEST(check_pattern(p, 1000, 7));
    r.deallocate(p, 1000, kAlign);
  }).join();
  BOOST_TEST(counting.outstanding_with_alignment(kAlign) == 1u);  // on the owner's stack
  BOOST_TEST(r.stats().chunks_released_by_other_threads == 1u);
  r.deallocate(r.allocate(100, 65536), 100, 65536);  // a slow path of the owner
  BOOST_TEST(counting.outstanding_with_alignment(kAlign) == 0u);
  // The owner's own free of an over-aligned block went upstream at once.
  BOOST_TEST(counting.outstanding_with_alignment(65536) == 0u);

  // The owner exits first: the block waits on its abandoned arena until trim().
  void* q = nullptr;
  std::thread([&] { q = r.allocate(5000, 2 * kAlign); }).join();
  BOOST_TEST(counting.outstanding_with_alignment(2 * kAlign) == 1u);
  r.deallocate(q, 5000, 2 * kAlign);
  BOOST_TEST(counting.outstanding_with_alignment(2 * kAlign) == 1u);
  r.trim();
  BOOST_TEST(counting.outstanding_with_alignment(2 * kAlign) == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
  BOOST_TEST(r.stats().bytes_held == 0u);
}

// What upstream is asked for an over-aligned block of `bytes`: the block rounded up to
// 64 bytes and its 64-byte header.
constexpr std::size_t over_aligned_bytes(std::size_t bytes) { return ((bytes + 63) / 64) * 64 + 64; }

BOOST_AUTO_TEST_CASE(over_aligned_blocks_live_until_release_and_count_in_the_budget) {
  // release() and the destructor give back over-aligned blocks still live, from every
  // thread's arena; the budget counts them and refuses one that does not fit.
  CountingResource counting;
  {
    ChunkProviderResource r(ResourceOptions{.upstream = &counting, .byte_budget = 250 * 1024,
                                            .first_buffer = false});
    void* mine = r.allocate(100000, 1 << 16);
    void* theirs = nullptr;
    std::thread([&] { theirs = r.allocate(100000, 1 << 17); }).join();
    BOOST_TEST(mine != theirs);
    BOOST_TEST(r.stats().bytes_held == 2 * (over_aligned_bytes(100000)));
    BOOST_CHECK_THROW(static_cast<void>(r.allocate(100000, 1 << 18)), std::bad_alloc);  // a third does not fit
    BOOST_TEST(counting.outstanding_blocks() >= 2u);
    r.release();
    BOOST_TEST(counting.outstanding_with_alignment(1 << 16) == 0u);
    BOOST_TEST(counting.outstanding_with_alignment(1 << 17) == 0u);
    BOOST_TEST(r.stats().bytes_held == 0u);
    void* again = r.allocate(0, 1 << 15);  // zero bytes: still a block of its own
    BOOST_TEST(reinterpret_cast<std::uintptr_t>(again) % (1 << 15) == 0u);
    BOOST_TEST(counting.outstanding_with_alignment(1 << 15) == 1u);
  }  // the destructor gives `again` back
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

namespace {

// Steps a thread takes in a pthread key destructor that runs after chunkpmr's exit
// hook: it frees the last block it allocated, then allocates again.
struct AfterExitHook {
  ChunkProviderResource* r = nullptr;
  void* last = nullptr;
  std::atomic<void*> again{nullptr};
};
AfterExitHook* g_after_exit_hook = nullptr;

void free_then_allocate_after_the_exit_hook(void*) {
  g_after_exit_hook->r->deallocate(g_after_exit_hook->last, 8, 8);
  g_after_exit_hook->again.store(g_after_exit_hook->r->allocate(8, 8));
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(past_its_exit_hook_a_thread_no_longer_acts_as_its_arenas_owner,
                        NoWorkerFailures) {
  // After the exit hook the thread owns nothing: its one-entry caches and its token are
  // gone, so a free takes the path of a thread without an arena (one atomic decrement,
  // no LIFO rollback of its former arena's cursor) and an allocation borrows an arena
  // (the former one, whose owner is dead) and gives it back. Had the thread kept its
  // cached entry or token, the free would have rolled the cursor back and the next
  // block would reuse the freed address; had it taken a new token, its former arena
  // would look owned by a running thread after it exited.
  CountingResource counting;
  {
    ChunkProviderResource warm(chunks_only(&counting));
    warm.deallocate(warm.allocate(8, 8), 8, 8);  // chunkpmr's exit key exists before ours
    ChunkProviderResource r(chunks_only(&counting));
    AfterExitHook steps;
    steps.r = &r;
    g_after_exit_hook = &steps;
    pthread_key_t key;
    BOOST_REQUIRE(pthread_key_create(&key, &free_then_allocate_after_the_exit_hook) == 0);
    void* first = nullptr;
    std::thread([&] {
      pthread_setspecific(key, &steps);
      first = r.allocate(8, 8);
      steps.last = r.allocate(8, 8);
      WORKER_CHECK(steps.last == static_cast<std::byte*>(first) + 8);
    }).join();
    pthread_key_delete(key);
    void* again = steps.again.load();
    BOOST_REQUIRE(again != nullptr);
    BOOST_TEST(again == static_cast<std::byte*>(steps.last) + 8);  // bumped on, not rolled back
    BOOST_TEST(r.stats().live_thread_arenas == 0u);
    r.deallocate(again, 8, 8);
    r.deallocate(first, 8, 8);
    r.trim();
    BOOST_TEST(r.stats().bytes_held == 0u);
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_FIXTURE_TEST_CASE(a_thread_alternating_between_resources_keeps_one_arena_in_each,
                        NoWorkerFailures) {
  // The rule for a thread that uses several resources: its one-entry cache holds the
  // resource it allocated from last and is simply replaced by the next one; nothing is
  // evicted from any resource. Every other resource finds the thread's arena again on
  // its own list, so each keeps one arena for the thread and goes on bumping the same
  // chunk, and a free into a resource that is not the cached one still takes the
  // owner's path (its LIFO rollback shows it).
  CountingResource counting;
  {
    std::vector<std::unique_ptr<ChunkProviderResource>> resources;
    for (int i = 0; i < 3; ++i) resources.push_back(std::make_unique<ChunkProviderResource>(chunks_only(&counting)));
    std::vector<void*> first(3);
    std::vector<void*> last(3);
    for (int round = 0; round < 20; ++round) {
      for (std::size_t i = 0; i < 3; ++i) {
        void* p = resources[i]->allocate(8, 8);
        if (round == 0) {
          first[i] = p;
        } else {
          BOOST_TEST(p == static_cast<std::byte*>(last[i]) + 8);
        }
        last[i] = p;
      }
    }
    resources[0]->deallocate(last[0], 8, 8);  // the cached entry is resources[2]
    BOOST_TEST(resources[0]->allocate(8, 8) == last[0]);
    for (auto& r : resources) {
      BOOST_TEST(r->stats().live_thread_arenas == 1u);
      BOOST_TEST(r->stats().normal_chunks_allocated == 1u);
    }
  }
  BOOST_TEST(counting.outstanding_blocks() == 0u);
}

BOOST_FIXTURE_TEST_CASE(an_upstream_allocating_while_a_thread_attaches_gives_it_no_second_arena,
                        NoWorkerFailures) {
  // A second thread's arena is memory from upstream, and this upstream logs into the
  // very resource it serves: that nested allocation runs while the thread attaches, so
  // it must borrow an arena rather than attach a second one for the same thread.
  SelfLoggingUpstream upstream;
  {
    ChunkProviderResource r(ResourceOptions{.upstream = &upstream, .first_buffer = false});
    void* mine = r.allocate(8, 8);  // the main thread holds the inline arena
    upstream.log = &r;
    std::size_t live = 0;
    std::thread([&] {
      void* p = r.allocate(8, 8);  // attaches: its arena is asked of upstream, which logs here
      live = r.stats().live_thread_arenas;
      r.deallocate(p, 8, 8);
    }).join();
    upstream.log = nullptr;
    BOOST_TEST(live == 2u);  // the main thread's, and one for the thread
    r.deallocate(mine, 8, 8);
  }
  BOOST_TEST(upstream.counting.outstanding_blocks() == 0u);
  BOOST_TEST(upstream.counting.mismatched_deallocations() == 0u);
}

namespace {

// An upstream that, once armed, frees one block of the resource it serves from inside
// its next deallocate call (which the resource makes from one of its slow paths).
class FreeingUpstream : public std::pmr::memory_resource {
 public:
  CountingResource counting;
  std::pmr::memory_resource* resource = nullptr;
  void* armed_block = nullptr;
  std::size_t armed_bytes = 0;

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    return counting.allocate(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    counting.deallocate(p, bytes, alignment);
    if (void* block = armed_block) {
      armed_block = nullptr;
      resource->deallocate(block, armed_bytes, 8);
    }
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override { return this == &o; }
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_free_from_upstream_inside_a_slow_path_takes_the_remote_path) {
  // Upstream frees the last live block of one of the owner's retired chunks while the
  // owner's arena is in a slow path (giving a one-shot chunk back). The arena's lists
  // may be mid-update, so that free must not take the owner's path: it is one atomic
  // decrement, and the emptied chunk waits on the arena's remote stack as if another
  // thread had freed it, until the next slow path takes it home.
  FreeingUpstream upstream;
  {
    ChunkProviderResource r(ResourceOptions{.upstream = &upstream, .initial_chunk_bytes = 65536,
                                            .first_buffer = false});
    upstream.resource = &r;
    std::vector<void*> first;
    void* p = r.allocate(1000, 8);
    const std::uintptr_t base = chunkpmr::test::chunk_span(p).base;
    while (chunkpmr::test::chunk_span(p).base == base) {
      first.push_back(p);
      p = r.allocate(1000, 8);
    }
    void* last = first.back();  // the first chunk's last live block, from here on
    first.pop_back();
    for (void* q : first) r.deallocate(q, 1000, 8);
    r.deallocate(r.allocate(70000, 8), 70000, 8);  // a slow path applies the batched frees
    BOOST_TEST(r.stats().chunks_released_by_other_threads == 0u);
    upstream.armed_block = last;
    upstream.armed_bytes = 1000;
    r.deallocate(r.allocate(70000, 8), 70000, 8);  // giving this one back, upstream frees `last`
    BOOST_TEST(upstream.armed_block == nullptr);
    BOOST_TEST(r.stats().chunks_released_by_other_threads == 1u);
    BOOST_TEST(r.stats().cached_chunks == 0u);
    r.deallocate(r.allocate(70000, 8), 70000, 8);  // the next slow path takes it home
    BOOST_TEST(r.stats().cached_chunks == 1u);
    r.deallocate(p, 1000, 8);
  }
  BOOST_TEST(upstream.counting.outstanding_blocks() == 0u);
  BOOST_TEST(upstream.counting.mismatched_deallocations() == 0u);
}

BOOST_FIXTURE_TEST_CASE(trim_retires_an_abandoned_arenas_current_chunk_even_with_live_blocks,
                        NoWorkerFailures) {
  // A thread exits with live blocks in its current chunk. trim() takes its arena and
  // retires that chunk anyway (the arena's next user refills): the surplus goes, the
  // count is the live blocks, so when another thread frees the last of them the chunk
  // comes home through the arena's remote stack, and the next trim() gives it back.
  CountingResource counting;
  ChunkProviderResource r(chunks_only(&counting));
  std::vector<void*> blocks;
  std::thread([&] {
    for (int i = 0; i < 4; ++i) blocks.push_back(r.allocate(100, 8));  // all in its first chunk
  }).join();
  BOOST_REQUIRE(chunkpmr::test::chunk_span(blocks.front()).base ==
                chunkpmr::test::chunk_span(blocks.back()).base);
  r.trim();
  BOOST_TEST(r.stats().chunks_released_by_other_threads == 0u);
  for (void* p : blocks) r.deallocate(p, 100, 8);  // no arena here: the remote path
  BOOST_TEST(r.stats().chunks_released_by_other_threads == 1u);  // the last free pushed it
  r.trim();
  BOOST_TEST(r.stats().bytes_held == 0u);
  BOOST_TEST(counting.outstanding_chunks() == 0u);
}
