// SPDX-License-Identifier: BSL-1.0
#include "test_hooks.hpp"

#ifdef CHUNKPMR_TEST_HOOKS

#include <atomic>

namespace chunkpmr::detail {
namespace {
std::atomic<TestHook> g_hook{nullptr};
}

void set_test_hook(TestHook hook) noexcept { g_hook.store(hook, std::memory_order_release); }

void run_test_hook(HookPoint point, const void* subject) noexcept {
  if (TestHook hook = g_hook.load(std::memory_order_acquire)) hook(point, subject);
}

}  // namespace chunkpmr::detail

#endif
