// SPDX-License-Identifier: BSL-1.0
// Chunk-source benchmarks: what getting memory from upstream and giving it back costs
// (many small blocks then release(), a mixed batch of objects dropped at once, release()
// of a million blocks), and ports of four classic malloc benchmarks from mimalloc-bench
// (larson with sized frees, xmalloc-test with fixed and random sizes, mstress), written
// anew for a std::pmr::memory_resource. Every workload runs through a
// `std::pmr::memory_resource*` (peers.hpp), so every peer runs the same code; malloc
// peers are `new_delete` (glibc, or mimalloc / jemalloc under LD_PRELOAD).
//
//   small_written/<peer>      2,000,000 allocations of 8..64 bytes (a fixed pseudo-random
//   small_untouched/<peer>    sequence), each block memset (written) or not (untouched),
//                             then release() (a free per block for new_delete); repeated.
//                             Item: one allocation (its share of the release included).
//   mixed_release_cycle/<p>   one cycle: 1,000 std::uint64_t objects, 1,000 32-byte blocks
//                             and 1,000 std::pmr::strings of 20..24 chars in a
//                             std::pmr::vector, interleaved; then one release() (chunkpmr,
//                             std_monotonic: the objects are never destroyed) or a free per
//                             object (new_delete, std_unsync_pool). Item: one cycle.
//   release_million/<peer>    1,000,000 allocations of 16..63 bytes (not timed), then
//                             release() (timed). Item: one release().
//   larson_sized/<peer>       2 server lanes, each with 5,000 live blocks of 10..1000 bytes
//                             allocated by the main thread and shuffled; a server replaces a
//                             random block (sized free, allocate, write) per step and, after
//                             100,000 steps, hands its array to a new thread (larson's
//                             thread succession: blocks pass from thread to thread).
//                             Item: one block replaced.
//   xmalloc_fixed/<peer>      xmalloc-test: one thread allocates objects (64 bytes, or 8..512
//   xmalloc_random/<peer>     bytes at random) in batches of 1,024, writes up to 128 bytes of
//                             each, and hands the batches to a second thread through a ring of
//                             32 batches; the second thread frees them (sized). Both yield
//                             when the ring is empty or full. Item: one object.
//   mstress/<peer>            mstress-like, 2 threads: per step a temporary (freed at once,
//                             every other step), a short-lived block replacing one of 2,048
//                             (16..1024 bytes; 1 in 100 up to 16 KiB), 1 in 16 steps a
//                             long-lived block of 256..4096 bytes replacing one of 512, and
//                             1 in 4 steps a block swapped into one of 1,024 slots shared by
//                             both threads (so the other thread frees it). Blocks carry their
//                             size, which is checked on free. Item: one step.
//
// Peers: small_* chunkpmr, std_monotonic, boost_monotonic, new_delete; mixed_release_cycle
// chunkpmr, std_monotonic, new_delete, std_unsync_pool; release_million chunkpmr,
// std_monotonic, boost_monotonic; larson_sized, xmalloc_*, mstress chunkpmr (one shared
// resource), new_delete, std_sync_pool, boost_sync_pool, tbb_scalable.
//
// Google Benchmark mode: each benchmark reports items/s (manual time: the timed part only),
// peak_rss_MiB (the process's VmHWM, reset through /proc/self/clear_refs when the benchmark
// starts; earlier benchmarks may leave memory resident), minor faults per item, and
// chunkpmr_peak_held_MiB (stats().peak_bytes_held) or upstream_peak_MiB.
// Fresh-process mode (bench/chunk_source_alone.sh): `bench_chunk_source --alone=<workload>
// --items=<n>` sets the workload up, runs n items, and prints one JSON line: ns per item
// (timed part), wall ns per item (release_million's untimed allocations included), minor
// page faults per item, the process's max RSS (getrusage), the malloc in use,
// chunkpmr's peak bytes held and, for release_million, the first item's ns (-1
// elsewhere). `--alone=list` prints the names.
#include "alone.hpp"
#include "peers.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <memory_resource>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <dlfcn.h>

