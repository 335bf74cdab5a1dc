// SPDX-License-Identifier: BSL-1.0
// chunkpmr — test-only interleaving points.
//
// A build with CHUNKPMR_TEST_HOOKS defined (the `chunkpmr_hooked` library, used only by
// test/test_interleavings.cpp) calls a test-installed function at each point below, so
// a test can stop one thread exactly there while another thread does the racing step.
// In every other build CHUNKPMR_TEST_HOOK expands to nothing.
#pragma once

namespace chunkpmr::detail {

enum class HookPoint {
  remote_push_before_cas,      // RemoteChunkStack::push, head loaded, before the CAS
  remote_drain_before_take,    // ThreadArena::take_remote_chunks, before the exchange
  retire_before_reconcile,     // retire_current, before fetch_sub(unused_credit)
  last_free_before_push,       // release_reference, count reached zero, before the push
  thread_exit_before_release,  // thread exit hook, before the thread's slot is cleared
  adopt_before_cas,            // arena_lookup try_take: owner seen gone, before the CAS
};

#ifdef CHUNKPMR_TEST_HOOKS
using TestHook = void (*)(HookPoint point, const void* subject);
// Installs (or, with nullptr, removes) the hook. Not synchronised with running hooks:
// install before starting the threads, remove after joining them.
void set_test_hook(TestHook hook) noexcept;
void run_test_hook(HookPoint point, const void* subject) noexcept;
#define CHUNKPMR_TEST_HOOK(point, subject) \
  ::chunkpmr::detail::run_test_hook(::chunkpmr::detail::HookPoint::point, subject)
#else
#define CHUNKPMR_TEST_HOOK(point, subject) static_cast<void>(0)
#endif

}  // namespace chunkpmr::detail
