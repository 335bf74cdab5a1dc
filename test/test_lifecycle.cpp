// SPDX-License-Identifier: BSL-1.0
// Pins the lifecycle edges of ChunkProviderResource, through its public interface only:
// fork() while other threads create, use and destroy resources; an upstream that itself
// allocates from another chunkpmr resource (re-entrancy through every path: allocate,
// free, destructor, release(), trim(), thread exit, allocation after the exit hook);
// thousands of short-lived threads; many live resources used by several threads; resources
// destroyed while their threads exit; tens of thousands of resource lifetimes on
// long-lived threads; late allocations racing stats(); and dlclose() of a module holding
// chunkpmr while a thread that used it still runs.
//
// Every case runs in a forked child under an alarm() watchdog: a deadlock or a crash
// fails that case (the parent reports how the child ended and the last step it reached)
// instead of hanging the suite or taking the other cases down with it.
// CHUNKPMR_WATCHDOG_SCALE multiplies every watchdog, for slow tools (default 1, or 20
// under valgrind).
#define BOOST_TEST_MODULE lifecycle
#include <boost/test/unit_test.hpp>

#include <chunkpmr/chunk_provider_resource.hpp>

#include "test_support.hpp"

#ifdef CHUNKPMR_DL_MODULE_PATH
#include "dl_module.hpp"

#include <dlfcn.h>
#endif

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <iostream>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

using chunkpmr::ChunkProviderResource;
using chunkpmr::ResourceOptions;
using chunkpmr::test::check_pattern;
using chunkpmr::test::CountingResource;
using chunkpmr::test::fill_pattern;
using chunkpmr::test::kChunk64K;
using Clock = std::chrono::steady_clock;

#if defined(__SANITIZE_ADDRESS__)
#define LIFECYCLE_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define LIFECYCLE_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LIFECYCLE_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define LIFECYCLE_TSAN 1
#endif
#endif
#ifndef LIFECYCLE_ASAN
#define LIFECYCLE_ASAN 0
#endif
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define LIFECYCLE_ON_VALGRIND() (RUNNING_ON_VALGRIND != 0)
#else
#define LIFECYCLE_ON_VALGRIND() false
#endif
#ifndef LIFECYCLE_TSAN
#define LIFECYCLE_TSAN 0
#endif

namespace {

// ---------------------------------------------------------------------------------------
// Forked children with a watchdog, and what they report.

unsigned watchdog_seconds(unsigned base) {
  double scale = LIFECYCLE_ON_VALGRIND() ? 20.0 : 1.0;  // valgrind is 20-50 times slower
  if (const char* env = std::getenv("CHUNKPMR_WATCHDOG_SCALE")) scale = std::atof(env);
  if (!(scale > 0.0)) scale = 1.0;
  return std::max(1u, static_cast<unsigned>(base * scale + 0.5));
}

int g_report_fd = -1;  // in a child: the pipe its parent reads; elsewhere stderr is used
std::atomic<int> g_child_failures{0};

void report_raw(const char* text, std::size_t n) {
  const int fd = g_report_fd >= 0 ? g_report_fd : STDERR_FILENO;
  while (n > 0) {
    const ssize_t w = ::write(fd, text, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    text += w;
    n -= static_cast<std::size_t>(w);
  }
}

__attribute__((format(printf, 1, 2))) void reportf(const char* format, ...) {
  char buffer[1024];
  va_list args;
  va_start(args, format);
  const int n = std::vsnprintf(buffer, sizeof buffer, format, args);
  va_end(args);
  if (n > 0) report_raw(buffer, std::min(static_cast<std::size_t>(n), sizeof buffer - 1));
}

// The step a child has reached: on a timeout the parent shows the last one.
void step(const char* what) { reportf("step: %s\n", what); }

// Checks made on a child's main thread (and, being a write(2) and an atomic, safe on any
// thread of the child); workers use WORKER_CHECK.
#define CHILD_CHECK(cond)                                                            \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      g_child_failures.fetch_add(1);                                                 \
      reportf("%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
    }                                                                                \
  } while (0)
#define CHILD_CHECK_OP(a, op, b)                                                     \
  do {                                                                               \
    const auto lhs_ = (a);                                                           \
    const auto rhs_ = (b);                                                           \
    if (!(lhs_ op rhs_)) {                                                           \
      g_child_failures.fetch_add(1);                                                 \
      reportf("%s:%d: check failed: %s %s %s [%llu %s %llu]\n", __FILE__, __LINE__, #a, \
              #op, #b, static_cast<unsigned long long>(lhs_), #op,                   \
              static_cast<unsigned long long>(rhs_));                                \
    }                                                                                \
  } while (0)

void enter_thread();

struct Child {
  std::string name;
  unsigned seconds = 0;
  pid_t pid = -1;
  int fd = -1;
  std::string report;
  int status = 0;
  bool reaped = false;
  bool killed_by_parent = false;
};

// In a fresh child: Boost.Test's signal handlers would turn a crash or the alarm into a
// test report and carry on with the rest of the suite inside the child; restore the
// default actions so that they end the child, and arm the watchdog.
void become_child(int report_fd, unsigned seconds) {
  for (int sig : {SIGALRM, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS})
    std::signal(sig, SIG_DFL);
  g_report_fd = report_fd;
  g_child_failures.store(0);
  chunkpmr::test::worker_failures.store(0);
  enter_thread();
  alarm(seconds);
}

Child start_child(std::string name, unsigned base_seconds, const std::function<void()>& body) {
  Child child;
  child.name = std::move(name);
  child.seconds = watchdog_seconds(base_seconds);
  std::fflush(nullptr);  // nothing buffered may be written twice
  std::cout.flush();
  std::cerr.flush();
  std::clog.flush();
  int fds[2];
  BOOST_REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    become_child(fds[1], child.seconds);
    int code = 0;
    try {
      body();
    } catch (const std::exception& e) {
      reportf("uncaught exception: %s\n", e.what());
      code = 1;
    } catch (...) {
      reportf("uncaught exception of unknown type\n");
      code = 1;
    }
    if (const int n = chunkpmr::test::worker_failures.load(); n != 0) {
      reportf("%d worker-side checks failed\n", n);
      code = 1;
    }
    if (g_child_failures.load() != 0) code = 1;
    // exit(), not _exit(): static and thread_local destructors (the log resources, the
    // static resource) and the sanitizers' exit-time checks run as in a real program.
    std::exit(code);
  }
  close(fds[1]);
  fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
  child.pid = pid;
  child.fd = fds[0];
  return child;
}

void drain(Child& c) {
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(c.fd, buffer, sizeof buffer);
    if (n > 0) {
      c.report.append(buffer, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      if (n == 0) {
        close(c.fd);
        c.fd = -1;
      }
      return;  // EOF, or nothing more for now
    }
  }
}

// Waits for every child; a child still there well past its own alarm is killed.
void wait_children(std::vector<Child>& children) {
  unsigned longest = 0;
  for (const Child& c : children) longest = std::max(longest, c.seconds);
  const auto deadline = Clock::now() + std::chrono::seconds(longest + 15);
  for (;;) {
    std::vector<pollfd> fds;
    for (const Child& c : children)
      if (c.fd >= 0) fds.push_back(pollfd{c.fd, POLLIN, 0});
    if (!fds.empty()) {
      poll(fds.data(), fds.size(), 50);
    } else {
      usleep(20000);
    }
    bool all_reaped = true;
    for (Child& c : children) {
      if (c.fd >= 0) drain(c);
      if (!c.reaped) {
        if (waitpid(c.pid, &c.status, WNOHANG) == c.pid) {
          c.reaped = true;
        } else if (Clock::now() > deadline) {
          kill(c.pid, SIGKILL);
          waitpid(c.pid, &c.status, 0);
          c.reaped = true;
          c.killed_by_parent = true;
        }
      }
      if (c.reaped && c.fd >= 0) {  // what is left in the pipe, then stop reading
        drain(c);
        if (c.fd >= 0) close(c.fd);
        c.fd = -1;
      }
      all_reaped = all_reaped && c.reaped;
    }
    if (all_reaped) return;
  }
}

