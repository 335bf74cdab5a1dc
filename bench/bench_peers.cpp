// SPDX-License-Identifier: BSL-1.0
// The benchmark suite: every workload of SPEC §7 against every peer (peers.hpp). Each
// benchmark is named workload/peer[/threads] and reports, next to its time, the peak
// bytes its resource held from upstream per byte requested (resources with an
// upstream only). bench/quick.sh runs a subset; bench/run_report.sh runs it all and
// writes docs/PERF.md. Peers run interleaved in one process.
#include "peers.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <memory_resource>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>

namespace {

using chunkpmr::bench::has_upstream;
using chunkpmr::bench::kAllPeers;
using chunkpmr::bench::Peer;
using chunkpmr::bench::peer_name;
using chunkpmr::bench::thread_safe;
using chunkpmr::bench::Subject;

long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

void report_footprint(benchmark::State& state, const Subject& subject, double requested_bytes) {
  if (!has_upstream(subject.peer())) return;
  state.counters["upstream_peak_KiB"] =
      static_cast<double>(subject.upstream().peak_bytes()) / 1024.0;
  state.counters["upstream_per_requested"] =
      static_cast<double>(subject.upstream().peak_bytes()) / requested_bytes;
}

// 1. Small blocks (8..64 bytes) without frees: only the allocations are timed; each
//    iteration then drops everything (release(), or one free per block for malloc-like
//    peers) with the timer paused.
void small_allocations(benchmark::State& state, Peer peer) {
  Subject subject(peer);
  std::pmr::memory_resource* r = subject.get();
  constexpr int kBlocks = 1 << 16;
  std::vector<std::pair<void*, std::size_t>> blocks(kBlocks);
  double requested = 0;
  const long faults_before = minor_faults();
  for (auto _ : state) {
    requested = 0;
    for (int i = 0; i < kBlocks; ++i) {
      const std::size_t bytes = 8 + static_cast<std::size_t>((i * 8) % 57);
      void* p = r->allocate(bytes, 8);
      benchmark::DoNotOptimize(p);
      blocks[static_cast<std::size_t>(i)] = {p, bytes};
      requested += static_cast<double>(bytes);
    }
    state.PauseTiming();
    if (!subject.release()) {
      for (auto [p, bytes] : blocks) r->deallocate(p, bytes, 8);
    }
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kBlocks);
  // Page faults show what glibc does with the memory a release() gives back (trimmed
  // from the heap top and faulted in again by the next round, or kept).
  state.counters["minor_faults_per_round"] =
      static_cast<double>(minor_faults() - faults_before) / static_cast<double>(state.iterations());
  report_footprint(state, subject, requested);
}

// 2. pmr containers in steady churn, never released: a vector of strings built and
//    dropped, a vector of ints grown by push_back.
void container_churn(benchmark::State& state, Peer peer) {
  Subject subject(peer);
  std::pmr::memory_resource* r = subject.get();
  constexpr int kStrings = 1000;
  double requested_live = 0;
  for (auto _ : state) {
    std::pmr::vector<std::pmr::string> strings(r);
    for (int i = 0; i < kStrings; ++i)
      strings.emplace_back(static_cast<std::size_t>(20 + i % 60), static_cast<char>('a' + i % 26));
    std::pmr::vector<int> numbers(r);
    for (int i = 0; i < 4 * kStrings; ++i) numbers.push_back(i);
    benchmark::DoNotOptimize(strings.data());
    benchmark::DoNotOptimize(numbers.data());
    requested_live = static_cast<double>(strings.capacity() * sizeof(std::pmr::string) +
                                         numbers.capacity() * sizeof(int) + kStrings * 51);
  }
  state.SetItemsProcessed(state.iterations() * kStrings);
  report_footprint(state, subject, requested_live);
}

// A bounded single-producer single-consumer ring of string pointers.
class Ring {
 public:
  // Producer only. The consumer's index is re-read only when the ring looks full, so
  // the handoff costs the slot's cache line, not a line transfer per item for indices.
  bool push(std::pmr::string* s) {
    const std::size_t head = head_.load(std::memory_order_relaxed);
    if (head - tail_seen_ == kSize) {
      tail_seen_ = tail_.load(std::memory_order_acquire);
      if (head - tail_seen_ == kSize) return false;
    }
    slots_[head % kSize] = s;
    head_.store(head + 1, std::memory_order_release);
    return true;
  }
  // Consumer only; the producer's index is re-read only when the ring looks empty.
  std::pmr::string* pop() {
    const std::size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail == head_seen_) {
      head_seen_ = head_.load(std::memory_order_acquire);
      if (tail == head_seen_) return nullptr;
    }
    std::pmr::string* s = slots_[tail % kSize];
    tail_.store(tail + 1, std::memory_order_release);
    return s;
  }

 private:
  static constexpr std::size_t kSize = 1024;
  std::pmr::string* slots_[kSize];
  alignas(64) std::atomic<std::size_t> head_{0};
  std::size_t tail_seen_ = 0;  // producer's copy of tail_
  alignas(64) std::atomic<std::size_t> tail_{0};
  std::size_t head_seen_ = 0;  // consumer's copy of head_
};

