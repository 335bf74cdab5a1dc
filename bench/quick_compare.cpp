// Quick side-by-side comparison (README's main command): chunkpmr against libstdc++'s
// monotonic_buffer_resource, unsynchronized/synchronized_pool_resource and
// new_delete_resource (glibc malloc) on three workloads. Each benchmark reports, next
// to its time, the peak bytes its resource held from upstream per byte requested.
#include "peers.hpp"

#include <benchmark/benchmark.h>

#include <atomic>
#include <memory_resource>
#include <string>
#include <thread>
#include <vector>

namespace {

using chunkpmr::bench::Peer;
using chunkpmr::bench::peer_name;
using chunkpmr::bench::Subject;

void report_footprint(benchmark::State& state, const Subject& subject, double requested_bytes) {
  state.counters["upstream_peak_KiB"] =
      static_cast<double>(subject.upstream().peak_bytes()) / 1024.0;
  state.counters["upstream_per_requested"] =
      static_cast<double>(subject.upstream().peak_bytes()) / requested_bytes;
}

// 1. Small blocks (8..64 bytes) without frees, then everything dropped at once
//    (release() where the resource has it, one free per block for new_delete).
void small_allocations(benchmark::State& state, Peer peer) {
  Subject subject(peer);
  std::pmr::memory_resource* r = subject.get();
  constexpr int kBlocks = 4096;
  std::vector<std::pair<void*, std::size_t>> blocks(kBlocks);
  double requested = 0;
  for (auto _ : state) {
    requested = 0;
    for (int i = 0; i < kBlocks; ++i) {
      const std::size_t bytes = 8 + static_cast<std::size_t>((i * 8) % 57);
      void* p = r->allocate(bytes, 8);
      benchmark::DoNotOptimize(p);
      blocks[static_cast<std::size_t>(i)] = {p, bytes};
      requested += static_cast<double>(bytes);
    }
    if (!subject.release()) {
      for (auto [p, bytes] : blocks) r->deallocate(p, bytes, 8);
    }
  }
  state.SetItemsProcessed(state.iterations() * kBlocks);
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
  bool push(std::pmr::string* s) {
    const std::size_t head = head_.load(std::memory_order_relaxed);
    if (head - tail_.load(std::memory_order_acquire) == kSize) return false;
    slots_[head % kSize] = s;
    head_.store(head + 1, std::memory_order_release);
    return true;
  }
  std::pmr::string* pop() {
    const std::size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail == head_.load(std::memory_order_acquire)) return nullptr;
    std::pmr::string* s = slots_[tail % kSize];
    tail_.store(tail + 1, std::memory_order_release);
    return s;
  }

 private:
  static constexpr std::size_t kSize = 1024;
  std::pmr::string* slots_[kSize];
  alignas(64) std::atomic<std::size_t> head_{0};
  alignas(64) std::atomic<std::size_t> tail_{0};
};

// 3. Producer/consumer across threads (xmalloc-test shape): one thread allocates pmr
//    strings, another destroys them. Only thread-safe resources take part.
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
        }
      }
    });
    for (int i = 0; i < kItems; ++i) {
      std::pmr::string* s = alloc.new_object<std::pmr::string>(
          static_cast<std::size_t>(24 + i % 40), 'x');
      while (!ring.push(s)) {
      }
    }
    consumer.join();
  }
  state.SetItemsProcessed(state.iterations() * kItems);
  report_footprint(state, subject, 1024.0 * (sizeof(std::pmr::string) + 44));
}

void register_all() {
  const Peer all[] = {Peer::chunkpmr, Peer::monotonic, Peer::unsync_pool, Peer::sync_pool,
                      Peer::new_delete};
  for (Peer p : all) {
    benchmark::RegisterBenchmark((std::string("small_alloc/") + peer_name(p)).c_str(),
                                 small_allocations, p);
    // Fixed iteration count: monotonic grows without bound here, so every peer does the
    // same amount of work and the footprints are comparable.
    benchmark::RegisterBenchmark((std::string("container_churn/") + peer_name(p)).c_str(),
                                 container_churn, p)
        ->Iterations(2000);
  }
  for (Peer p : {Peer::chunkpmr, Peer::sync_pool, Peer::new_delete}) {
    benchmark::RegisterBenchmark((std::string("producer_consumer/") + peer_name(p)).c_str(),
                                 producer_consumer, p)
        ->UseRealTime();
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