std::string describe_status(int status, unsigned seconds, bool killed_by_parent) {
  std::string text;
  if (WIFEXITED(status)) {
    const int code = WEXITSTATUS(status);
    text = "exited with status " + std::to_string(code);
    if (code == 1) text += " (a check failed, or a sanitizer reported an error: see above)";
    if (code == 66) text += " (ThreadSanitizer reported a problem: see its report above)";
  } else if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    text = "was killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
    if (sig == SIGALRM)
      text += ": its " + std::to_string(seconds) + " s watchdog fired (a deadlock or a hang)";
    if (killed_by_parent) text += ": it outlived its own watchdog and the parent killed it";
  } else {
    text = "ended with wait status " + std::to_string(status);
  }
  return text;
}

bool succeeded(const Child& c) { return WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0; }

void expect_success(const Child& c) {
  BOOST_CHECK_MESSAGE(succeeded(c), c.name << ": the child "
                                           << describe_status(c.status, c.seconds,
                                                              c.killed_by_parent)
                                           << "; its report:\n"
                                           << c.report);
  if (succeeded(c)) BOOST_TEST_MESSAGE(c.name << ": ok; its report:\n" << c.report);
}

// Runs each body in a child of its own, all at once, and checks that each exited with 0.
void run_isolated_each(const std::vector<std::pair<std::string, std::function<void()>>>& bodies,
                       unsigned base_seconds) {
  std::vector<Child> children;
  for (const auto& [name, body] : bodies) children.push_back(start_child(name, base_seconds, body));
  wait_children(children);
  for (const Child& c : children) expect_success(c);
}

void run_isolated(const std::string& name, unsigned base_seconds, const std::function<void()>& body) {
  run_isolated_each({{name, body}}, base_seconds);
}

// ---------------------------------------------------------------------------------------
// Blocks with verified payloads.

struct Block {
  void* p = nullptr;
  std::size_t bytes = 0;
  std::size_t alignment = 0;
  std::uintptr_t seed = 0;
};

Block make_block(std::pmr::memory_resource& r, std::size_t bytes, std::size_t alignment,
                 std::uintptr_t seed) {
  void* p = r.allocate(bytes, alignment);
  fill_pattern(p, bytes, seed);
  return Block{p, bytes, alignment, seed};
}

// Checks the payload, then frees the block; true if the payload was intact.
bool free_block(std::pmr::memory_resource& r, const Block& b) {
  const bool intact = check_pattern(b.p, b.bytes, b.seed);
  r.deallocate(b.p, b.bytes, b.alignment);
  return intact;
}

// A mix of requests by index: mostly small, some chunk-sized, one-shot chunks, a
// page-aligned one and an over-aligned pass-through.
Block mixed_block(std::pmr::memory_resource& r, std::uint32_t i, std::uintptr_t seed) {
  switch (i % 16) {
    case 10:
    case 11:
    case 12:
      return make_block(r, 1000 + (i * 131u) % 3000, 16, seed);
    case 13:
      return make_block(r, 20000 + (i * 7u) % 40000, 8, seed);  // above max_normal_alloc
    case 14:
      return make_block(r, 64 + i % 200, 4096, seed);
    case 15:
      return make_block(r, 100 + i % 100, 32768, seed);  // over-aligned: pass-through
    default:
      return make_block(r, 8 + (i * 37u) % 300, std::size_t{1} << (i % 4), seed);
  }
}

std::uintptr_t seed_of(std::uint64_t a, std::uint64_t b, std::uint64_t c = 0) {
  return static_cast<std::uintptr_t>((a << 40) ^ (b << 16) ^ c ^ 0x5bd1e995u);
}

// ---------------------------------------------------------------------------------------
// The log resources of the re-entrant upstream: a global one, and one per thread.

ChunkProviderResource g_log_resource;

// 0: this thread's log resource not built yet, 1: alive, 2: destroyed (the thread is
// tearing down). Trivially destructible, so valid for the whole life of the thread.
thread_local int t_log_state = 0;
struct ThreadLogResource {
  ChunkProviderResource resource;
  ThreadLogResource() { t_log_state = 1; }
  ~ThreadLogResource() { t_log_state = 2; }
};
// Block-scope thread_locals: built when first reached, not with every thread_local of
// this file at once.
ThreadLogResource& thread_log() {
  thread_local ThreadLogResource log;
  return log;
}

// Every thread of this file starts here: it builds its thread_local log resource (built
// only, not used: its first allocation happens inside an upstream call), so that it is
// destroyed with the thread's other thread_locals, last of them.
void enter_thread() { static_cast<void>(thread_log()); }

template <class F>
std::thread spawn(F f) {
  return std::thread([f = std::move(f)]() mutable {
    enter_thread();
    f();
  });
}

// An upstream straight from mmap(): nothing in it depends on the state malloc was in
// when a multi-threaded process forked. (The sanitizers' allocators in GCC 12 are not
// fork-safe: a child forked while another thread holds one of their locks can hang
// in malloc or free whatever chunkpmr does, so case 1's children keep clear of them.)
class MmapUpstream : public std::pmr::memory_resource {
 public:
  long outstanding_blocks() const { return outstanding_.load(); }

 protected:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    const std::size_t length = round_up(std::max<std::size_t>(bytes, 1), page);
    const std::size_t slack = alignment > page ? alignment : 0;
    void* map = mmap(nullptr, length + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) throw std::bad_alloc();
    const auto start = reinterpret_cast<std::uintptr_t>(map);
    const std::uintptr_t aligned = slack != 0 ? round_up(start, alignment) : start;
    if (aligned > start) munmap(map, aligned - start);
    if (const std::uintptr_t end = start + length + slack; end > aligned + length)
      munmap(reinterpret_cast<void*>(aligned + length), end - (aligned + length));
    outstanding_.fetch_add(1);
    return reinterpret_cast<void*>(aligned);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t) override {
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    munmap(p, round_up(std::max<std::size_t>(bytes, 1), page));
    outstanding_.fetch_sub(1);
  }
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

 private:
  static std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }
  std::atomic<long> outstanding_{0};
};

constexpr bool kSanitizerAllocator = LIFECYCLE_ASAN || LIFECYCLE_TSAN;

// A static resource that forked children use and that their exit() destroys.
MmapUpstream g_static_upstream;
ChunkProviderResource g_static_resource(&g_static_upstream);

#if LIFECYCLE_ASAN
// LeakSanitizer's exit-time check in a child forked from a multi-threaded process
// reports what only the (absent) other threads referred to; case 1's children skip it.
bool g_skip_leak_check = false;
extern "C" int __lsan_is_turned_off() { return g_skip_leak_check ? 1 : 0; }
#endif

enum class LogTo { global_resource, thread_local_resource };

// An upstream that forwards to a CountingResource and, on every allocate and deallocate,
// builds and destroys a log line (longer than the small-string buffer, so it allocates)
// on another ChunkProviderResource: the global log resource, or the calling thread's own
// one while it is alive (the global one once the thread's thread_locals are destroyed).
class LoggingUpstream : public std::pmr::memory_resource {
 public:
  LoggingUpstream(CountingResource& counting, LogTo to) : counting_(counting), to_(to) {}
  std::size_t events() const { return events_.load(); }

 protected:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    log("allocate", bytes, alignment);
    return counting_.allocate(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    counting_.deallocate(p, bytes, alignment);
    log("deallocate", bytes, alignment);
  }
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

