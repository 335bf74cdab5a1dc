// SPDX-License-Identifier: BSL-1.0
// Resource lifecycle benchmarks: what a short-lived resource costs per request (created,
// used for a few allocations, destroyed), and how a thread does when it spreads its
// allocations over many long-lived resources. Every resource uses its default upstream
// (new_delete_resource, glibc malloc underneath). Items per second are reported; one
// item is one request (request workloads) or one block replaced (round_robin).
//
//   request/<resource>/<stack|new>           one request: create a resource (a local, or
//                                            new'ed and deleted), build a pmr vector of 20
//                                            pmr strings of 32 chars on it, sum their
//                                            contents, destroy the resource
//   request_2threads/<resource>/<placement>  the same on 1 and 2 threads (wall time)
//   request_with_10k_live/<resource>/<pl.>   the same while 10,000 other resources of the
//                                            same kind, each holding one block, are alive
//   round_robin/<resource>/<N>               N long-lived resources, each with a ring of
//                                            16 live blocks of 16..256 bytes; an item picks
//                                            the next resource in turn and replaces its
//                                            oldest block (free, allocate, write);
//                                            N in {1, 8, 9, 64, 1024} (std_sync_pool: to 64);
//                                            bump_bound_64k / bump_bound_4k: what bumping
//                                            alone costs (two 64 KiB or four 4 KiB buffers
//                                            per resource, nothing else)
//
// Fresh-process mode (bench/lifecycle_alone.sh): `bench_lifecycle --alone=<workload>
// --items=<n>` runs that workload's body n times without Google Benchmark and prints
// one JSON line: wall ns per item, minor page faults per item (both over the n items,
// setup excluded) and the process's max RSS. `--alone=list` prints the names.
#include "alone.hpp"

#include <chunkpmr/chunk_provider_resource.hpp>

#include <boost/container/pmr/memory_resource.hpp>
#include <boost/container/pmr/unsynchronized_pool_resource.hpp>
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <memory_resource>
#include <string>
#include <string_view>
#include <thread>
#include <vector>


namespace {

// ---------------------------------------------------------------------------------
// One request.

constexpr int kStrings = 20;
constexpr std::size_t kStringChars = 32;  // above libstdc++'s 15-char SSO buffer

std::uint64_t build_and_touch(std::pmr::memory_resource& r, std::uint64_t salt) {
  std::pmr::vector<std::pmr::string> strings(&r);
  for (int i = 0; i < kStrings; ++i)
    strings.emplace_back(kStringChars, static_cast<char>('a' + (i + salt) % 26));
  std::uint64_t sum = 0;
  for (std::pmr::string& s : strings) {
    s[salt % kStringChars] = 'z';
    for (char c : s) sum += static_cast<unsigned char>(c);
  }
  return sum;
}

enum class Placement { stack, heap };

template <class R, Placement P>
std::uint64_t one_request(std::uint64_t salt) {
  if constexpr (P == Placement::stack) {
    R resource;
    return build_and_touch(resource, salt);
  } else {
    R* resource = new R;
    benchmark::DoNotOptimize(resource);
    const std::uint64_t sum = build_and_touch(*resource, salt);
    delete resource;
    return sum;
  }
}

template <class R, Placement P>
class RequestRunner {
 public:
  void step() { sum_ += one_request<R, P>(n_++); }
  std::uint64_t checksum() const { return sum_; }

 private:
  std::uint64_t n_ = 0;
  std::uint64_t sum_ = 0;
};

// The request while 10,000 other resources of the same kind are alive, each holding one
// 64-byte block; they are created before the timed loop and destroyed after it.
template <class R, Placement P>
class LiveRunner {
 public:
  static constexpr int kLive = 10000;
  static constexpr std::size_t kBlock = 64;