namespace {

using chunkpmr::bench::has_upstream;
using chunkpmr::bench::Peer;
using chunkpmr::bench::peer_name;
using chunkpmr::bench::Subject;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A small, fast generator (splitmix64 steps); every workload seeds its own.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::uint32_t below(std::uint32_t n) { return static_cast<std::uint32_t>(next() % n); }

 private:
  std::uint64_t state_;
};

using bench_alone::max_rss_kib;
using bench_alone::minor_faults;

// VmHWM, reset to the current RSS by writing 5 to /proc/self/clear_refs (Linux >= 4.0);
// getrusage's figure cannot be reset, and exited threads fold theirs into it.
void reset_peak_rss() {
  std::ofstream("/proc/self/clear_refs") << "5";
}

long peak_rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

// The malloc behind new_delete_resource: mimalloc and jemalloc come in by LD_PRELOAD.
const char* malloc_name() {
  if (dlsym(RTLD_DEFAULT, "mi_version") != nullptr) return "mimalloc";
  if (dlsym(RTLD_DEFAULT, "mallctl") != nullptr) return "jemalloc";
  return "glibc";
}

// ---------------------------------------------------------------------------------
// A workload set up on one resource. run(items) does `items` items and returns the
// seconds of its timed part (the whole call, except for release_million).

class Runner {
 public:
  explicit Runner(Peer peer) : subject_(peer) {}
  virtual ~Runner() = default;
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  virtual double run(long items) = 0;
  virtual int threads() const { return 1; }
  // Seconds of the first item's timed part, where a workload records it; else -1.
  virtual double first_item_seconds() const { return -1; }
  std::uint64_t checksum() const { return checksum_.load(std::memory_order_relaxed); }
  Subject& subject() { return subject_; }

  // chunkpmr's stats().peak_bytes_held; -1 for other resources.
  long long chunkpmr_peak_bytes_held() {
    auto* c = dynamic_cast<chunkpmr::ChunkProviderResource*>(subject_.get());
    return c ? static_cast<long long>(c->stats().peak_bytes_held) : -1;
  }
  // Peak bytes the resource held from its (tracking) upstream; -1 for malloc-like peers.
  long long upstream_peak_bytes() const {
    return has_upstream(subject_.peer()) ? static_cast<long long>(subject_.upstream().peak_bytes()) : -1;
  }

 protected:
  std::pmr::memory_resource* r() { return subject_.get(); }
  void add(std::uint64_t v) { checksum_.fetch_add(v, std::memory_order_relaxed); }

 private:
  Subject subject_;
  std::atomic<std::uint64_t> checksum_{0};
};

// ---------------------------------------------------------------------------------
// 1. Small blocks, then release().

constexpr long kSmallRound = 2000000;

const std::vector<std::uint8_t>& small_sizes() {
  static const std::vector<std::uint8_t> sizes = [] {
    std::vector<std::uint8_t> s(kSmallRound);
    Rng rng(12345);
    for (auto& b : s) b = static_cast<std::uint8_t>(8 + rng.below(57));  // 8..64
    return s;
  }();
  return sizes;
}

class SmallRunner : public Runner {
 public:
  SmallRunner(Peer peer, bool write) : Runner(peer), write_(write), sizes_(small_sizes()) {
    if (!has_upstream(peer)) blocks_.assign(kSmallRound, nullptr);  // malloc-like: free each
  }
  double run(long items) override {
    const auto start = Clock::now();
    for (long done = 0; done < items;) {
      const long n = std::min(items - done, kSmallRound);
      round(n);
      done += n;
    }
    return seconds_since(start);
  }