 private:
  void log(const char* what, std::size_t bytes, std::size_t alignment) {
    std::pmr::memory_resource* target = &g_log_resource;
    if (to_ == LogTo::thread_local_resource && t_log_state == 1) target = &thread_log().resource;
    std::pmr::string line(target);
    line += "chunkpmr upstream ";
    line += what;
    char number[24];
    line += " bytes=";
    line.append(number, std::to_chars(number, number + sizeof number, bytes).ptr);
    line += " alignment=";
    line.append(number, std::to_chars(number, number + sizeof number, alignment).ptr);
    WORKER_CHECK(line.size() > 15 && line.starts_with("chunkpmr upstream "));
    events_.fetch_add(1);
  }

  CountingResource& counting_;
  LogTo to_;
  std::atomic<std::size_t> events_{0};
};

struct ReentrantSetup {
  CountingResource counting;
  LoggingUpstream upstream;
  explicit ReentrantSetup(LogTo to) : upstream(counting, to) {}
  // After the resource is gone: everything back upstream, through the logging path.
  void check_all_returned() const {
    CHILD_CHECK_OP(counting.outstanding_blocks(), ==, 0u);
    CHILD_CHECK_OP(counting.mismatched_deallocations(), ==, 0u);
    CHILD_CHECK_OP(upstream.events(), >, 0u);
  }
};

// Each re-entrancy scenario runs twice, at once: over the global log resource and over
// per-thread ones. Each takes well under a second, under TSan too: 10 s means a hang.
void run_with_both_log_resources(const std::string& what, void (*scenario)(LogTo)) {
  run_isolated_each({{what + " (global log resource)", [=] { scenario(LogTo::global_resource); }},
                     {what + " (thread_local log resource)",
                      [=] { scenario(LogTo::thread_local_resource); }}},
                    10);
}

// Touches the resource on the calling thread, so that this thread has an arena for it
// and (through the upstream call for its first chunk) for its log resource.
void warm_up(ChunkProviderResource& r) { CHILD_CHECK(free_block(r, make_block(r, 64, 8, 1))); }

// A hand-off of live blocks between threads.
struct Handoff {
  std::mutex mutex;
  std::vector<Block> blocks;
  void put(const Block& b) {
    std::lock_guard lock(mutex);
    blocks.push_back(b);
  }
  std::vector<Block> take_all() {
    std::lock_guard lock(mutex);
    return std::exchange(blocks, {});
  }
};

// A pthread key created by a thread after it first used a resource: keys' destructors
// run in creation order, so this one runs after chunkpmr's own exit hook, and allocates
// and frees there (keeping one block for the main thread to check and free).
struct LateUse {
  ChunkProviderResource* resource = nullptr;
  pthread_key_t key{};
  std::uintptr_t seed = 0;
  Block kept;
  bool ran = false;
  bool intact = false;
};

void late_key_destructor(void* p) {
  auto* use = static_cast<LateUse*>(p);
  ChunkProviderResource& r = *use->resource;
  const Block small = make_block(r, 100, 8, use->seed);
  const Block medium = make_block(r, 5000, 16, use->seed + 1);
  const Block oneshot = make_block(r, 30000, 8, use->seed + 2);
  bool intact = free_block(r, small);
  intact = free_block(r, oneshot) && intact;
  use->kept = medium;
  use->intact = intact;
  use->ran = true;
}

// In a thread: use the resource, then register the late key destructor.
void arm_late_use(LateUse& use) {
  WORKER_CHECK(free_block(*use.resource, make_block(*use.resource, 200, 8, use.seed + 3)));
  WORKER_CHECK(pthread_key_create(&use.key, &late_key_destructor) == 0);
  WORKER_CHECK(pthread_setspecific(use.key, &use) == 0);
}

// After joining the thread: what its late destructor left.
void check_late_use(LateUse& use) {
  CHILD_CHECK(use.ran);
  CHILD_CHECK(use.intact);
  if (use.ran) CHILD_CHECK(free_block(*use.resource, use.kept));
  pthread_key_delete(use.key);
}

// A thread_local container whose destructor allocates and frees (C++ thread_local
// teardown, before chunkpmr's exit hook).
thread_local std::pmr::memory_resource* t_container_resource = nullptr;
struct ThreadLocalContainer {
  std::pmr::vector<int> v{t_container_resource};
  ~ThreadLocalContainer() {
    v.assign(3000, 42);
    WORKER_CHECK(v.size() == 3000 && v.back() == 42);
    v.clear();
    v.shrink_to_fit();
  }
};
ThreadLocalContainer& thread_container() {
  thread_local ThreadLocalContainer container;
  return container;
}

}  // namespace

// =======================================================================================
// 1. fork() while other threads use, create and destroy resources.

namespace {

// A forked child of the busy process: its only thread uses the resources that existed at
// the fork (the shared one, the static one), a new one, and ends with exit(). It stays
// off malloc (fixed arrays, mmap upstreams) so that only chunkpmr's state can hang it.
// The first steps of a child forked inside a test body: a watchdog, the test process's
// report pipe closed (the parent's, not ours to hold), and under ASan no leak check
// (the vanished threads' memory would count). The child reports by its exit status.
void enter_forked_child() {
  alarm(watchdog_seconds(10));
  if (g_report_fd >= 0) close(g_report_fd);
  g_report_fd = -1;
#if LIFECYCLE_ASAN
  g_skip_leak_check = true;
#endif
}

[[noreturn]] void busy_parent_child(ChunkProviderResource& shared, int index) {
  enter_forked_child();
  bool ok = true;
  Block from_shared[40];
  for (std::uint32_t j = 0; j < 40; ++j)
    from_shared[j] = make_block(shared, 16 + j * 97 % 3000, j % 8 == 0 ? 32768 : 8, seed_of(index, j, 1));
  {
    MmapUpstream upstream;
    {
      ChunkProviderResource fresh(&upstream);
      Block blocks[60];
      for (std::uint32_t j = 0; j < 60; ++j) blocks[j] = mixed_block(fresh, j, seed_of(index, j, 2));
      for (std::uint32_t j = 0; j < 60; ++j)
        if (j % 6 != 0) ok = free_block(fresh, blocks[j]) && ok;  // the rest: the destructor's
    }
    ok = ok && upstream.outstanding_blocks() == 0;
  }
  for (std::uint32_t j = 0; j < 20; ++j) {
    const Block b = make_block(g_static_resource, 24 + j * 211 % 2000, 8, seed_of(index, j, 3));
    if (j % 5 == 0) continue;  // left for the static destructor, run by exit()
    ok = free_block(g_static_resource, b) && ok;
  }
  for (const Block& b : from_shared) ok = free_block(shared, b) && ok;
  if (!ok) reportf("forked child %d: a payload or the upstream count was wrong\n", index);
  std::exit(ok ? 0 : 1);
}

}  // namespace

