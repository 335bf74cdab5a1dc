// SPDX-License-Identifier: BSL-1.0
// Deterministic interleavings of the races stress tests rarely hit. Linked against
// chunkpmr_hooked (CHUNKPMR_TEST_HOOKS): a thread arms one hook point, runs until it
// reaches it and waits there while the test performs the racing step on another
// thread, then continues. Each test names the race it forces and checks both orders
// where the order matters.
#define BOOST_TEST_MODULE interleavings
#include <boost/test/unit_test.hpp>

#include <chunkpmr/chunk_provider_resource.hpp>

#include "../src/test_hooks.hpp"
#include "test_support.hpp"

#include <semaphore>
#include <thread>
#include <vector>

using chunkpmr::ChunkProviderResource;
using chunkpmr::test::chunks_only;
using chunkpmr::ResourceOptions;
using chunkpmr::detail::HookPoint;
using chunkpmr::test::CountingResource;

namespace {

// The armed point lives in trivially destructible thread-local storage, so it still
// works inside the thread exit hook (which runs after C++ thread_local destructors).
thread_local int t_armed_point = -1;
std::binary_semaphore g_reached{0};
std::binary_semaphore g_proceed{0};

void gate_hook(HookPoint point, const void*) {
  if (t_armed_point != static_cast<int>(point)) return;
  t_armed_point = -1;
  g_reached.release();
  g_proceed.acquire();
}

// The calling thread will stop at the next `point` it reaches.
void arm(HookPoint point) { t_armed_point = static_cast<int>(point); }
void wait_until_stopped() { g_reached.acquire(); }
void let_it_go() { g_proceed.release(); }

struct HookInstalled {
  HookInstalled() { chunkpmr::detail::set_test_hook(&gate_hook); }
  ~HookInstalled() { chunkpmr::detail::set_test_hook(nullptr); }
};

constexpr std::size_t kBig = 40000;  // above max_normal_alloc: a one-shot chunk each

}  // namespace

