// SPDX-License-Identifier: BSL-1.0
// Misuse that is cheap to detect ends the process with a clear message instead of
// corrupting memory. Each case runs in a forked child; the parent checks that the child
// aborted and what it printed.
#define BOOST_TEST_MODULE misuse
#include <boost/test/unit_test.hpp>

#include <chunkpmr/chunk_provider_resource.hpp>

#include "test_support.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory_resource>
#include <string>
#include <thread>

using chunkpmr::ChunkProviderResource;
using chunkpmr::ResourceOptions;
using chunkpmr::test::chunks_only;

namespace {

struct ChildResult {
  bool aborted = false;
  std::string stderr_text;
};

ChildResult run_in_child(const std::function<void()>& body) {
  int pipe_fds[2];
  BOOST_REQUIRE(pipe(pipe_fds) == 0);
  const pid_t pid = fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    std::signal(SIGABRT, SIG_DFL);  // Boost.Test's handler would turn the abort into a report
    dup2(pipe_fds[1], STDERR_FILENO);
    close(pipe_fds[0]);
    body();
    _exit(0);  // reaching here means the misuse went unnoticed
  }
  close(pipe_fds[1]);
  ChildResult result;
  char buffer[512];
  for (ssize_t n; (n = read(pipe_fds[0], buffer, sizeof buffer)) > 0;)
    result.stderr_text.append(buffer, static_cast<std::size_t>(n));
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  result.aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  return result;
}

#ifdef NDEBUG
constexpr bool kDebugChecks = false;
#else
constexpr bool kDebugChecks = true;
#endif

boost::test_tools::assertion_result debug_checks_on(boost::unit_test::test_unit_id) {
  boost::test_tools::assertion_result r(kDebugChecks);
  r.message() << "debug checks are compiled out of this (NDEBUG) build";
  return r;
}

}  // namespace

// In every build: a second free of the last block of a chunk drives its count below
// zero, which is detected (the chunk still exists: it sits in the cache).
BOOST_AUTO_TEST_CASE(double_free_of_a_last_block_on_another_thread_aborts) {
  // The remote path: another thread frees a cached chunk's last block a second time.
  ChildResult child = run_in_child([] {
    ChunkProviderResource r(ResourceOptions{.initial_chunk_bytes = 65536, .first_buffer = false});
    void* a = r.allocate(8, 8);
    void* fill[4];
    for (void*& f : fill) f = r.allocate(16000, 8);
    void* next = r.allocate(16000, 8);  // a new chunk: the first one retires with 5 blocks
    static_cast<void>(next);
    for (void* f : fill) r.deallocate(f, 16000, 8);
    r.deallocate(r.allocate(70000, 8), 70000, 8);  // a slow path applies the owner's frees
    std::thread([&] {
      r.deallocate(a, 8, 8);  // the count reaches zero: pushed home
      r.deallocate(a, 8, 8);  // below zero
    }).join();
  });
  BOOST_TEST(child.aborted);
  BOOST_TEST(child.stderr_text.find("reference count underflow") != std::string::npos,
             child.stderr_text);
}

BOOST_AUTO_TEST_CASE(double_free_of_a_chunks_last_block_aborts) {
  ChildResult child = run_in_child([] {
    // 64 KiB chunks from the start: the floor stays at the top class, so the emptied
    // chunk is cached (still mapped, header intact) rather than returned upstream.
    ChunkProviderResource r(ResourceOptions{.initial_chunk_bytes = 65536, .first_buffer = false});
    void* a = r.allocate(8, 8);
    void* fill[4];
    for (void*& f : fill) f = r.allocate(16000, 8);
    void* next = r.allocate(16000, 8);  // a new chunk: the first one retires with 5 blocks
    for (void* f : fill) r.deallocate(f, 16000, 8);
    r.deallocate(a, 8, 8);
    r.deallocate(r.allocate(70000, 8), 70000, 8);  // a slow path applies the frees:
                                                    // count 0, the chunk is cached
    r.deallocate(a, 8, 8);
    r.deallocate(r.allocate(70000, 8), 70000, 8);  // applying this one goes below zero
    r.deallocate(next, 16000, 8);
  });
  BOOST_TEST(child.aborted);
  BOOST_TEST(child.stderr_text.find("reference count underflow") != std::string::npos,
             child.stderr_text);
}