BOOST_AUTO_TEST_CASE(fork_child_of_busy_parent_uses_resources_and_exits) {
  // The busy "parent" is itself a child of the test process, so that a hang in it is
  // caught too; it forks the 40 children and reports how each one ended.
  run_isolated("busy parent forking 40 children", 90, [] {
    MmapUpstream shared_upstream;
    ChunkProviderResource shared(&shared_upstream);
    // The main thread (the one that forks) has used the static resource.
    for (std::uint32_t j = 0; j < 10; ++j)
      CHILD_CHECK(free_block(g_static_resource, make_block(g_static_resource, 50 + j, 8, j)));
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> rounds[5] = {};
    std::vector<std::thread> background;
    // Only the short-lived threads of (a) use malloc (thread creation and exit do, and
    // so does their hand-off); the other background threads stay off it. Under a
    // sanitizer, whose allocator a fork can leave locked (see MmapUpstream), no fork
    // happens while (a) has a thread: it would hang a child whatever chunkpmr does.
    std::mutex sanitizer_fork_gate;
    std::atomic<bool> fork_waiting{false};
    // (a) short-lived threads that allocate from the shared resource and exit; one of
    // each pair frees what the other allocated.
    background.push_back(spawn([&] {
      for (std::uint64_t n = 0; !stop.load(); ++n) {
        while (kSanitizerAllocator && fork_waiting.load()) std::this_thread::yield();
        std::unique_lock gate(sanitizer_fork_gate, std::defer_lock);
        if (kSanitizerAllocator) gate.lock();
        Handoff handoff;
        std::thread producer = spawn([&, n] {
          for (std::uint32_t j = 0; j < 30; ++j) {
            const Block b = mixed_block(shared, j, seed_of(n, j, 4));
            if (j % 3 == 0) {
              handoff.put(b);
            } else {
              WORKER_CHECK(free_block(shared, b));
            }
          }
        });
        producer.join();
        std::thread consumer = spawn([&] {
          for (const Block& b : handoff.take_all()) WORKER_CHECK(free_block(shared, b));
        });
        consumer.join();
        rounds[0].fetch_add(1);
      }
    }));
    // (b) resources created, used and destroyed (with live blocks).
    background.push_back(spawn([&] {
      MmapUpstream upstream;
      for (std::uint64_t n = 0; !stop.load(); ++n) {
        ChunkProviderResource r(&upstream);
        for (std::uint32_t j = 0; j < 20; ++j) {
          const Block b = mixed_block(r, j, seed_of(n, j, 5));
          if (j % 4 != 0) WORKER_CHECK(free_block(r, b));
        }
        rounds[1].fetch_add(1);
      }
    }));
    // (c) stats() of the shared resource.
    background.push_back(spawn([&] {
      while (!stop.load()) {
        const chunkpmr::ResourceStats s = shared.stats();
        WORKER_CHECK(s.live_thread_arenas <= 8);
        rounds[2].fetch_add(1);
      }
    }));
    // (d) a long-lived thread allocating from and trimming the shared resource.
    background.push_back(spawn([&] {
      for (std::uint64_t n = 0; !stop.load(); ++n) {
        Block blocks[40];
        for (std::uint32_t j = 0; j < 40; ++j) blocks[j] = mixed_block(shared, j, seed_of(n, j, 6));
        for (const Block& b : blocks) WORKER_CHECK(free_block(shared, b));
        if (n % 8 == 0) shared.trim();
        rounds[3].fetch_add(1);
      }
    }));
    // (e) over-aligned blocks of the shared resource made and freed in a tight loop, so
    // that forks land inside those calls too (they take no lock).
    background.push_back(spawn([&] {
      for (std::uint64_t n = 0; !stop.load(); ++n) {
        const Block b = make_block(shared, 100 + n % 3000, std::size_t{32768} << (n % 3), seed_of(n, 0, 7));
        WORKER_CHECK(free_block(shared, b));
        rounds[4].fetch_add(1);
      }
    }));
    step("waiting for every background thread to be busy");
    for (auto& r : rounds)
      while (r.load() < 3) std::this_thread::yield();
    step("forking 40 children");
    std::vector<pid_t> children;
    children.reserve(40);
    for (int i = 0; i < 40; ++i) {
      std::unique_lock gate(sanitizer_fork_gate, std::defer_lock);
      if (kSanitizerAllocator) {
        fork_waiting.store(true);
        gate.lock();
        fork_waiting.store(false);
      }
      const pid_t pid = fork();
      if (pid == 0) busy_parent_child(shared, i);
      if (gate.owns_lock()) gate.unlock();
      CHILD_CHECK(pid > 0);
      if (pid > 0) children.push_back(pid);
      usleep(3000);
    }
    stop.store(true);
    step("joining the background threads");
    for (std::thread& t : background) t.join();
    step("waiting for the children (each has its own watchdog)");
    int failed = 0;
    for (std::size_t i = 0; i < children.size(); ++i) {
      int status = 0;
      waitpid(children[i], &status, 0);
      if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        ++failed;
        reportf("forked child %zu %s\n", i,
                describe_status(status, watchdog_seconds(10), false).c_str());
      }
    }
    reportf("%d of %zu forked children failed\n", failed, children.size());
    CHILD_CHECK_OP(children.size(), ==, 40u);
    CHILD_CHECK_OP(failed, ==, 0);
  });
}

BOOST_AUTO_TEST_CASE(fork_child_frees_blocks_of_a_parent_thread_that_did_not_follow) {
  // In the child of a fork the parent's other threads are gone, but their liveness
  // slots still hold their tokens, so their arenas look owned and nobody adopts them.
  // The child frees blocks such a thread made (small ones, a one-shot chunk, an
  // over-aligned block): every free is safe, and the chunks they empty wait on the
  // stale arena's remote stack, still held (DESIGN.md, "fork()"), until the resource's
  // destructor returns them with everything else.
  run_isolated("fork child frees a vanished thread's blocks", 30, [] {
    MmapUpstream upstream;
    auto resource = std::make_unique<ChunkProviderResource>(ResourceOptions{.upstream = &upstream,
                                                                            .first_buffer = false});
    std::vector<Block> theirs;
    std::atomic<bool> made{false};
    std::atomic<bool> done{false};
    std::thread other = spawn([&] {
      for (std::uint32_t j = 0; j < 30; ++j) theirs.push_back(make_block(*resource, 16 + j * 37, 8, seed_of(j, 0, 8)));
      theirs.push_back(make_block(*resource, 40000, 8, seed_of(0, 1, 8)));   // a one-shot chunk
      theirs.push_back(make_block(*resource, 3000, 32768, seed_of(0, 2, 8)));  // over-aligned
      made.store(true);
      while (!done.load()) std::this_thread::yield();  // alive, and off every lock, at the fork
    });
    while (!made.load()) std::this_thread::yield();
    warm_up(*resource);  // the forking thread has an arena of its own too
    const pid_t pid = fork();
    if (pid == 0) {
      enter_forked_child();
      bool ok = true;
      resource->trim();  // this thread's own arena: its empty chunk and region go back
      const std::size_t held_before = resource->stats().bytes_held;
      for (const Block& b : theirs) ok = free_block(*resource, b) && ok;
      resource->trim();  // for the stale arena only a request that nobody honours
      ok = ok && resource->stats().bytes_held == held_before;
      Block mine[50];
      for (std::uint32_t j = 0; j < 50; ++j) mine[j] = mixed_block(*resource, j, seed_of(j, 3, 8));
      for (const Block& b : mine) ok = free_block(*resource, b) && ok;
      resource.reset();
      ok = ok && upstream.outstanding_blocks() == 0;
      std::_Exit(ok ? 0 : 1);
    }
    CHILD_CHECK(pid > 0);
    done.store(true);
    other.join();
    int status = 0;
    if (pid > 0) waitpid(pid, &status, 0);
    CHILD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
      reportf("the forked child %s\n", describe_status(status, watchdog_seconds(10), false).c_str());
    for (const Block& b : theirs) CHILD_CHECK(free_block(*resource, b));
    resource.reset();
    CHILD_CHECK_OP(upstream.outstanding_blocks(), ==, 0);
  });
}

// =======================================================================================
// 2. A re-entrant upstream: it allocates from another chunkpmr resource on every call.