  LiveRunner() {
    live_.reserve(kLive);
    for (int i = 0; i < kLive; ++i) {
      live_.push_back(Live{std::make_unique<R>(), nullptr});
      live_.back().block = live_.back().resource->allocate(kBlock, 8);
      std::memset(live_.back().block, i & 0xff, kBlock);
    }
  }
  ~LiveRunner() {
    for (Live& l : live_) l.resource->deallocate(l.block, kBlock, 8);
  }
  LiveRunner(const LiveRunner&) = delete;
  LiveRunner& operator=(const LiveRunner&) = delete;

  void step() { inner_.step(); }
  std::uint64_t checksum() const { return inner_.checksum(); }

 private:
  struct Live {
    std::unique_ptr<R> resource;
    void* block;
  };
  std::vector<Live> live_;
  RequestRunner<R, P> inner_;
};

// ---------------------------------------------------------------------------------
// A bound for any bump allocator in round robin: per resource, `Buffers` buffers of
// `Bytes` taken in turn, with a live count each and nothing else (no header, no lookup,
// no thread safety, no upstream call after construction). What it shows is the cost of
// bumping through fresh memory, which no allocator that bumps can avoid. Not a usable
// resource: it assumes the next buffer is empty when the current one is full (true for
// round robin's 16 live blocks of at most 256 B: their span never exceeds 4 KiB plus
// alignment) and throws std::bad_alloc otherwise.
template <std::size_t Bytes, int Buffers>
class BumpBound : public std::pmr::memory_resource {
 public:
  BumpBound() {
    for (Buffer& b : buffers_) b.base = static_cast<std::byte*>(::operator new(Bytes, std::align_val_t{4096}));
  }
  ~BumpBound() override {
    for (Buffer& b : buffers_) ::operator delete(b.base, std::align_val_t{4096});
  }
  BumpBound(const BumpBound&) = delete;
  BumpBound& operator=(const BumpBound&) = delete;

 private:
  struct Buffer {
    std::byte* base = nullptr;
    long live = 0;
  };
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    std::size_t offset = (used_ + alignment - 1) & ~(alignment - 1);
    if (bytes > Bytes || offset > Bytes - bytes) {
      current_ = (current_ + 1) % Buffers;
      if (buffers_[current_].live != 0 || bytes > Bytes) throw std::bad_alloc();
      offset = 0;
    }
    used_ = offset + bytes;
    ++buffers_[current_].live;
    return buffers_[current_].base + offset;
  }
  void do_deallocate(void* p, std::size_t, std::size_t) override {
    const auto address = reinterpret_cast<std::uintptr_t>(p);
    for (Buffer& b : buffers_) {
      if (address - reinterpret_cast<std::uintptr_t>(b.base) < Bytes) {
        --b.live;
        return;
      }
    }
  }
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override { return this == &other; }

  Buffer buffers_[Buffers];
  int current_ = 0;
  std::size_t used_ = 0;
};

// ---------------------------------------------------------------------------------
// Round robin over N long-lived resources. Base is the interface the blocks are taken
// through (std::pmr or Boost.Container's memory_resource); every call is virtual.

template <class R, class Base>
class RoundRobinRunner {
 public:
  static constexpr int kRing = 16;

  explicit RoundRobinRunner(int n) : owned_(static_cast<std::size_t>(n)), rings_(static_cast<std::size_t>(n)) {
    for (std::size_t i = 0; i < rings_.size(); ++i) {
      owned_[i] = std::make_unique<R>();
      Ring& ring = rings_[i];
      ring.resource = owned_[i].get();
      for (Block& b : ring.blocks) {
        b.bytes = next_size();
        b.p = ring.resource->allocate(b.bytes, 8);
        std::memset(b.p, 1, b.bytes);
      }
    }
  }
  ~RoundRobinRunner() {
    for (Ring& ring : rings_)
      for (Block& b : ring.blocks) ring.resource->deallocate(b.p, b.bytes, 8);
  }
  RoundRobinRunner(const RoundRobinRunner&) = delete;
  RoundRobinRunner& operator=(const RoundRobinRunner&) = delete;