 private:
  void round(long n) {
    std::pmr::memory_resource* res = r();
    std::uintptr_t sum = 0;
    const bool keep = !blocks_.empty();
    for (long i = 0; i < n; ++i) {
      const std::size_t bytes = sizes_[static_cast<std::size_t>(i)];
      void* p = res->allocate(bytes, 8);
      if (write_) std::memset(p, static_cast<int>(i & 0xff), bytes);
      if (keep) blocks_[static_cast<std::size_t>(i)] = p;
      sum += reinterpret_cast<std::uintptr_t>(p);
    }
    if (keep) {
      for (long i = 0; i < n; ++i)
        res->deallocate(blocks_[static_cast<std::size_t>(i)], sizes_[static_cast<std::size_t>(i)], 8);
    } else {
      subject().release();
    }
    add(sum);
  }

  bool write_;
  const std::vector<std::uint8_t>& sizes_;
  std::vector<void*> blocks_;
};

// ---------------------------------------------------------------------------------
// 2. A mixed batch of objects, then one release() or a free per object.

class MixedRunner : public Runner {
 public:
  static constexpr int kEach = 1000;
  using Strings = std::pmr::vector<std::pmr::string>;

  MixedRunner(Peer peer, bool use_release)
      : Runner(peer), use_release_(use_release), ints_(kEach), blocks_(kEach) {}
  double run(long items) override {
    const auto start = Clock::now();
    for (long c = 0; c < items; ++c) cycle();
    return seconds_since(start);
  }

 private:
  void cycle() {
    std::pmr::memory_resource* res = r();
    std::pmr::polymorphic_allocator<> alloc(res);
    // Placement-new'ed: with release() the vector is never destroyed (its memory and its
    // strings' go with the release, as in an arena).
    Strings* strings = ::new (static_cast<void*>(storage_)) Strings(res);
    for (int i = 0; i < kEach; ++i) {
      ints_[static_cast<std::size_t>(i)] = alloc.new_object<std::uint64_t>(static_cast<std::uint64_t>(i));
      void* b = res->allocate(32, 8);
      std::memset(b, i & 0xff, 32);
      blocks_[static_cast<std::size_t>(i)] = b;
      strings->emplace_back(static_cast<std::size_t>(20 + i % 5), static_cast<char>('a' + i % 26));
    }
    add(strings->back().size() + *ints_[kEach - 1] + static_cast<unsigned char>(*static_cast<char*>(blocks_[7])));
    if (use_release_) {
      subject().release();
      return;
    }
    for (int i = 0; i < kEach; ++i) {
      alloc.delete_object(ints_[static_cast<std::size_t>(i)]);
      res->deallocate(blocks_[static_cast<std::size_t>(i)], 32, 8);
    }
    strings->~Strings();
  }

  bool use_release_;
  std::vector<std::uint64_t*> ints_;
  std::vector<void*> blocks_;
  alignas(Strings) unsigned char storage_[sizeof(Strings)];
};

// ---------------------------------------------------------------------------------
// 3. release() of a million blocks; only the release is timed.

class ReleaseMillionRunner : public Runner {
 public:
  static constexpr int kBlocks = 1000000;
  explicit ReleaseMillionRunner(Peer peer) : Runner(peer), sizes_(kBlocks) {
    Rng rng(777);
    for (auto& s : sizes_) s = static_cast<std::uint8_t>(16 + rng.below(48));  // 16..63
  }
  double run(long items) override {
    double timed = 0;
    std::pmr::memory_resource* res = r();
    for (long item = 0; item < items; ++item) {
      std::uintptr_t sum = 0;
      for (std::uint8_t bytes : sizes_) sum += reinterpret_cast<std::uintptr_t>(res->allocate(bytes, 8));
      add(sum);
      const auto start = Clock::now();
      subject().release();
      const double seconds = seconds_since(start);
      if (item == 0) first_ = seconds;  // in a fresh process: what upstream returns first
      timed += seconds;
    }
    return timed;
  }
  double first_item_seconds() const override { return first_; }

 private:
  std::vector<std::uint8_t> sizes_;
  double first_ = -1;
};

// ---------------------------------------------------------------------------------
// 4a. larson with sized frees.