namespace {

void reentrant_one_thread(LogTo to) {
  ReentrantSetup s(to);
  {
    ChunkProviderResource r(&s.upstream);
    step("allocate and free on one thread");
    std::vector<Block> live;
    for (std::uint32_t i = 0; i < 4000; ++i) {
      live.push_back(mixed_block(r, i, seed_of(i, 1)));
      if (live.size() > 200) {
        const std::size_t k = (i * 7919u) % live.size();
        CHILD_CHECK(free_block(r, live[k]));
        live[k] = live.back();
        live.pop_back();
      }
    }
    for (const Block& b : live) CHILD_CHECK(free_block(r, b));
    step("destroy on the thread that used it");
  }
  s.check_all_returned();
}

void reentrant_cross_thread(LogTo to) {
  ReentrantSetup s(to);
  {
    ChunkProviderResource r(&s.upstream);
    warm_up(r);
    step("a producer allocates, a consumer frees, the main thread frees what the exited producer left");
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<Block> queue;
    bool done = false;
    Handoff for_main;
    std::thread consumer = spawn([&] {
      for (;;) {
        std::unique_lock lock(mutex);
        ready.wait(lock, [&] { return done || !queue.empty(); });
        if (queue.empty()) return;
        const Block b = queue.front();
        queue.pop_front();
        lock.unlock();
        WORKER_CHECK(free_block(r, b));
      }
    });
    std::thread producer = spawn([&] {
      for (std::uint32_t i = 0; i < 3000; ++i) {
        const Block b = mixed_block(r, i, seed_of(i, 2));
        if (i % 10 == 0) {
          for_main.put(b);
          continue;
        }
        std::lock_guard lock(mutex);
        queue.push_back(b);
        ready.notify_one();
      }
    });
    producer.join();
    {
      std::lock_guard lock(mutex);
      done = true;
    }
    ready.notify_one();
    for (const Block& b : for_main.take_all()) CHILD_CHECK(free_block(r, b));
    consumer.join();
    step("destroy on the main thread");
  }
  s.check_all_returned();
}

void reentrant_destructor(LogTo to) {
  ReentrantSetup s(to);
  step("destroyed, with live blocks, by the thread that allocated them");
  spawn([&] {
    ChunkProviderResource r(&s.upstream);
    for (std::uint32_t i = 0; i < 400; ++i) {
      const Block b = mixed_block(r, i, seed_of(i, 3));
      if (i % 2 == 0) WORKER_CHECK(free_block(r, b));
    }
  }).join();
  CHILD_CHECK_OP(s.counting.outstanding_blocks(), ==, 0u);
  {
    std::optional<ChunkProviderResource> r(std::in_place, &s.upstream);
    step("two threads allocate, keep blocks live and exit");
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.push_back(spawn([&, t] {
        for (std::uint32_t i = 0; i < 400; ++i) {
          const Block b = mixed_block(*r, i, seed_of(i, 4, t));
          if (i % 2 == 0) WORKER_CHECK(free_block(*r, b));
        }
      }));
    }
    for (std::thread& t : threads) t.join();
    step("destroyed by a thread that never used it (nor its log resource)");
    r.reset();
  }
  s.check_all_returned();
}

void reentrant_release(LogTo to) {
  ReentrantSetup s(to);
  {
    ChunkProviderResource r(&s.upstream);
    step("release() with live blocks on the thread that allocated them");
    for (std::uint32_t i = 0; i < 300; ++i) static_cast<void>(mixed_block(r, i, seed_of(i, 5)));
    r.release();
    CHILD_CHECK_OP(s.counting.outstanding_blocks(), ==, 0u);
    step("the resource is usable after release()");
    std::vector<Block> blocks;
    for (std::uint32_t i = 0; i < 300; ++i) blocks.push_back(mixed_block(r, i, seed_of(i, 6)));
    for (const Block& b : blocks) CHILD_CHECK(free_block(r, b));
    step("worker threads allocate, keep blocks live and exit");
    for (int t = 0; t < 2; ++t) {
      spawn([&, t] {
        for (std::uint32_t i = 0; i < 300; ++i) {
          const Block b = mixed_block(r, i, seed_of(i, 7, t));
          if (i % 3 == 0) WORKER_CHECK(free_block(r, b));
        }
      }).join();
    }
    step("release() from a thread that never used the resource (nor its log resource)");
    spawn([&] { r.release(); }).join();
    CHILD_CHECK_OP(s.counting.outstanding_blocks(), ==, 0u);
    step("the resource is usable after that release()");
    for (std::uint32_t i = 0; i < 300; ++i) blocks[i] = mixed_block(r, i, seed_of(i, 8));
    for (const Block& b : blocks) CHILD_CHECK(free_block(r, b));
  }
  s.check_all_returned();
}

void reentrant_trim_same_thread(LogTo to) {
  ReentrantSetup s(to);
  {
    ChunkProviderResource r(&s.upstream);
    step("allocate chunks' worth of blocks, free them all, trim() on the same thread");
    std::vector<Block> blocks;
    for (std::uint32_t i = 0; i < 600; ++i) blocks.push_back(make_block(r, 3000, 8, seed_of(i, 9)));
    for (const Block& b : blocks) CHILD_CHECK(free_block(r, b));
    const std::size_t chunks_before = s.counting.outstanding_chunks();
    const chunkpmr::ResourceStats before = r.stats();
    r.trim();
    const chunkpmr::ResourceStats after = r.stats();
    reportf("before trim(): %zu bytes held, %zu cached; after: %zu held, %zu cached\n",
            before.bytes_held, before.cached_bytes, after.bytes_held, after.cached_bytes);
    CHILD_CHECK_OP(after.cached_bytes, ==, 0u);
    CHILD_CHECK_OP(after.cached_chunks, ==, 0u);
    CHILD_CHECK_OP(after.bytes_held, <=, 2 * kChunk64K);  // at most the current chunk
    CHILD_CHECK_OP(s.counting.outstanding_chunks(), <=, chunks_before);
    step("the resource is usable after trim()");
    for (std::uint32_t i = 0; i < 600; ++i) blocks[i] = mixed_block(r, i, seed_of(i, 10));
    for (const Block& b : blocks) CHILD_CHECK(free_block(r, b));
  }
  s.check_all_returned();
}

void reentrant_trim_other_thread(LogTo to) {
  ReentrantSetup s(to);
  {
    ChunkProviderResource r(&s.upstream);
    warm_up(r);
    step("trim() on a thread that used the resource");
    r.trim();
    step("two threads allocate, hand their blocks to the main thread and exit");
    Handoff handoff;
    for (int t = 0; t < 2; ++t) {
      spawn([&, t] {
        for (std::uint32_t i = 0; i < 300; ++i) handoff.put(make_block(r, 2000, 8, seed_of(i, 11, t)));
      }).join();
    }
    step("the main thread frees them (the chunks go home to the exited threads' arenas)");
    for (const Block& b : handoff.take_all()) CHILD_CHECK(free_block(r, b));
    step("trim() from a thread that never used the resource (nor its log resource)");
    spawn([&] { r.trim(); }).join();
    // Nothing is live: only the first buffer stays (release() and the destructor
    // reclaim it, as monotonic's buffers); every chunk went back.
    CHILD_CHECK_OP(r.stats().bytes_held, <=, std::size_t{4096});
    CHILD_CHECK_OP(s.counting.outstanding_chunks(), ==, 0u);
  }
  s.check_all_returned();
}

void reentrant_thread_exit(LogTo to) {
  ReentrantSetup s(to);
  {
    ChunkProviderResource r(&s.upstream);
    warm_up(r);
    step("threads allocate (also from thread_local destructors), keep blocks live and exit");
    Handoff handoff;
    for (int wave = 0; wave < 4; ++wave) {
      std::vector<std::thread> threads;
      for (int t = 0; t < 2; ++t) {
        threads.push_back(spawn([&, wave, t] {
          t_container_resource = &r;
          thread_container().v.assign(100, 1);
          std::vector<Block> blocks;
          for (std::uint32_t i = 0; i < 500; ++i) blocks.push_back(mixed_block(r, i, seed_of(i, wave, t)));
          for (std::size_t i = 0; i < blocks.size(); ++i) {
            if (i % 25 == 0) {
              handoff.put(blocks[i]);
            } else {
              WORKER_CHECK(free_block(r, blocks[i]));
            }
          }
        }));
      }
      for (std::thread& t : threads) t.join();
    }
    step("the main thread frees what the exited threads left");
    for (const Block& b : handoff.take_all()) CHILD_CHECK(free_block(r, b));
    CHILD_CHECK_OP(r.stats().live_thread_arenas, ==, 1u);  // the main thread's
    step("destroy on the main thread");
  }
  s.check_all_returned();
}

