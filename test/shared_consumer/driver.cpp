// SPDX-License-Identifier: BSL-1.0
// Loads the plugin given as argv[1] with dlopen(), calls into it from this thread and
// another, checks that it exports nothing of chunkpmr, and dlclose()s it while the
// other thread, which used chunkpmr inside the plugin, still runs; then lets that
// thread exit (the plugin's thread-exit hook runs then, so the plugin must still be
// mapped: chunkpmr pins it once a thread has used it).
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <thread>

#include <dlfcn.h>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAILED: %s\n", what);
    ++failures;
  }
}

template <class F>
F* symbol(void* handle, const char* name) {
  void* p = dlsym(handle, name);
  if (p == nullptr) std::printf("FAILED: dlsym(%s): %s\n", name, dlerror());
  return reinterpret_cast<F*>(p);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::printf("usage: %s path/to/chunkpmr_plugin.so\n", argv[0]);
    return 2;
  }
  const char* path = argv[1];
  // Control: a plugin that has not used chunkpmr yet is really unloaded by dlclose(),
  // so that "still loaded" below is chunkpmr's doing (RTLD_NODELETE once used).
  void* unused = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (unused == nullptr) {
    std::printf("FAILED: dlopen(%s): %s\n", path, dlerror());
    return 1;
  }
  check(dlclose(unused) == 0, "dlclose of the unused plugin");
  check(dlopen(path, RTLD_NOW | RTLD_NOLOAD) == nullptr,
        "a plugin that never used chunkpmr is unloaded by dlclose() (STB_GNU_UNIQUE symbols?)");

  void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    std::printf("FAILED: dlopen(%s): %s\n", path, dlerror());
    return 1;
  }
  auto* run = symbol<int(int)>(handle, "plugin_run");
  auto* use_here = symbol<std::uint64_t(int)>(handle, "plugin_use_on_this_thread");
  auto* expected = symbol<std::uint64_t(int)>(handle, "plugin_expected");
  if (run == nullptr || use_here == nullptr || expected == nullptr) return 1;

  // Static chunkpmr in a plugin stays private to it.
  check(dlsym(handle, "_ZN8chunkpmr21ChunkProviderResourceC1Ev") == nullptr,
        "the plugin must not export chunkpmr::ChunkProviderResource");

  check(run(3) == 0, "plugin_run on the main thread");
  check(use_here(2) == expected(2), "plugin_use_on_this_thread on the main thread");

  // A thread of the driver's own uses chunkpmr in the plugin, then waits, still
  // running, until the plugin has been dlclose()d.
  std::mutex mutex;
  std::condition_variable changed;
  bool used = false;
  bool closed = false;
  std::uint64_t got = 0;
  std::thread user([&] {
    got = use_here(4);
    check(run(1) == 0, "plugin_run on a driver thread");
    std::unique_lock lock(mutex);
    used = true;
    changed.notify_all();
    changed.wait(lock, [&] { return closed; });
  });  // exits after the dlclose below: the plugin's exit hook runs then
  {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return used; });
  }
  check(got == expected(4), "plugin_use_on_this_thread on a driver thread");
  check(dlclose(handle) == 0, "dlclose");
  {
    std::lock_guard lock(mutex);
    closed = true;
  }
  changed.notify_all();
  user.join();

  // Once used, the plugin is pinned (RTLD_NODELETE): still loaded after dlclose().
  void* again = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
  check(again != nullptr, "the plugin stays loaded after dlclose() once a thread used it");
  if (again != nullptr) {
    auto* run_again = symbol<int(int)>(again, "plugin_run");
    check(run_again != nullptr && run_again(1) == 0, "plugin_run after dlclose and dlopen");
    dlclose(again);
  }

  if (failures != 0) return 1;
  std::printf("shared consumer ok: plugin used on the main thread, its own threads and a driver thread, dlclose()d while that thread ran\n");
  return 0;
}