class LarsonRunner : public Runner {
 public:
  static constexpr int kLanes = 2;
  static constexpr std::uint32_t kSlots = 5000;   // live blocks per lane
  static constexpr long kGeneration = 100000;     // steps before a lane's thread is replaced

  explicit LarsonRunner(Peer peer) : Runner(peer) {
    // Warm-up on this thread: every block is first allocated here, then the blocks are
    // shuffled over both lanes, so the servers free blocks of another thread from the start.
    Rng rng(4141);
    std::vector<Slot> all(kLanes * kSlots);
    for (Slot& s : all) {
      s.bytes = next_size(rng);
      s.p = r()->allocate(s.bytes, 8);
      std::memset(s.p, 1, 2);
    }
    for (std::size_t i = all.size() - 1; i > 0; --i) std::swap(all[i], all[rng.below(static_cast<std::uint32_t>(i + 1))]);
    for (int l = 0; l < kLanes; ++l) {
      lanes_[l].slots.assign(all.begin() + l * kSlots, all.begin() + (l + 1) * kSlots);
      lanes_[l].rng = Rng(1000 + static_cast<std::uint64_t>(l));
    }
  }
  ~LarsonRunner() override {
    for (Lane& lane : lanes_)
      for (Slot& s : lane.slots) r()->deallocate(s.p, s.bytes, 8);
  }
  int threads() const override { return kLanes; }

  double run(long items) override {
    const auto start = Clock::now();
    std::thread coordinators[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      const long share = items / kLanes + (l == 0 ? items % kLanes : 0);
      coordinators[l] = std::thread([this, l, share] {
        // Each generation is a new server thread, taking over the blocks of the last one.
        for (long left = share; left > 0;) {
          const long steps = std::min(left, kGeneration);
          std::thread server([this, l, steps] { serve(lanes_[l], steps); });
          server.join();
          left -= steps;
        }
      });
    }
    for (std::thread& c : coordinators) c.join();
    return seconds_since(start);
  }

 private:
  struct Slot {
    void* p = nullptr;
    std::size_t bytes = 0;
  };
  struct Lane {
    std::vector<Slot> slots;
    Rng rng{0};
  };

  static std::size_t next_size(Rng& rng) { return 10 + rng.below(991); }  // 10..1000

  void serve(Lane& lane, long steps) {
    std::pmr::memory_resource* res = r();
    Rng rng = lane.rng;
    std::uint64_t sum = 0;
    for (long s = 0; s < steps; ++s) {
      Slot& slot = lane.slots[rng.below(kSlots)];
      res->deallocate(slot.p, slot.bytes, 8);
      slot.bytes = next_size(rng);
      slot.p = res->allocate(slot.bytes, 8);
      volatile char* c = static_cast<char*>(slot.p);
      c[0] = 'a';
      c[1] = 'b';
      sum += static_cast<unsigned char>(c[0]);
    }
    lane.rng = rng;
    add(sum);
  }

  Lane lanes_[kLanes];
};

// ---------------------------------------------------------------------------------
// 4b. xmalloc-test: one thread allocates, the other frees.

class XmallocRunner : public Runner {
 public:
  static constexpr int kBatch = 1024;
  static constexpr std::size_t kRing = 32;

  XmallocRunner(Peer peer, bool random_sizes)
      : Runner(peer), random_(random_sizes), ring_(std::make_unique<Batch[]>(kRing)) {}
  int threads() const override { return 2; }

  double run(long items) override {
    const long batches = (items + kBatch - 1) / kBatch;
    const auto start = Clock::now();
    std::thread releaser([this, batches] { release_batches(batches); });
    allocate_batches(items, batches);
    releaser.join();
    return seconds_since(start);
  }

 private:
  struct Object {
    void* p;
    std::size_t bytes;
  };
  struct Batch {
    int count = 0;
    Object objects[kBatch];
  };