void reentrant_late_key(LogTo to) {
  ReentrantSetup s(to);
  {
    ChunkProviderResource r(&s.upstream);
    warm_up(r);
    step("threads allocate from a pthread key destructor that runs after chunkpmr's exit hook");
    std::vector<LateUse> uses(6);
    for (std::size_t k = 0; k < uses.size(); k += 2) {
      std::vector<std::thread> threads;
      for (std::size_t j = k; j < k + 2; ++j) {
        uses[j].resource = &r;
        uses[j].seed = seed_of(j, 12);
        threads.push_back(spawn([&, j] { arm_late_use(uses[j]); }));
      }
      for (std::thread& t : threads) t.join();
    }
    step("the main thread checks and frees what the late destructors kept");
    for (LateUse& use : uses) check_late_use(use);
    step("destroy on the main thread");
  }
  s.check_all_returned();
}

}  // namespace

BOOST_AUTO_TEST_CASE(reentrant_upstream_allocate_and_free_on_one_thread) {
  run_with_both_log_resources("re-entrant upstream: allocate and free on one thread",
                              &reentrant_one_thread);
}

BOOST_AUTO_TEST_CASE(reentrant_upstream_frees_on_other_threads) {
  run_with_both_log_resources("re-entrant upstream: cross-thread frees", &reentrant_cross_thread);
}

BOOST_AUTO_TEST_CASE(reentrant_upstream_destructor) {
  run_with_both_log_resources("re-entrant upstream: destructor", &reentrant_destructor);
}

BOOST_AUTO_TEST_CASE(reentrant_upstream_release) {
  run_with_both_log_resources("re-entrant upstream: release()", &reentrant_release);
}

BOOST_AUTO_TEST_CASE(reentrant_upstream_trim_on_the_same_thread) {
  run_with_both_log_resources("re-entrant upstream: trim() on the same thread",
                              &reentrant_trim_same_thread);
}

BOOST_AUTO_TEST_CASE(reentrant_upstream_trim_from_another_thread) {
  run_with_both_log_resources("re-entrant upstream: trim() from another thread",
                              &reentrant_trim_other_thread);
}

BOOST_AUTO_TEST_CASE(reentrant_upstream_thread_exit) {
  run_with_both_log_resources("re-entrant upstream: thread exit", &reentrant_thread_exit);
}

BOOST_AUTO_TEST_CASE(reentrant_upstream_allocation_after_the_exit_hook) {
  run_with_both_log_resources("re-entrant upstream: allocation in a late pthread key destructor",
                              &reentrant_late_key);
}

// =======================================================================================
// 3. Thousands of short-lived threads: the footprint stays flat.

BOOST_AUTO_TEST_CASE(thousands_of_short_lived_threads_keep_bytes_held_flat) {
  run_isolated("2000 short-lived threads", 60, [] {
    constexpr int kThreads = 2000;
    constexpr int kConcurrent = 4;
    constexpr int kHandedLifetime = 16;  // the main thread frees a thread's blocks 16 threads later
    constexpr int kSampleEvery = 50;
    constexpr int kBaseline = 200;
    CountingResource counting;
    {
      ChunkProviderResource r(&counting);
      std::mutex mutex;
      std::deque<std::pair<int, Block>> handed;  // (index of the thread that allocated it, block)
      auto free_handed_before = [&](int limit) {
        std::vector<Block> due;
        {
          std::lock_guard lock(mutex);
          for (auto it = handed.begin(); it != handed.end();) {
            if (it->first < limit) {
              due.push_back(it->second);
              it = handed.erase(it);
            } else {
              ++it;
            }
          }
        }
        for (const Block& b : due) CHILD_CHECK(free_block(r, b));
      };
      std::deque<std::thread> running;
      auto join_all = [&] {
        while (!running.empty()) {
          running.front().join();
          running.pop_front();
        }
      };
      // bytes_held at a quiet moment (no thread running) every 50 threads, after a
      // trim(): chunks the main thread emptied sit on exited threads' arenas until one is
      // adopted again, which makes the raw figure jump by a megabyte from one sample to
      // the next (it is reported too). Threads t and t + 200 do the same work, and the
      // baseline is the highest sample up to thread 200.
      std::vector<std::size_t> samples;
      std::vector<std::size_t> raw_samples;
      for (int t = 0; t < kThreads; ++t) {
        if (running.size() == kConcurrent) {
          running.front().join();
          running.pop_front();
        }
        running.push_back(spawn([&, t] {
          std::mt19937 rng(static_cast<unsigned>(t % kBaseline));
          std::vector<Block> blocks;
          for (std::uint32_t i = 0; i < 50; ++i)
            blocks.push_back(make_block(r, 8 + rng() % 4089, 8, seed_of(t, i)));
          std::shuffle(blocks.begin(), blocks.end(), rng);
          for (std::size_t i = 0; i < blocks.size(); ++i) {
            if (i < 3) {
              std::lock_guard lock(mutex);
              handed.emplace_back(t, blocks[i]);
            } else {
              WORKER_CHECK(free_block(r, blocks[i]));
            }
          }
        }));
        free_handed_before(t - kHandedLifetime);
        if ((t + 1) % kSampleEvery == 0) {
          join_all();
          free_handed_before(t + 1 - kHandedLifetime);
          raw_samples.push_back(r.stats().bytes_held);
          r.trim();
          samples.push_back(r.stats().bytes_held);
        }
      }
      join_all();
      free_handed_before(kThreads);
      const chunkpmr::ResourceStats s = r.stats();
      const std::size_t bookkeeping = counting.outstanding_blocks() - counting.outstanding_chunks();
      const std::size_t held_at_200 =
          *std::max_element(samples.begin(), samples.begin() + kBaseline / kSampleEvery);
      const std::size_t held_at_2000 = samples.back();
      std::string all;
      for (std::size_t v : samples) (all += ' ') += std::to_string(v / 1024);
      std::string raw;
      for (std::size_t v : raw_samples) (raw += ' ') += std::to_string(v / 1024);
      reportf("bytes_held (KiB) every %d threads, after trim():%s\nbefore trim():%s\n",
              kSampleEvery, all.c_str(), raw.c_str());
      reportf("bytes_held after 200 threads (highest sample so far): %zu, after 2000: %zu; "
              "live thread arenas at the end: %zu; upstream blocks that are not chunks "
              "(arenas): %zu\n",
              held_at_200, held_at_2000, s.live_thread_arenas, bookkeeping);
      CHILD_CHECK_OP(samples.size(), ==, static_cast<std::size_t>(kThreads / kSampleEvery));
      // A live block pins its chunk and the chunk its region (up to 32 MiB, counted whole
      // in bytes_held), so which regions the few live blocks land in moves the figure by a
      // region or so either way. Growth with the number of threads (ten times as many by
      // the end) would far exceed twice the early level.
      const std::size_t highest =
          *std::max_element(samples.begin() + kBaseline / kSampleEvery, samples.end());
      CHILD_CHECK_OP(highest, <=, 2 * held_at_200);
      CHILD_CHECK_OP(s.live_thread_arenas, <=, 8u);
      CHILD_CHECK_OP(bookkeeping, <=, 8u);  // arenas were reused, not one per thread
    }
    CHILD_CHECK_OP(counting.outstanding_blocks(), ==, 0u);
    CHILD_CHECK_OP(counting.mismatched_deallocations(), ==, 0u);
  });
}

// =======================================================================================
// 4. Many live resources, each used by several threads in turn.