  void step() {
    Ring& ring = rings_[next_];
    if (++next_ == rings_.size()) next_ = 0;
    Block& oldest = ring.blocks[ring.head];
    ring.head = (ring.head + 1) % kRing;
    sum_ += static_cast<unsigned char>(static_cast<const char*>(oldest.p)[0]);
    ring.resource->deallocate(oldest.p, oldest.bytes, 8);
    oldest.bytes = next_size();
    oldest.p = ring.resource->allocate(oldest.bytes, 8);
    std::memset(oldest.p, static_cast<int>(oldest.bytes & 0xff), oldest.bytes);
  }
  std::uint64_t checksum() const { return sum_; }

 private:
  struct Block {
    void* p = nullptr;
    std::size_t bytes = 0;
  };
  struct Ring {
    Base* resource = nullptr;
    Block blocks[kRing];
    unsigned head = 0;
  };

  std::size_t next_size() {
    rng_ = rng_ * 6364136223846793005ull + 1442695040888963407ull;
    return 16 + static_cast<std::size_t>((rng_ >> 33) % 241);  // 16..256
  }

  std::vector<std::unique_ptr<R>> owned_;
  std::vector<Ring> rings_;
  std::size_t next_ = 0;
  std::uint64_t rng_ = 1;
  std::uint64_t sum_ = 0;
};

// ---------------------------------------------------------------------------------
// The two drivers: Google Benchmark, and a fresh process running one workload alone.

template <class Runner, class... Args>
void run_benchmark(benchmark::State& state, Args... args) {
  Runner runner(args...);
  for (auto _ : state) runner.step();
  benchmark::DoNotOptimize(runner.checksum());
  state.SetItemsProcessed(state.iterations());
}

using bench_alone::max_rss_kib;
using bench_alone::minor_faults;

// Runs `items` steps over `threads` threads (each with its own runner, set up before the
// clock starts) and prints the JSON line.
template <class Runner, class... Args>
int run_alone(const std::string& name, long items, int threads, Args... args) {
  const long per_thread = items / threads;
  std::vector<std::unique_ptr<Runner>> runners;
  for (int t = 0; t < threads; ++t) runners.push_back(std::make_unique<Runner>(args...));
  const long faults_before = minor_faults();
  const auto start = std::chrono::steady_clock::now();
  if (threads == 1) {
    for (long i = 0; i < per_thread; ++i) runners[0]->step();
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&runners, t, per_thread] {
        for (long i = 0; i < per_thread; ++i) runners[static_cast<std::size_t>(t)]->step();
      });
    for (std::thread& th : pool) th.join();
  }
  const auto stop = std::chrono::steady_clock::now();
  const long faults = minor_faults() - faults_before;
  std::uint64_t checksum = 0;
  for (auto& r : runners) checksum += r->checksum();
  runners.clear();
  const double done = static_cast<double>(per_thread * threads);
  const double ns = static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(stop - start).count());
  std::printf("{\"workload\": \"%s\", \"items\": %.0f, \"threads\": %d, \"ns_per_item\": %.3f, "
              "\"minor_faults_per_item\": %.6f, \"max_rss_kib\": %ld, \"checksum\": %llu}\n",
              name.c_str(), done, threads, ns / done, static_cast<double>(faults) / done,
              max_rss_kib(), static_cast<unsigned long long>(checksum));
  return 0;
}

struct Workload {
  std::string name;  // as registered, without Google Benchmark's suffixes
  std::function<void(const std::string& registered_name)> register_benchmark;
  std::function<int(long items)> alone;
};

std::vector<Workload>& workloads() {
  static std::vector<Workload> all;
  return all;
}

using Chunk = chunkpmr::ChunkProviderResource;
using Monotonic = std::pmr::monotonic_buffer_resource;
using UnsyncPool = std::pmr::unsynchronized_pool_resource;
using SyncPool = std::pmr::synchronized_pool_resource;
using BoostUnsyncPool = boost::container::pmr::unsynchronized_pool_resource;