  // Producer (this thread). The releaser's index is re-read only when the ring looks full.
  void allocate_batches(long items, long batches) {
    std::pmr::memory_resource* res = r();
    std::size_t head = head_.load(std::memory_order_relaxed);
    std::size_t tail_seen = tail_.load(std::memory_order_acquire);
    for (long b = 0; b < batches; ++b) {
      while (head - tail_seen == kRing) {
        tail_seen = tail_.load(std::memory_order_acquire);
        if (head - tail_seen == kRing) std::this_thread::yield();
      }
      Batch& batch = ring_[head % kRing];
      batch.count = static_cast<int>(std::min<long>(kBatch, items - b * kBatch));
      for (int i = 0; i < batch.count; ++i) {
        const std::size_t bytes = random_ ? 8 + rng_.below(505) : 64;  // 8..512 or 64
        void* p = res->allocate(bytes, 8);
        std::memset(p, i & 0xff, std::min<std::size_t>(bytes, 128));
        batch.objects[i] = Object{p, bytes};
      }
      head_.store(++head, std::memory_order_release);
    }
  }

  // Consumer (its own thread); the producer's index is re-read only when the ring looks empty.
  void release_batches(long batches) {
    std::pmr::memory_resource* res = r();
    std::size_t tail = tail_.load(std::memory_order_relaxed);
    std::size_t head_seen = head_.load(std::memory_order_acquire);
    std::uint64_t freed = 0;
    for (long b = 0; b < batches; ++b) {
      while (tail == head_seen) {
        head_seen = head_.load(std::memory_order_acquire);
        if (tail == head_seen) std::this_thread::yield();
      }
      Batch& batch = ring_[tail % kRing];
      for (int i = 0; i < batch.count; ++i) res->deallocate(batch.objects[i].p, batch.objects[i].bytes, 8);
      freed += static_cast<std::uint64_t>(batch.count);
      tail_.store(++tail, std::memory_order_release);
    }
    add(freed);
  }

  bool random_;
  Rng rng_{99};
  std::unique_ptr<Batch[]> ring_;
  alignas(64) std::atomic<std::size_t> head_{0};  // batches published
  alignas(64) std::atomic<std::size_t> tail_{0};  // batches freed
};

// ---------------------------------------------------------------------------------
// 4c. mstress-like: varied sizes and lifetimes, some blocks moving between threads.

class MstressRunner : public Runner {
 public:
  static constexpr int kThreads = 2;
  static constexpr std::uint32_t kLocal = 2048;
  static constexpr std::uint32_t kRetained = 512;
  static constexpr std::uint32_t kTransfer = 1024;
  static constexpr std::uint64_t kCookie = 0x5bd1e9955bd1e995ull;

  explicit MstressRunner(Peer peer) : Runner(peer), transfer_(std::make_unique<std::atomic<void*>[]>(kTransfer)) {
    for (std::uint32_t i = 0; i < kTransfer; ++i) transfer_[i].store(nullptr, std::memory_order_relaxed);
    for (int t = 0; t < kThreads; ++t) {
      workers_[t].local.assign(kLocal, nullptr);
      workers_[t].retained.assign(kRetained, nullptr);
      workers_[t].rng = Rng(31 + static_cast<std::uint64_t>(t));
    }
  }
  ~MstressRunner() override {
    for (Worker& w : workers_) {
      for (void* p : w.local) drop(p);
      for (void* p : w.retained) drop(p);
    }
    for (std::uint32_t i = 0; i < kTransfer; ++i) drop(transfer_[i].load(std::memory_order_relaxed));
  }
  int threads() const override { return kThreads; }

  double run(long items) override {
    const auto start = Clock::now();
    std::thread others[kThreads - 1];
    for (int t = 1; t < kThreads; ++t)
      others[t - 1] = std::thread([this, t, items] { work(workers_[t], items / kThreads); });
    work(workers_[0], items / kThreads + items % kThreads);
    for (std::thread& th : others) th.join();
    return seconds_since(start);
  }

 private:
  struct Worker {
    std::vector<void*> local;     // short-lived blocks
    std::vector<void*> retained;  // long-lived blocks
    Rng rng{0};
  };