// 3. Producer/consumer across threads (xmalloc-test shape): one thread allocates pmr
//    strings, another destroys them. Only thread-safe resources take part. Both sides
//    yield when the ring is full or empty: with two cores, a pure spin lets the
//    scheduler decide the result (two spinning threads on one core hand over once per
//    time slice, about 1 µs per item instead of tens of ns).
void producer_consumer(benchmark::State& state, Peer peer) {
  Subject subject(peer);
  std::pmr::memory_resource* r = subject.get();
  constexpr int kItems = 20000;
  std::pmr::polymorphic_allocator<std::pmr::string> alloc(r);
  for (auto _ : state) {
    Ring ring;
    std::thread consumer([&] {
      for (int done = 0; done < kItems;) {
        if (std::pmr::string* s = ring.pop()) {
          alloc.delete_object(s);
          ++done;
        } else {
          std::this_thread::yield();  // lets the producer run if it shares this core
        }
      }
    });
    for (int i = 0; i < kItems; ++i) {
      std::pmr::string* s = alloc.new_object<std::pmr::string>(
          static_cast<std::size_t>(24 + i % 40), 'x');
      while (!ring.push(s)) std::this_thread::yield();
    }
    consumer.join();
  }
  state.SetItemsProcessed(state.iterations() * kItems);
  report_footprint(state, subject, 1024.0 * (sizeof(std::pmr::string) + 44));
}

// 4. Larson-shaped server churn: two threads each keep an array of live blocks and
//    replace a random one per step (free + allocate 16..1000 bytes); every 1000 steps
//    the threads swap arrays, so half the frees hit blocks the other thread allocated.
void larson(benchmark::State& state, Peer peer) {
  Subject subject(peer);
  std::pmr::memory_resource* r = subject.get();
  constexpr int kSlots = 1000;
  constexpr int kSteps = 20000;
  struct Slot {
    void* p;
    std::size_t bytes;
  };
  std::vector<Slot> arrays[2];
  std::mt19937 seed_rng(1);
  for (auto& a : arrays) {
    for (int i = 0; i < kSlots; ++i) {
      const std::size_t bytes = 16 + seed_rng() % 985;
      a.push_back(Slot{r->allocate(bytes, 8), bytes});
    }
  }
  double live_bytes = 0;
  for (auto& a : arrays)
    for (auto& sl : a) live_bytes += static_cast<double>(sl.bytes);
  for (auto _ : state) {
    // Every 1000 steps both threads meet and the barrier's completion swaps the arrays.
    std::barrier meet(2, [&arrays]() noexcept { std::swap(arrays[0], arrays[1]); });
    auto run = [&](int me) {
      std::mt19937 rng(static_cast<unsigned>(me + 7));
      for (int step = 0; step < kSteps; ++step) {
        if (step % 1000 == 0) meet.arrive_and_wait();
        Slot& sl = arrays[me][rng() % kSlots];
        r->deallocate(sl.p, sl.bytes, 8);
        sl.bytes = 16 + rng() % 985;
        sl.p = r->allocate(sl.bytes, 8);
      }
    };
    std::thread other(run, 1);
    run(0);
    other.join();
  }
  for (auto& a : arrays)
    for (auto& sl : a) r->deallocate(sl.p, sl.bytes, 8);
  state.SetItemsProcessed(state.iterations() * kSteps * 2);
  report_footprint(state, subject, live_bytes);
}

// 5. Independent threads on one resource: each thread churns its own blocks (64 live,
//    8..256 bytes, freed in random order). Run with 1 and 2 threads; items/s per run.
void independent_threads(benchmark::State& state, Peer peer) {
  // Thread 0 creates the shared resource before the loop; Google Benchmark starts every
  // thread's loop together (and ends them together), so the others read it inside.
  static Subject* shared = nullptr;
  if (state.thread_index() == 0) shared = new Subject(peer);
  std::mt19937 rng(static_cast<unsigned>(state.thread_index() + 1));
  std::pair<void*, std::size_t> live[64];
  for (auto _ : state) {
    std::pmr::memory_resource* r = shared->get();
    for (auto& b : live) {
      b.second = 8 + rng() % 249;
      b.first = r->allocate(b.second, 8);
      benchmark::DoNotOptimize(b.first);
    }
    std::shuffle(std::begin(live), std::end(live), rng);
    for (auto& b : live) r->deallocate(b.first, b.second, 8);
  }
  state.SetItemsProcessed(state.iterations() * 64);
  if (state.thread_index() == 0) {
    delete shared;
    shared = nullptr;
  }
}

// 6. release() of a million small blocks: only release() is timed.
void release_many(benchmark::State& state, Peer peer) {
  Subject subject(peer);
  std::pmr::memory_resource* r = subject.get();
  constexpr int kBlocks = 1000000;
  for (auto _ : state) {
    state.PauseTiming();
    for (int i = 0; i < kBlocks; ++i) benchmark::DoNotOptimize(r->allocate(16 + i % 48, 8));
    state.ResumeTiming();
    subject.release();
  }
  state.counters["blocks_per_release"] = kBlocks;
}

void register_all() {
  for (Peer p : kAllPeers) {
    const std::string name = peer_name(p);
    benchmark::RegisterBenchmark(("small_alloc/" + name).c_str(), small_allocations, p);
    // Fixed iteration count: the monotonic peers grow without bound here, so every peer
    // does the same amount of work and the footprints are comparable.
    benchmark::RegisterBenchmark(("container_churn/" + name).c_str(), container_churn, p)
        ->Iterations(2000);
    if (thread_safe(p)) {
      benchmark::RegisterBenchmark(("producer_consumer/" + name).c_str(), producer_consumer, p)
          ->UseRealTime();
      benchmark::RegisterBenchmark(("larson/" + name).c_str(), larson, p)->UseRealTime();
      benchmark::RegisterBenchmark(("independent_threads/" + name).c_str(), independent_threads, p)
          ->Threads(1)
          ->Threads(2)
          ->UseRealTime();
    }
    if (has_upstream(p)) {
      benchmark::RegisterBenchmark(("release_many/" + name).c_str(), release_many, p)
          ->Iterations(5)
          ->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