BOOST_AUTO_TEST_CASE(many_resources_round_robin_by_several_threads) {
  run_isolated("1200 resources, 4 threads", 60, [] {
    constexpr int kResources = 1200;
    constexpr int kThreads = 4;
    constexpr int kRounds = 6;
    struct Owned {
      int round;
      Block block;
    };
    struct Mailbox {  // blocks left for another thread to free
      std::mutex mutex;
      std::vector<std::pair<int, Block>> blocks;  // (allocating thread, block)
    };
    CountingResource counting;
    {
      std::vector<std::unique_ptr<ChunkProviderResource>> resources;
      for (int k = 0; k < kResources; ++k) resources.push_back(std::make_unique<ChunkProviderResource>(&counting));
      std::vector<Mailbox> mail(kResources);
      std::atomic<std::uint64_t> remote_frees{0};
      step("4 threads visit every resource, 6 rounds, each in its own order");
      std::vector<std::thread> threads;
      for (int t = 0; t < kThreads; ++t) {
        threads.push_back(spawn([&, t] {
          std::vector<std::vector<Owned>> own(kResources);
          std::vector<int> order(kResources);
          std::iota(order.begin(), order.end(), 0);
          std::mt19937 rng(static_cast<unsigned>(t * 7919 + 1));
          for (int round = 0; round < kRounds; ++round) {
            if (t == 0) {
              std::reverse(order.begin(), order.end());
            } else {
              std::shuffle(order.begin(), order.end(), rng);
            }
            for (int k : order) {
              ChunkProviderResource& r = *resources[static_cast<std::size_t>(k)];
              std::vector<Owned>& mine = own[static_cast<std::size_t>(k)];
              for (std::size_t i = 0; i < mine.size();) {
                if (mine[i].round <= round - 2) {
                  WORKER_CHECK(free_block(r, mine[i].block));
                  mine[i] = mine.back();
                  mine.pop_back();
                } else {
                  ++i;
                }
              }
              std::vector<Block> others;
              {
                Mailbox& box = mail[static_cast<std::size_t>(k)];
                std::lock_guard lock(box.mutex);
                for (std::size_t i = 0; i < box.blocks.size();) {
                  if (box.blocks[i].first != t) {
                    others.push_back(box.blocks[i].second);
                    box.blocks[i] = box.blocks.back();
                    box.blocks.pop_back();
                  } else {
                    ++i;
                  }
                }
              }
              for (const Block& b : others) WORKER_CHECK(free_block(r, b));
              remote_frees.fetch_add(others.size());
              for (std::uint32_t j = 0; j < 2; ++j) {
                const unsigned pick = rng();
                const std::size_t bytes = pick % 50 == 0 ? 20000 + pick % 30000 : 8 + pick % 2000;
                const Block b = make_block(r, bytes, std::size_t{8} << (pick % 2),
                                           seed_of(t * 64 + round, static_cast<std::uint64_t>(k), j));
                if (pick % 5 == 0) {
                  Mailbox& box = mail[static_cast<std::size_t>(k)];
                  std::lock_guard lock(box.mutex);
                  box.blocks.emplace_back(t, b);
                } else {
                  mine.push_back(Owned{round, b});
                }
              }
            }
          }
          for (int k = 0; k < kResources; ++k)
            for (const Owned& o : own[static_cast<std::size_t>(k)])
              WORKER_CHECK(free_block(*resources[static_cast<std::size_t>(k)], o.block));
        }));
      }
      for (std::thread& t : threads) t.join();
      step("the main thread frees what is left in the mailboxes, then destroys every resource");
      for (int k = 0; k < kResources; ++k)
        for (const auto& [owner, b] : mail[static_cast<std::size_t>(k)].blocks)
          CHILD_CHECK(free_block(*resources[static_cast<std::size_t>(k)], b));
      // Arenas come from upstream (all but each resource's first, which lives inside the
      // resource), as does each resource's first buffer (an ordinary request, not a
      // chunk): a resource never has more than one arena per thread using it.
      const std::size_t arenas =
          counting.outstanding_blocks() - counting.outstanding_chunks() - kResources;
      reportf("blocks freed by a thread other than the allocating one: %llu; upstream "
              "blocks that are not chunks (arenas): %zu\n",
              static_cast<unsigned long long>(remote_frees.load()), arenas);
      CHILD_CHECK_OP(remote_frees.load(), >, 0u);
      CHILD_CHECK_OP(arenas, <=, static_cast<std::size_t>(kResources * (kThreads - 1)));
    }
    CHILD_CHECK_OP(counting.outstanding_blocks(), ==, 0u);
    CHILD_CHECK_OP(counting.mismatched_deallocations(), ==, 0u);
  });
}

// =======================================================================================
// 5. A resource destroyed while the threads that used it exit.

BOOST_AUTO_TEST_CASE(resources_destroyed_while_their_threads_exit) {
  run_isolated("200 resources destroyed during thread exit", 60, [] {
    constexpr int kIterations = 200;
    constexpr int kThreads = 4;
    CountingResource counting;
    int failures_reported = 0;
    for (int iter = 0; iter < kIterations; ++iter) {
      std::optional<ChunkProviderResource> r(std::in_place, &counting);
      std::barrier sync(kThreads + 1);
      std::vector<std::thread> threads;
      for (int t = 0; t < kThreads; ++t) {
        threads.push_back(spawn([&, t] {
          std::vector<Block> blocks;
          for (std::uint32_t i = 0; i < 40; ++i) blocks.push_back(mixed_block(*r, i + t, seed_of(iter, t, i)));
          for (std::size_t i = 0; i < blocks.size(); ++i)
            if (i % 4 != 0) WORKER_CHECK(free_block(*r, blocks[i]));
          // The other blocks stay live: the destructor reclaims them, as release() would.
          sync.arrive_and_wait();
        }));  // ... and the thread exits now, while the main thread destroys the resource
      }
      sync.arrive_and_wait();
      for (int spin = 0; spin < (iter % 4) * 200; ++spin) std::atomic_signal_fence(std::memory_order_seq_cst);
      r.reset();
      for (std::thread& t : threads) t.join();
      const std::size_t outstanding = counting.outstanding_blocks();
      if (outstanding != 0 && failures_reported++ < 5)
        reportf("iteration %d: %zu upstream blocks outstanding after the destructor\n", iter, outstanding);
      CHILD_CHECK_OP(outstanding, ==, 0u);
    }
    CHILD_CHECK_OP(counting.mismatched_deallocations(), ==, 0u);
  });
}

// =======================================================================================
// 6. Ten thousand live resources, and short-lived ones created meanwhile.

BOOST_AUTO_TEST_CASE(ten_thousand_live_resources) {
  run_isolated("10000 live resources", 60, [] {
    constexpr int kResources = 10000;
    CountingResource counting;
    {
      step("create 10000 resources and allocate one block from each");
      std::vector<std::unique_ptr<ChunkProviderResource>> resources;
      std::vector<Block> blocks;
      for (int k = 0; k < kResources; ++k) {
        resources.push_back(std::make_unique<ChunkProviderResource>(&counting));
        blocks.push_back(make_block(*resources.back(), 16 + k % 200, 8, seed_of(k, 13)));
      }
      step("1000 short-lived request resources meanwhile");
      for (int req = 0; req < 1000; ++req) {
        ChunkProviderResource request(&counting);
        std::pmr::vector<std::pmr::string> strings(&request);
        for (int i = 0; i < 20; ++i)
          strings.emplace_back(30, static_cast<char>('a' + (req + i) % 26));
        bool intact = strings.size() == 20;
        for (int i = 0; i < 20 && intact; ++i) {
          const std::string expected(30, static_cast<char>('a' + (req + i) % 26));
          intact = std::string_view(strings[static_cast<std::size_t>(i)]) == expected &&
                   strings[static_cast<std::size_t>(i)].get_allocator().resource() == &request;
        }
        CHILD_CHECK(intact);
      }
      step("check and free every long-lived block, destroy every resource");
      for (int k = 0; k < kResources; ++k) {
        if (k % 2 == 0) {
          CHILD_CHECK(free_block(*resources[static_cast<std::size_t>(k)], blocks[static_cast<std::size_t>(k)]));
        } else {
          CHILD_CHECK(check_pattern(blocks[static_cast<std::size_t>(k)].p, blocks[static_cast<std::size_t>(k)].bytes,
                                    blocks[static_cast<std::size_t>(k)].seed));
        }  // odd ones: left for the destructor
      }
    }
    CHILD_CHECK_OP(counting.outstanding_blocks(), ==, 0u);
    CHILD_CHECK_OP(counting.mismatched_deallocations(), ==, 0u);
  });
}

