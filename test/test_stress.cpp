// SPDX-License-Identifier: BSL-1.0
// Multi-thread stress, bounded in time: CHUNKPMR_STRESS_SECONDS per test (default 2).
// Every payload is verified byte for byte, the counting upstream is back to zero at the
// end, and the bytes held from upstream stay under a bound during the run. Each test
// prints how many operations it did (shown with --log_level=message).
#define BOOST_TEST_MODULE stress
#include <boost/test/unit_test.hpp>

#include <chunkpmr/chunk_provider_resource.hpp>

#include "test_support.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

using chunkpmr::ChunkProviderResource;
using chunkpmr::ResourceOptions;
using chunkpmr::test::check_pattern;
using chunkpmr::test::CountingResource;
using chunkpmr::test::fill_pattern;
using Clock = std::chrono::steady_clock;

namespace {

double stress_seconds() {
  const char* env = std::getenv("CHUNKPMR_STRESS_SECONDS");
  return env != nullptr ? std::atof(env) : 2.0;
}

Clock::time_point deadline() {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(stress_seconds()));
}

struct Block {
  void* p;
  std::size_t bytes;
  std::size_t alignment;
  std::uintptr_t seed;
};

Block make_block(ChunkProviderResource& r, std::mt19937& rng, std::uintptr_t seed) {
  std::size_t bytes = 1 + rng() % 300;
  std::size_t alignment = std::size_t{1} << (rng() % 7);
  const unsigned kind = rng() % 100;
  if (kind < 3) bytes = 20000 + rng() % 80000;  // one-shot chunks
  if (kind == 3) alignment = 4096;
  if (kind == 4) alignment = 65536;  // pass-through
  void* p = r.allocate(bytes, alignment);
  fill_pattern(p, bytes, seed);
  return Block{p, bytes, alignment, seed};
}

void free_block(ChunkProviderResource& r, const Block& b) {
  WORKER_CHECK(check_pattern(b.p, b.bytes, b.seed));
  r.deallocate(b.p, b.bytes, b.alignment);
}

// Highest bytes_held seen by any sampler.
struct PeakWatch {
  std::atomic<std::size_t> peak{0};
  void sample(const ChunkProviderResource& r) {
    const std::size_t now = r.stats().bytes_held;
    std::size_t seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
  }
};