BOOST_FIXTURE_TEST_CASE(push_cas_loses_to_a_concurrent_push, HookInstalled) {
  // Race: two threads empty chunks of the same owner at once; the first has loaded the
  // stack head when the second's push lands, so its CAS fails and must retry.
  CountingResource counting;
  ChunkProviderResource r(chunks_only(&counting));
  void* x = r.allocate(kBig, 8);
  void* y = r.allocate(kBig, 8);
  std::thread a([&] {
    arm(HookPoint::remote_push_before_cas);
    r.deallocate(x, kBig, 8);
  });
  wait_until_stopped();
  std::thread([&] { r.deallocate(y, kBig, 8); }).join();  // pushes first
  let_it_go();
  a.join();
  BOOST_TEST(r.stats().chunks_released_by_other_threads == 2u);
  BOOST_TEST(counting.outstanding_chunks() == 2u);  // both wait on the owner's stack
  r.trim();                                         // the owner drains: both come home
  BOOST_TEST(counting.outstanding_chunks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_FIXTURE_TEST_CASE(push_racing_a_push_and_a_drain_aba_on_head_is_harmless, HookInstalled) {
  // Race: a pusher loads an empty head; meanwhile another chunk is pushed and the owner
  // drains the stack, so the head is empty again (ABA). The CAS succeeds with the value
  // it read, which is still the true head: nothing is lost or linked twice.
  CountingResource counting;
  ChunkProviderResource r(chunks_only(&counting));
  void* x = r.allocate(kBig, 8);
  void* y = r.allocate(kBig, 8);
  std::thread a([&] {
    arm(HookPoint::remote_push_before_cas);
    r.deallocate(x, kBig, 8);
  });
  wait_until_stopped();
  std::thread([&] { r.deallocate(y, kBig, 8); }).join();
  r.trim();  // the owner drains y
  BOOST_TEST(counting.outstanding_chunks() == 1u);
  let_it_go();
  a.join();
  r.trim();
  BOOST_TEST(counting.outstanding_chunks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

BOOST_FIXTURE_TEST_CASE(drain_racing_a_push, HookInstalled) {
  // Race: the owner is about to take the whole stack when a remote push lands. Either
  // the exchange takes the new chunk or it stays for the next drain; it is never lost.
  CountingResource counting;
  ChunkProviderResource r(chunks_only(&counting));
  void* x = r.allocate(kBig, 8);
  arm(HookPoint::remote_drain_before_take);
  std::thread remote([&] {
    wait_until_stopped();
    r.deallocate(x, kBig, 8);  // pushes while the owner is stopped before its exchange
    let_it_go();
  });
  void* z = r.allocate(kBig, 8);  // slow path: drains (and takes x)
  remote.join();
  BOOST_TEST(counting.outstanding_chunks() == 1u);  // only z: x came home and went back
  r.deallocate(z, kBig, 8);
  BOOST_TEST(counting.outstanding_chunks() == 0u);
}

namespace {

// The owner (a worker thread) stops right before reconciling its current chunk at
// retire; the main thread frees the chunk's only block at that moment or after.
void retire_race(bool free_during_pause) {
  CountingResource counting;
  // 64 KiB chunks and requests up to a whole chunk: one request can force a refill.
  ChunkProviderResource r(ResourceOptions{.upstream = &counting,
                                          .max_normal_alloc = 65472,
                                          .initial_chunk_bytes = 65536, .first_buffer = false});
  void* block = nullptr;
  std::binary_semaphore allocated{0};
  std::binary_semaphore refilled{0};
  std::binary_semaphore may_exit{0};
  std::thread owner([&] {
    block = r.allocate(100, 8);  // in the first chunk, which stays current
    allocated.release();
    arm(HookPoint::retire_before_reconcile);
    void* next = r.allocate(65400, 8);  // 65368 bytes left: the refill retires the first chunk
    refilled.release();
    r.deallocate(next, 65400, 8);
    may_exit.acquire();
  });
  allocated.acquire();
  wait_until_stopped();
  if (free_during_pause) r.deallocate(block, 100, 8);  // count: surplus - 1, not zero
  let_it_go();
  refilled.acquire();
  if (!free_during_pause) r.deallocate(block, 100, 8);  // count: 1 -> 0 here
  const auto s = r.stats();
  may_exit.release();
  owner.join();
  // Released exactly once, by the side that brought the count to zero.
  BOOST_TEST(s.chunks_released_by_owner + s.chunks_released_by_other_threads == 1u);
  BOOST_TEST(s.chunks_released_by_owner == (free_during_pause ? 1u : 0u));
  r.trim();
  BOOST_TEST(counting.outstanding_chunks() == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(retire_reconcile_racing_the_last_remote_free, HookInstalled) {
  // Race: the surplus refund at retire and a remote free of the chunk's last block.
  retire_race(true);   // the remote free lands before the refund: the owner releases
  retire_race(false);  // the refund lands first: the remote free releases
}

BOOST_FIXTURE_TEST_CASE(floor_bump_racing_a_remote_push, HookInstalled) {
  // Race: a remote thread empties a small chunk and is about to push it home while the
  // owner moves to larger classes (raising its cache floor). The straggler must go back
  // upstream when drained, never be cached or reused below the floor.
  CountingResource counting;
  ChunkProviderResource r(ResourceOptions{.upstream = &counting,
                                          .byte_budget = chunkpmr::test::kNoBlockBudget, .first_buffer = false});
  void* first = r.allocate(400, 8);  // fills the 512-byte chunk
  void* second = r.allocate(400, 8);  // class 1 current: the 512-byte chunk retires
  std::thread remote([&] {
    arm(HookPoint::last_free_before_push);
    r.deallocate(first, 400, 8);
  });
  wait_until_stopped();
  std::vector<void*> growth;  // refills to 2, 4, 8 KiB...: the floor rises above class 0
  for (int i = 0; i < 40; ++i) growth.push_back(r.allocate(400, 8));
  BOOST_TEST(counting.outstanding_chunks_of_size(8192) == 1u);
  let_it_go();
  remote.join();
  BOOST_TEST(counting.outstanding_chunks_of_size(512) == 1u);  // on the owner's stack
  void* big = r.allocate(20000, 8);  // a slow path (one-shot, within the budget)
  BOOST_TEST(counting.outstanding_chunks_of_size(512) == 0u);  // drained: back upstream...
  BOOST_TEST(r.stats().cached_chunks == 0u);                   // ...not cached
  r.deallocate(big, 20000, 8);
  for (void* p : growth) r.deallocate(p, 400, 8);
  r.deallocate(second, 400, 8);
}

namespace {

// A worker allocates two blocks and exits; one block sits alone in a retired chunk
// whose last free (on the main thread) races the worker's exit.
struct ExitRaceSetup {
  CountingResource counting;
  ChunkProviderResource r{chunks_only(&counting)};
  void* lone = nullptr;
};

void allocate_and_keep_live(ChunkProviderResource& r) {
  for (int i = 0; i < 100; ++i) static_cast<void>(r.allocate(200, 8));
  static_cast<void>(r.allocate(kBig, 8));
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(thread_exit_racing_a_remote_last_free, HookInstalled) {
  // The remote thread has brought the count to zero and stops before pushing; the
  // worker exits completely; the push then lands on the abandoned arena, where trim()
  // (or adoption, or destruction) finds it.
  ExitRaceSetup t;
  std::thread worker([&] {
    t.lone = t.r.allocate(kBig, 8);  // a one-shot chunk, owned by the worker's arena
  });
  worker.join();
  std::thread remote([&] {
    arm(HookPoint::last_free_before_push);
    t.r.deallocate(t.lone, kBig, 8);
  });
  wait_until_stopped();
  BOOST_TEST(t.counting.outstanding_chunks() == 1u);
  let_it_go();
  remote.join();
  BOOST_TEST(t.counting.outstanding_chunks() == 1u);  // waiting on the abandoned arena
  BOOST_TEST(t.r.stats().live_thread_arenas == 0u);
  t.r.trim();
  BOOST_TEST(t.counting.outstanding_chunks() == 0u);
}

BOOST_FIXTURE_TEST_CASE(resource_destroyed_while_its_thread_exits, HookInstalled) {
  // The worker is inside its exit hook, between giving up its caches and clearing its
  // liveness slot, when the resource (and the worker's arena with it) is destroyed.
  // The exit must touch nothing of the resource: ASan would see a use after free.
  CountingResource counting;
  auto* r = new ChunkProviderResource(chunks_only(&counting));
  std::thread worker([&] {
    allocate_and_keep_live(*r);
    arm(HookPoint::thread_exit_before_release);
  });
  wait_until_stopped();
  delete r;
  BOOST_TEST(counting.outstanding_blocks() == 0u);
  let_it_go();
  worker.join();
  BOOST_TEST(counting.outstanding_blocks() == 0u);
}

BOOST_FIXTURE_TEST_CASE(two_threads_adopt_the_same_abandoned_arena, HookInstalled) {
  // A and B both find the dead worker's arena; A stops before its CAS, B adopts the
  // arena; A's CAS then fails and A must get an arena of its own, never share B's.
  CountingResource counting;
  ChunkProviderResource r(chunks_only(&counting));
  std::thread([&] { r.deallocate(r.allocate(kBig, 8), kBig, 8); }).join();
  std::binary_semaphore b_done{0};
  std::binary_semaphore a_done{0};
  void* from_a = nullptr;
  void* from_b = nullptr;
  std::thread a([&] {
    arm(HookPoint::adopt_before_cas);
    from_a = r.allocate(64, 8);
    chunkpmr::test::fill_pattern(from_a, 64, 1);
    a_done.release();
    b_done.acquire();
  });
  wait_until_stopped();
  std::thread b([&] {
    from_b = r.allocate(64, 8);  // adopts the abandoned arena
    chunkpmr::test::fill_pattern(from_b, 64, 2);
    a_done.acquire();
    b_done.release();
  });
  // B adopts and then waits for A; let A lose its CAS now.
  while (r.stats().live_thread_arenas < 1) std::this_thread::yield();
  let_it_go();
  a.join();
  b.join();
  BOOST_TEST(r.stats().live_thread_arenas == 0u);
  BOOST_TEST(chunkpmr::test::check_pattern(from_a, 64, 1));
  BOOST_TEST(chunkpmr::test::check_pattern(from_b, 64, 2));
  BOOST_TEST(from_a != from_b);
  r.deallocate(from_a, 64, 8);
  r.deallocate(from_b, 64, 8);
}

BOOST_FIXTURE_TEST_CASE(trim_loses_an_abandoned_arena_to_an_adopter, HookInstalled) {
  // trim() finds the dead worker's arena and stops before taking it; a new thread
  // adopts the arena meanwhile and keeps using it. trim's CAS must fail, and it must
  // not touch the arena (it asks the new owner to trim instead).
  CountingResource counting;
  ChunkProviderResource r(chunks_only(&counting));
  std::thread([&] { r.deallocate(r.allocate(kBig, 8), kBig, 8); }).join();
  std::binary_semaphore adopted{0};
  std::binary_semaphore finish{0};
  std::thread trimmer([&] {
    arm(HookPoint::adopt_before_cas);
    r.trim();
  });
  wait_until_stopped();
  std::thread adopter([&] {
    void* p = r.allocate(kBig, 8);
    chunkpmr::test::fill_pattern(p, kBig, 3);
    adopted.release();
    finish.acquire();
    WORKER_CHECK(chunkpmr::test::check_pattern(p, kBig, 3));
    r.deallocate(p, kBig, 8);
  });
  adopted.acquire();
  let_it_go();
  trimmer.join();
  finish.release();
  adopter.join();
  BOOST_TEST(chunkpmr::test::worker_failures.load() == 0);
  r.trim();  // the adopter has exited: its arena is abandoned again and trimmed now
  BOOST_TEST(counting.outstanding_chunks() == 0u);
}

BOOST_FIXTURE_TEST_CASE(an_arena_being_trimmed_is_not_adopted, HookInstalled) {
  // Race: trim() has taken a dead thread's arena (its owner is now "busy") and stops
  // inside reclaim_abandoned; meanwhile a new thread attaches. A busy arena counts as
  // in use: the new thread must get an arena of its own, and trim's release of the
  // busy arena must not take an arena away from a running thread.
  CountingResource counting;
  ChunkProviderResource r(chunks_only(&counting));
  void* left = nullptr;
  std::thread([&] { left = r.allocate(100, 8); }).join();  // exits with a current chunk
  std::thread trimmer([&] {
    arm(HookPoint::retire_before_reconcile);
    r.trim();
  });
  wait_until_stopped();  // the dead thread's arena is busy, half reclaimed
  std::binary_semaphore allocated{0};
  std::binary_semaphore done{0};
  void* from_new = nullptr;
  std::thread newcomer([&] {
    from_new = r.allocate(100, 8);
    chunkpmr::test::fill_pattern(from_new, 100, 7);
    allocated.release();
    done.acquire();
    r.deallocate(from_new, 100, 8);
  });
  allocated.acquire();
  let_it_go();
  trimmer.join();
  BOOST_TEST(r.stats().live_thread_arenas == 1u);  // the newcomer's own arena
  BOOST_TEST(chunkpmr::test::check_pattern(from_new, 100, 7));
  done.release();
  newcomer.join();
  r.deallocate(left, 100, 8);
  r.trim();
  BOOST_TEST(r.stats().bytes_held == 0u);
  BOOST_TEST(counting.mismatched_deallocations() == 0u);
}