  // Every block starts with its size and ends with the size xor a cookie (at least 16 B).
  void* make(std::size_t bytes) {
    auto* p = static_cast<unsigned char*>(r()->allocate(bytes, 8));
    std::memcpy(p, &bytes, sizeof bytes);
    const std::uint64_t tail = bytes ^ kCookie;
    std::memcpy(p + bytes - sizeof tail, &tail, sizeof tail);
    return p;
  }
  void drop(void* block) {
    if (block == nullptr) return;
    auto* p = static_cast<unsigned char*>(block);
    std::size_t bytes;
    std::memcpy(&bytes, p, sizeof bytes);
    std::uint64_t tail;
    std::memcpy(&tail, p + bytes - sizeof tail, sizeof tail);
    if ((tail ^ kCookie) != bytes) {
      std::fprintf(stderr, "mstress: corrupted block %p\n", block);
      std::abort();
    }
    r()->deallocate(p, bytes, 8);
  }
  static std::size_t short_size(Rng& rng) {
    std::size_t bytes = 16 + rng.below(1009);  // 16..1024
    if (rng.below(100) == 0) bytes *= 16;      // now and then up to 16 KiB
    return bytes;
  }

  void work(Worker& w, long steps) {
    Rng rng = w.rng;
    for (long s = 0; s < steps; ++s) {
      if (rng.below(2) == 0) drop(make(short_size(rng)));  // a temporary
      void*& slot = w.local[rng.below(kLocal)];
      drop(slot);
      slot = make(short_size(rng));
      if (rng.below(16) == 0) {
        void*& keep = w.retained[rng.below(kRetained)];
        drop(keep);
        keep = make(256 + rng.below(3841));  // 256..4096
      }
      if (rng.below(4) == 0) {
        void*& mine = w.local[rng.below(kLocal)];
        mine = transfer_[rng.below(kTransfer)].exchange(mine, std::memory_order_acq_rel);
      }
    }
    w.rng = rng;
    add(static_cast<std::uint64_t>(steps));
  }

  std::unique_ptr<std::atomic<void*>[]> transfer_;
  Worker workers_[kThreads];
};

// ---------------------------------------------------------------------------------
// The workloads, Google Benchmark, and the fresh-process mode.

struct Workload {
  std::string name;  // workload/peer
  std::function<std::unique_ptr<Runner>()> make;
  long batch;       // items per Google Benchmark iteration
  long iterations;  // fixed iteration count (0: Google Benchmark decides)
};

std::vector<Workload>& workloads() {
  static std::vector<Workload> all;
  return all;
}

void define_workloads() {
  auto add = [](const std::string& workload, Peer p, long batch, long iterations,
                std::function<std::unique_ptr<Runner>()> make) {
    workloads().push_back({workload + "/" + peer_name(p), std::move(make), batch, iterations});
  };
  for (Peer p : {Peer::chunkpmr, Peer::std_monotonic, Peer::boost_monotonic, Peer::new_delete}) {
    add("small_written", p, kSmallRound, 0, [p] { return std::make_unique<SmallRunner>(p, true); });
    add("small_untouched", p, kSmallRound, 0, [p] { return std::make_unique<SmallRunner>(p, false); });
  }
  for (auto [p, use_release] : {std::pair{Peer::chunkpmr, true}, std::pair{Peer::std_monotonic, true},
                                std::pair{Peer::new_delete, false}, std::pair{Peer::std_unsync_pool, false}}) {
    add("mixed_release_cycle", p, 1, 0, [p, use_release] { return std::make_unique<MixedRunner>(p, use_release); });
  }
  for (Peer p : {Peer::chunkpmr, Peer::std_monotonic, Peer::boost_monotonic})
    add("release_million", p, 1, 5, [p] { return std::make_unique<ReleaseMillionRunner>(p); });
  constexpr long kClassicBatch = 200000;
  for (Peer p : {Peer::chunkpmr, Peer::new_delete, Peer::std_sync_pool, Peer::boost_sync_pool,
                 Peer::tbb_scalable}) {
    add("larson_sized", p, kClassicBatch, 0, [p] { return std::make_unique<LarsonRunner>(p); });
    add("xmalloc_fixed", p, kClassicBatch, 0, [p] { return std::make_unique<XmallocRunner>(p, false); });
    add("xmalloc_random", p, kClassicBatch, 0, [p] { return std::make_unique<XmallocRunner>(p, true); });
    add("mstress", p, kClassicBatch, 0, [p] { return std::make_unique<MstressRunner>(p); });
  }
}