template <class R, Placement P>
void add_request_workloads(const std::string& resource) {
  const std::string placement = P == Placement::stack ? "stack" : "new";
  const std::string suffix = "/" + resource + "/" + placement;
  workloads().push_back({"request" + suffix,
                         [](const std::string& n) {
                           benchmark::RegisterBenchmark(n.c_str(), [](benchmark::State& s) { run_benchmark<RequestRunner<R, P>>(s); });
                         },
                         [n = "request" + suffix](long items) {
                           return run_alone<RequestRunner<R, P>>(n, items, 1);
                         }});
  workloads().push_back({"request_2threads" + suffix,
                         [](const std::string& n) {
                           benchmark::RegisterBenchmark(n.c_str(), [](benchmark::State& s) { run_benchmark<RequestRunner<R, P>>(s); })
                               ->Threads(1)
                               ->Threads(2)
                               ->UseRealTime();
                         },
                         nullptr});
  for (int threads : {1, 2}) {
    // Alone: request_2threads/<resource>/<placement>/threads:<t>, items split over threads.
    const std::string n = "request_2threads" + suffix + "/threads:" + std::to_string(threads);
    workloads().push_back({n, nullptr, [n, threads](long items) {
                             return run_alone<RequestRunner<R, P>>(n, items, threads);
                           }});
  }
  workloads().push_back({"request_with_10k_live" + suffix,
                         [](const std::string& n) {
                           benchmark::RegisterBenchmark(n.c_str(), [](benchmark::State& s) { run_benchmark<LiveRunner<R, P>>(s); });
                         },
                         [n = "request_with_10k_live" + suffix](long items) {
                           return run_alone<LiveRunner<R, P>>(n, items, 1);
                         }});
}

// max_n: libstdc++'s synchronized_pool_resource takes a pthread key each
// (PTHREAD_KEYS_MAX is 1024, some already in use), so 1024 of them cannot exist at once.
template <class R, class Base>
void add_round_robin(const std::string& resource, int max_n = 1024) {
  for (int n : {1, 8, 9, 64, 1024}) {
    if (n > max_n) continue;
    const std::string name = "round_robin/" + resource + "/" + std::to_string(n);
    workloads().push_back({name,
                           [n](const std::string& reg) {
                             benchmark::RegisterBenchmark(reg.c_str(), [n](benchmark::State& s) {
                               run_benchmark<RoundRobinRunner<R, Base>>(s, n);
                             });
                           },
                           [name, n](long items) {
                             return run_alone<RoundRobinRunner<R, Base>>(name, items, 1, n);
                           }});
  }
}

void define_workloads() {
  add_request_workloads<Chunk, Placement::stack>("chunkpmr");
  add_request_workloads<Chunk, Placement::heap>("chunkpmr");
  add_request_workloads<Monotonic, Placement::stack>("std_monotonic");
  add_request_workloads<Monotonic, Placement::heap>("std_monotonic");
  add_request_workloads<UnsyncPool, Placement::stack>("std_unsync_pool");
  add_request_workloads<UnsyncPool, Placement::heap>("std_unsync_pool");
  add_round_robin<Chunk, std::pmr::memory_resource>("chunkpmr");
  add_round_robin<UnsyncPool, std::pmr::memory_resource>("std_unsync_pool");
  add_round_robin<SyncPool, std::pmr::memory_resource>("std_sync_pool", 64);
  add_round_robin<BoostUnsyncPool, boost::container::pmr::memory_resource>("boost_unsync_pool");
  add_round_robin<BumpBound<64 * 1024, 2>, std::pmr::memory_resource>("bump_bound_64k");
  add_round_robin<BumpBound<4096, 4>, std::pmr::memory_resource>("bump_bound_4k");
}

}  // namespace

int main(int argc, char** argv) {
  define_workloads();
  std::vector<std::string> names;
  std::vector<const Workload*> runnable;
  for (const Workload& w : workloads())
    if (w.alone) {
      names.push_back(w.name);
      runnable.push_back(&w);
    }
  if (const int status = bench_alone::run_alone_if_asked(
          argc, argv, names, [&runnable](std::size_t i, long items) { return runnable[i]->alone(items); });
      status >= 0) {
    return status;
  }
  for (const Workload& w : workloads())
    if (w.register_benchmark) w.register_benchmark(w.name);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