struct NoWorkerFailures {
  NoWorkerFailures() { chunkpmr::test::worker_failures.store(0); }
  ~NoWorkerFailures() { BOOST_TEST(chunkpmr::test::worker_failures.load() == 0); }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(producers_and_consumers_hand_containers_through_a_queue,
                        NoWorkerFailures) {
  CountingResource counting;
  PeakWatch watch;
  std::atomic<long> batches{0};
  {
    ChunkProviderResource r(&counting);
    using Batch = std::pmr::vector<std::pmr::string>;
    std::mutex mutex;
    std::condition_variable changed;
    std::deque<std::pair<Batch, int>> queue;
    int producers_left = 2;
    constexpr std::size_t kMaxQueued = 32;
    const auto end = deadline();
    auto text = [](int batch, int i) {
      return std::string(static_cast<std::size_t>((batch + i) % 120), static_cast<char>('a' + (batch * 7 + i) % 26)) +
             std::to_string(batch * 1000 + i);
    };
    std::vector<std::thread> threads;
    for (int p = 0; p < 2; ++p) {
      threads.emplace_back([&, p] {
        for (int n = p; Clock::now() < end; n += 2) {
          Batch batch(&r);
          for (int i = 0; i < 64; ++i) batch.emplace_back(text(n, i));
          std::unique_lock lock(mutex);
          changed.wait(lock, [&] { return queue.size() < kMaxQueued; });
          queue.emplace_back(std::move(batch), n);
          changed.notify_all();
          if (n % 64 == p) {
            lock.unlock();
            watch.sample(r);
          }
        }
        std::lock_guard lock(mutex);
        --producers_left;
        changed.notify_all();
      });
    }
    for (int c = 0; c < 2; ++c) {
      threads.emplace_back([&] {
        for (;;) {
          std::unique_lock lock(mutex);
          changed.wait(lock, [&] { return !queue.empty() || producers_left == 0; });
          if (queue.empty()) return;
          auto [batch, n] = std::move(queue.front());
          queue.pop_front();
          changed.notify_all();
          lock.unlock();
          for (int i = 0; i < 64; ++i) WORKER_CHECK(batch[static_cast<std::size_t>(i)] == text(n, i).c_str());
          batches.fetch_add(1);
        }  // the batch dies here, on the consumer
      });
    }
    for (auto& t : threads) t.join();
  }
  BOOST_TEST_MESSAGE("pipeline: " << batches.load() << " batches of 64 strings, peak "
                                   << watch.peak.load() << " bytes held");
  BOOST_TEST(batches.load() > 0);
  // Live set: at most ~36 batches of 64 strings (< 200 B each) plus vector storage;
  // with four threads' caches (1 MiB cap each) and current chunks the bound is loose.
  BOOST_TEST(watch.peak.load() <= std::size_t{8} << 20);
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_FIXTURE_TEST_CASE(mstress_threads_come_and_go_while_their_blocks_live_on,
                        NoWorkerFailures) {
  // Generations of threads: each frees part of what earlier (exited) threads left in a
  // shared pool, allocates its own blocks, leaves some in the pool and exits.
  CountingResource counting;
  PeakWatch watch;
  long generations = 0;
  std::atomic<long> operations{0};
  {
    ChunkProviderResource r(&counting);
    std::mutex pool_mutex;
    std::vector<Block> pool;
    std::atomic<std::uintptr_t> next_seed{1};
    const auto end = deadline();
    while (Clock::now() < end) {
      std::vector<std::thread> threads;
      for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
          std::mt19937 rng(static_cast<unsigned>(generations * 4 + t));
          std::vector<Block> mine;
          {
            std::lock_guard lock(pool_mutex);
            for (std::size_t i = 0; i < pool.size();) {
              if (rng() % 2 == 0) {
                mine.push_back(pool[i]);
                pool[i] = pool.back();
                pool.pop_back();
              } else {
                ++i;
              }
            }
          }
          for (const Block& b : mine) free_block(r, b);
          mine.clear();
          for (int i = 0; i < 400; ++i) mine.push_back(make_block(r, rng, next_seed.fetch_add(1)));
          std::shuffle(mine.begin(), mine.end(), rng);
          const std::size_t keep = mine.size() / 4;
          {
            std::lock_guard lock(pool_mutex);
            pool.insert(pool.end(), mine.begin(), mine.begin() + static_cast<long>(keep));
          }
          for (std::size_t i = keep; i < mine.size(); ++i) free_block(r, mine[i]);
          operations.fetch_add(static_cast<long>(mine.size() * 2));
        });
      }
      for (auto& t : threads) t.join();
      watch.sample(r);
      ++generations;
    }
    for (const Block& b : pool) free_block(r, b);
    r.trim();
    BOOST_TEST(r.stats().live_thread_arenas == 0u);
    BOOST_TEST(counting.outstanding_chunks() == 0u);  // every chunk came home and left
  }
  BOOST_TEST_MESSAGE("mstress: " << generations << " generations of 4 threads, "
                                  << operations.load() << " allocations+frees, peak "
                                  << watch.peak.load() << " bytes held");
  BOOST_TEST(generations > 0);
  BOOST_TEST(watch.peak.load() <= std::size_t{32} << 20);
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_FIXTURE_TEST_CASE(remote_frees_race_refills_drains_and_owner_exit, NoWorkerFailures) {
  // Short-lived owner threads allocate fast (constant refills, class ratchet from 512 B)
  // and exit at random moments while two freer threads release their blocks.
  CountingResource counting;
  PeakWatch watch;
  std::atomic<long> freed{0};
  long owners = 0;
  {
    ChunkProviderResource r(ResourceOptions{.upstream = &counting, .max_cached_bytes_per_thread = 128 * 1024});
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<Block> queue;
    bool done = false;
    std::vector<std::thread> freers;
    for (int f = 0; f < 2; ++f) {
      freers.emplace_back([&] {
        for (;;) {
          std::unique_lock lock(mutex);
          ready.wait(lock, [&] { return done || !queue.empty(); });
          if (queue.empty()) return;
          Block b = queue.front();
          queue.pop_front();
          lock.unlock();
          free_block(r, b);
          freed.fetch_add(1);
        }
      });
    }
    const auto end = deadline();
    std::uintptr_t seed = 1;
    while (Clock::now() < end) {
      std::thread owner([&, owner_index = owners] {
        std::mt19937 rng(static_cast<unsigned>(owner_index));
        const int count = 200 + static_cast<int>(rng() % 3000);
        for (int i = 0; i < count; ++i) {
          Block b = make_block(r, rng, seed + static_cast<std::uintptr_t>(i));
          std::lock_guard lock(mutex);
          queue.push_back(b);
          ready.notify_one();
        }
      });
      owner.join();  // exits while its blocks are still being freed elsewhere
      seed += 4000;
      ++owners;
      if (owners % 16 == 0) watch.sample(r);
      std::unique_lock lock(mutex);
      while (queue.size() > 20000) {  // keep the live set bounded
        lock.unlock();
        std::this_thread::yield();
        lock.lock();
      }
    }
    {
      std::lock_guard lock(mutex);
      done = true;
    }
    ready.notify_all();
    for (auto& t : freers) t.join();
    r.trim();
    BOOST_TEST(counting.outstanding_chunks() == 0u);
  }
  BOOST_TEST_MESSAGE("remote frees vs owner exit: " << owners << " owner threads, "
                                                     << freed.load() << " remote frees, peak "
                                                     << watch.peak.load() << " bytes held");
  BOOST_TEST(owners > 0);
  BOOST_TEST(watch.peak.load() <= std::size_t{64} << 20);
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_FIXTURE_TEST_CASE(many_resources_created_and_destroyed_on_long_lived_threads,
                        NoWorkerFailures) {
  // Two long-lived threads each create resources (varied options, sometimes more at
  // once than the slot table holds), hand blocks to the other thread to free, and
  // destroy the resource once the other side confirmed.
  CountingResource counting;
  std::atomic<long> resources{0};
  {
    struct Mailbox {
      std::mutex mutex;
      std::condition_variable changed;
      std::deque<std::pair<ChunkProviderResource*, std::vector<Block>>> inbox;
      long acknowledged = 0;
    };
    Mailbox boxes[2];
    std::atomic<int> finished{0};
    const auto end = deadline();
    auto worker = [&](int me) {
      Mailbox& mine = boxes[me];
      Mailbox& other = boxes[1 - me];
      std::mt19937 rng(static_cast<unsigned>(me + 17));
      long sent = 0;
      auto serve = [&] {  // free what the other thread sent us
        std::unique_lock lock(mine.mutex);
        while (!mine.inbox.empty()) {
          auto [resource, blocks] = std::move(mine.inbox.front());
          mine.inbox.pop_front();
          lock.unlock();
          for (const Block& b : blocks) free_block(*resource, b);
          {
            std::lock_guard other_lock(other.mutex);
            ++other.acknowledged;
            other.changed.notify_all();
          }
          lock.lock();
        }
      };
      while (Clock::now() < end) {
        const int at_once = rng() % 8 == 0 ? 12 : 1;
        std::vector<std::unique_ptr<ChunkProviderResource>> live;
        for (int k = 0; k < at_once; ++k) {
          live.push_back(std::make_unique<ChunkProviderResource>(ResourceOptions{
              .upstream = &counting,
              .initial_chunk_bytes = std::size_t{512} << (rng() % 8),
              .max_cached_bytes_per_thread = (rng() % 2) != 0 ? 0 : std::size_t{1} << 20}));
        }
        for (auto& r : live) {
          std::vector<Block> to_send;
          std::vector<Block> to_keep;
          for (int i = 0; i < 200; ++i) {
            Block b = make_block(*r, rng, rng());
            (i % 2 == 0 ? to_send : to_keep).push_back(b);
          }
          {
            std::lock_guard lock(other.mutex);
            other.inbox.emplace_back(r.get(), std::move(to_send));
            other.changed.notify_all();
          }
          ++sent;
          for (const Block& b : to_keep) free_block(*r, b);
        }
        // Wait until the other side freed everything we sent, serving it meanwhile.
        for (;;) {
          serve();
          std::unique_lock lock(mine.mutex);
          if (mine.acknowledged == sent) break;
          mine.changed.wait_for(lock, std::chrono::milliseconds(1));
        }
        resources.fetch_add(static_cast<long>(live.size()));
      }  // resources destroyed here, on this long-lived thread
      // Keep serving until the other thread stops sending too.
      finished.fetch_add(1);
      while (finished.load() < 2) serve();
      serve();
    };
    std::thread a(worker, 0);
    std::thread b(worker, 1);
    a.join();
    b.join();
  }
  BOOST_TEST_MESSAGE("resource churn: " << resources.load() << " resources created and destroyed");
  BOOST_TEST(resources.load() > 0);
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}