BOOST_AUTO_TEST_CASE(foreign_pointer_is_rejected, *boost::unit_test::precondition(debug_checks_on)) {
  ChildResult child = run_in_child([] {
    ChunkProviderResource r;
    static_cast<void>(r.allocate(8, 8));
    void* foreign = std::aligned_alloc(65536, 65536);
    std::memset(foreign, 0, 65536);
    r.deallocate(static_cast<char*>(foreign) + 256, 8, 8);
  });
  BOOST_TEST(child.aborted);
  BOOST_TEST(child.stderr_text.find("did not hand out") != std::string::npos, child.stderr_text);
}

BOOST_AUTO_TEST_CASE(over_aligned_block_of_another_resource_is_rejected,
                     *boost::unit_test::precondition(debug_checks_on)) {
  ChildResult child = run_in_child([] {
    ChunkProviderResource a;
    ChunkProviderResource b;
    void* p = a.allocate(100, 65536);  // over-aligned: passed through to upstream
    b.deallocate(p, 100, 65536);
  });
  BOOST_TEST(child.aborted);
  BOOST_TEST(child.stderr_text.find("did not hand out") != std::string::npos, child.stderr_text);
}

BOOST_AUTO_TEST_CASE(over_aligned_block_freed_with_another_alignment_is_rejected,
                     *boost::unit_test::precondition(debug_checks_on)) {
  ChildResult child = run_in_child([] {
    ChunkProviderResource a;
    void* p = a.allocate(100, 65536);
    a.deallocate(p, 100, 1 << 17);
  });
  BOOST_TEST(child.aborted);
  BOOST_TEST(child.stderr_text.find("alignment") != std::string::npos, child.stderr_text);
}

BOOST_AUTO_TEST_CASE(pointer_of_another_resource_is_rejected,
                     *boost::unit_test::precondition(debug_checks_on)) {
  ChildResult child = run_in_child([] {
    ChunkProviderResource a(chunks_only(std::pmr::get_default_resource()));
    ChunkProviderResource b;
    void* p = a.allocate(8, 8);
    static_cast<void>(b.allocate(8, 8));
    b.deallocate(p, 8, 8);
  });
  BOOST_TEST(child.aborted);
  BOOST_TEST(child.stderr_text.find("did not hand out") != std::string::npos, child.stderr_text);
}

BOOST_AUTO_TEST_CASE(double_free_of_a_returned_chunk_is_rejected,
                     *boost::unit_test::precondition(debug_checks_on)) {
  ChildResult child = run_in_child([] {
    // Upstream memory stays mapped after the chunk goes back, so the second free reads
    // the poisoned header instead of unmapped memory.
    std::pmr::monotonic_buffer_resource upstream;
    ChunkProviderResource r(chunks_only(&upstream));
    void* big = r.allocate(50000, 8);  // one-shot chunk, returned upstream when freed
    r.deallocate(big, 50000, 8);
    r.deallocate(big, 50000, 8);
  });
  BOOST_TEST(child.aborted);
  BOOST_TEST(child.stderr_text.find("already returned") != std::string::npos, child.stderr_text);
}

BOOST_AUTO_TEST_CASE(non_power_of_two_alignment_is_rejected,
                     *boost::unit_test::precondition(debug_checks_on)) {
  ChildResult child = run_in_child([] {
    ChunkProviderResource r;
    volatile std::size_t alignment = 24;  // volatile: compilers diagnose a literal
    static_cast<void>(r.allocate(8, alignment));
  });
  BOOST_TEST(child.aborted);
  BOOST_TEST(child.stderr_text.find("power of two") != std::string::npos, child.stderr_text);
}

BOOST_AUTO_TEST_CASE(oversized_size_on_free_is_rejected,
                     *boost::unit_test::precondition(debug_checks_on)) {
  ChildResult child = run_in_child([] {
    ChunkProviderResource r(chunks_only(std::pmr::get_default_resource()));
    void* p = r.allocate(100, 8);
    r.deallocate(p, 70000, 8);
  });
  BOOST_TEST(child.aborted);
  BOOST_TEST(child.stderr_text.find("larger than the block") != std::string::npos,
             child.stderr_text);
}