// =======================================================================================
// 7. Resource lifetimes on long-lived threads.

BOOST_AUTO_TEST_CASE(creating_and_destroying_many_resources_on_a_long_lived_thread_leaks_nothing) {
  run_isolated("100000 resource lifetimes on each of two threads", 90, [] {
    constexpr int kCycles = 100000;
    CountingResource counting;
    std::atomic<std::size_t> peak_outstanding{0};
    auto cycles = [&](int t) {
      for (int i = 0; i < kCycles; ++i) {
        {
          ChunkProviderResource r(&counting);
          const std::size_t bytes = static_cast<std::size_t>(8 + (i * 31 + t) % 400);
          const Block b = make_block(r, bytes, 8, seed_of(t, i));
          if (i % 3 != 0) WORKER_CHECK(free_block(r, b));  // else: the destructor's
        }
        if (i % 1000 == 0) {
          // This thread's resource is gone; the other thread has at most one live.
          const std::size_t now = counting.outstanding_blocks();
          std::size_t seen = peak_outstanding.load();
          while (now > seen && !peak_outstanding.compare_exchange_weak(seen, now)) {
          }
        }
      }
    };
    std::thread second = spawn([&] { cycles(1); });
    cycles(0);
    second.join();
    reportf("most upstream blocks outstanding at a sample: %zu\n", peak_outstanding.load());
    CHILD_CHECK_OP(peak_outstanding.load(), <=, 4u);
    CHILD_CHECK_OP(counting.outstanding_blocks(), ==, 0u);
    CHILD_CHECK_OP(counting.mismatched_deallocations(), ==, 0u);
  });
}

// =======================================================================================
// 8. Allocations after threads' exit hooks racing stats() (for TSan).

BOOST_AUTO_TEST_CASE(stats_races_late_allocations) {
  // A resource's first allocation after a thread's exit hook sets up what serves such
  // allocations, so each of the 40 rounds has a resource of its own, polled by stats()
  // on another thread all along; nothing orders the poller after those allocations
  // (the poller and the main thread only share the mutex that publishes the resource).
  run_isolated("late allocations racing stats()", 60, [] {
    constexpr int kRounds = 40;
    constexpr std::size_t kThreadsPerRound = 3;
    CountingResource counting;
    std::mutex publish;
    ChunkProviderResource* polled = nullptr;  // guarded by publish
    std::atomic<bool> done{false};
    std::atomic<std::size_t> polls{0};
    std::atomic<std::size_t> most_live_arenas{0};
    std::thread poller = spawn([&] {
      while (!done.load()) {
        {
          std::lock_guard lock(publish);
          if (polled != nullptr) {
            const chunkpmr::ResourceStats s = polled->stats();
            if (s.live_thread_arenas > most_live_arenas.load())
              most_live_arenas.store(s.live_thread_arenas);
            polls.fetch_add(1);
          }
        }
        // Outside the lock: under valgrind, which runs one thread at a time, a poller
        // that takes the lock again at once starved the round's threads (672 s for this
        // case in one run, past its watchdog on a slower machine).
        std::this_thread::yield();
      }
    });
    for (int round = 0; round < kRounds; ++round) {
      {
        ChunkProviderResource r(&counting);
        {
          std::lock_guard lock(publish);
          polled = &r;
        }
        std::vector<LateUse> uses(kThreadsPerRound);
        std::vector<std::thread> threads;
        for (std::size_t i = 0; i < kThreadsPerRound; ++i) {
          uses[i].resource = &r;
          uses[i].seed = seed_of(round, i, 14);
          threads.push_back(spawn([&use = uses[i]] { arm_late_use(use); }));
        }
        for (std::thread& t : threads) t.join();
        {
          std::lock_guard lock(publish);
          polled = nullptr;
        }
        for (LateUse& use : uses) check_late_use(use);
        CHILD_CHECK_OP(r.stats().live_thread_arenas, ==, 0u);  // none for a torn-down thread
      }
      CHILD_CHECK_OP(counting.outstanding_blocks(), ==, 0u);
    }
    done.store(true);
    poller.join();
    reportf("stats() calls: %zu; most live thread arenas seen: %zu\n", polls.load(),
            most_live_arenas.load());
    CHILD_CHECK_OP(polls.load(), >, 0u);
    CHILD_CHECK_OP(most_live_arenas.load(), <=, kThreadsPerRound);
    CHILD_CHECK_OP(counting.mismatched_deallocations(), ==, 0u);
  });
}

// =======================================================================================
// 9. dlclose() of a module containing chunkpmr while a thread that used it runs on.
// (CMake builds the module and passes its path; the b2 build has no such case.)

#ifdef CHUNKPMR_DL_MODULE_PATH
namespace {

struct DlGate {
  std::mutex mutex;
  std::condition_variable cv;
  bool used = false;
  bool go = false;
  int use_result = -1;
};

void dl_wait(void* ctx) {
  auto* gate = static_cast<DlGate*>(ctx);
  std::unique_lock lock(gate->mutex);
  gate->cv.wait(lock, [&] { return gate->go; });
}

void* dl_thread_main(void* self) {
  auto* t = static_cast<chunkpmr_dl_thread*>(self);
  auto* gate = static_cast<DlGate*>(t->ctx);
  const int result = t->use();  // module code: allocates from the module's resource
  {
    std::lock_guard lock(gate->mutex);
    gate->use_result = result;
    gate->used = true;
  }
  gate->cv.notify_all();
  t->wait(t->ctx);
  return nullptr;  // the thread exits: only test code and the C/C++ runtime run from here
}

}  // namespace

BOOST_AUTO_TEST_CASE(dlclose_while_a_thread_that_used_it_still_runs) {
  run_isolated("dlclose while a thread that used the module runs", 20, [] {
    step("dlopen " CHUNKPMR_DL_MODULE_PATH);
    void* module = dlopen(CHUNKPMR_DL_MODULE_PATH, RTLD_NOW | RTLD_LOCAL);
    if (module == nullptr) {
      reportf("dlopen failed: %s\n", dlerror());
      CHILD_CHECK(module != nullptr);
      return;
    }
    auto start = reinterpret_cast<chunkpmr_dl_start_thread_fn>(dlsym(module, "chunkpmr_dl_start_thread"));
    CHILD_CHECK(start != nullptr);
    if (start == nullptr) return;
    DlGate gate;
    chunkpmr_dl_thread t{};
    t.thread_main = &dl_thread_main;
    t.wait = &dl_wait;
    t.ctx = &gate;
    step("the module starts a thread that allocates from the module's resource");
    CHILD_CHECK(start(&t) == 0);
    {
      std::unique_lock lock(gate.mutex);
      gate.cv.wait(lock, [&] { return gate.used; });
    }
    CHILD_CHECK_OP(gate.use_result, ==, 0);
    step("dlclose while that thread still runs");
    CHILD_CHECK(dlclose(module) == 0);
    void* still = dlopen(CHUNKPMR_DL_MODULE_PATH, RTLD_NOW | RTLD_NOLOAD);
    reportf("after dlclose the module %s\n", still == nullptr ? "is unloaded" : "is still loaded");
    if (still != nullptr) dlclose(still);
    step("the thread exits");
    {
      std::lock_guard lock(gate.mutex);
      gate.go = true;
    }
    gate.cv.notify_all();
    CHILD_CHECK(pthread_join(t.thread, nullptr) == 0);
    step("joined");
  });
}
#endif