void run_benchmark(benchmark::State& state, const Workload* w) {
  reset_peak_rss();
  std::unique_ptr<Runner> runner = w->make();
  const long faults_before = minor_faults();
  for (auto _ : state) state.SetIterationTime(runner->run(w->batch));
  const double items = static_cast<double>(state.iterations()) * static_cast<double>(w->batch);
  state.SetItemsProcessed(static_cast<std::int64_t>(items));
  state.counters["faults_per_item"] = static_cast<double>(minor_faults() - faults_before) / items;
  state.counters["peak_rss_MiB"] = static_cast<double>(peak_rss_kib()) / 1024.0;
  if (const long long held = runner->chunkpmr_peak_bytes_held(); held >= 0)
    state.counters["chunkpmr_peak_held_MiB"] = static_cast<double>(held) / (1024.0 * 1024.0);
  else if (const long long up = runner->upstream_peak_bytes(); up >= 0)
    state.counters["upstream_peak_MiB"] = static_cast<double>(up) / (1024.0 * 1024.0);
  benchmark::DoNotOptimize(runner->checksum());
}

int run_alone(const Workload& w, long items) {
  std::unique_ptr<Runner> runner = w.make();
  const long faults_before = minor_faults();
  const auto start = Clock::now();
  const double timed = runner->run(items);
  const double wall = seconds_since(start);
  const long faults = minor_faults() - faults_before;
  const long long held = runner->chunkpmr_peak_bytes_held();
  const long long upstream = runner->upstream_peak_bytes();
  const int threads = runner->threads();
  const std::uint64_t checksum = runner->checksum();
  const double first = runner->first_item_seconds();
  runner.reset();
  const double n = static_cast<double>(items);
  const std::string_view name = w.name;
  std::printf("{\"workload\": \"%s\", \"bench\": \"%.*s\", \"peer\": \"%.*s\", \"malloc\": \"%s\", "
              "\"items\": %ld, \"threads\": %d, \"ns_per_item\": %.3f, \"wall_ns_per_item\": %.3f, "
              "\"minor_faults_per_item\": %.6f, \"max_rss_kib\": %ld, \"peak_bytes_held\": %lld, "
              "\"upstream_peak_bytes\": %lld, \"first_item_ns\": %.3f, \"checksum\": %llu}\n",
              w.name.c_str(), static_cast<int>(name.find('/')), name.data(),
              static_cast<int>(name.size() - name.find('/') - 1), name.data() + name.find('/') + 1,
              malloc_name(), items, threads, timed * 1e9 / n, wall * 1e9 / n,
              static_cast<double>(faults) / n, max_rss_kib(), held, upstream,
              first < 0 ? -1.0 : first * 1e9, static_cast<unsigned long long>(checksum));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  define_workloads();
  std::vector<std::string> names;
  for (const Workload& w : workloads()) names.push_back(w.name);
  if (const int status = bench_alone::run_alone_if_asked(
          argc, argv, names, [](std::size_t i, long items) { return run_alone(workloads()[i], items); });
      status >= 0) {
    return status;
  }
  for (const Workload& w : workloads()) {
    benchmark::internal::Benchmark* b =
        benchmark::RegisterBenchmark(w.name.c_str(), run_benchmark, &w)->UseManualTime();
    if (w.iterations > 0) b->Iterations(w.iterations);
    if (w.name.rfind("release_million/", 0) == 0) b->Unit(benchmark::kMicrosecond);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
