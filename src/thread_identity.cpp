// SPDX-License-Identifier: BSL-1.0
#include "thread_identity.hpp"

#include "test_hooks.hpp"

#include <atomic>
#include <cstddef>

#include <dlfcn.h>
#include <pthread.h>

namespace chunkpmr::detail {

constinit thread_local ThreadState t_thread CHUNKPMR_INITIAL_EXEC_TLS{};

// The static TLS a dlopen()ed library containing chunkpmr needs (docs/DESIGN.md and
// docs/CHOOSING.md state it).
static_assert(sizeof(ThreadState) == 64, "update the TLS size the docs state");

namespace {

constexpr unsigned kSlotBits = 16;
constexpr std::size_t kSlots = std::size_t{1} << kSlotBits;
constexpr std::uint64_t kSlotMask = kSlots - 1;
constexpr std::uint32_t kResourceIdBatch = 1024;

// The liveness table (static storage: 512 KiB of address space, of which only the
// pages of slots actually used are ever touched). Slot 0 is never handed out, so no
// thread token is below 1 << 16 and kNoOwner / kBusyToken cannot collide with one.
//
// Orders: a thread takes a free slot with an acq_rel CAS (0 -> token) and gives it
// back at exit with a release store of 0. An adopter that loads the slot with acquire
// and sees anything but the dead thread's token therefore sees everything the dead
// thread did before its exit: the slot's later values are either that release store,
// or a CAS that read it (acq_rel, so the chain of happens-before carries on through
// each later owner of the slot, to their own release store).
constinit std::atomic<std::uint64_t> g_thread_slots[kSlots]{};
constinit std::atomic<std::uint64_t> g_next_serial{1};
constinit std::atomic<std::uint64_t> g_next_resource_id{1};

pthread_key_t g_exit_key;
bool g_exit_key_ok = false;
pthread_once_t g_exit_key_once = PTHREAD_ONCE_INIT;

// Runs at thread exit, after the thread's C++ thread_local destructors (glibc runs
// pthread key destructors after them), so containers those destructors free still use
// the thread's arenas. From here on the thread owns nothing: later allocations (from
// other pthread key destructors) borrow an arena for each call, frees take the path of
// a thread that has no arena. O(1): the arenas this thread owned are adopted lazily.
void on_thread_exit(void*) noexcept {
  ThreadState& ts = t_thread;
  ts.torn_down = true;
  ts.mru_id = 0;
  ts.mru_arena = nullptr;
  ts.no_arena_id = 0;
  const std::uint64_t token = ts.token;
  ts.token = 0;
  CHUNKPMR_TEST_HOOK(thread_exit_before_release, &ts);
  if (token != 0) g_thread_slots[token & kSlotMask].store(0, std::memory_order_release);
}

void create_exit_key() noexcept {
  g_exit_key_ok = pthread_key_create(&g_exit_key, &on_thread_exit) == 0;
}

// The key's destructor is code of the object chunkpmr is linked into. If that object
// is a dlopen()ed library, a dlclose() while a thread that used chunkpmr still runs
// would leave the destructor pointing at unmapped code, and the thread would crash
// when it exits. So once a thread has armed the hook, the object is pinned
// (RTLD_NODELETE): dlclose() then leaves it mapped. The handle is kept on purpose.
// dladdr and dlopen take the dynamic loader's lock: never while holding anything of
// ours (not inside pthread_once), or a thread inside dlopen() running a constructor
// that allocates from chunkpmr would wait for us while we wait for it. Two threads may
// both pin: harmless.
std::atomic<bool> g_pinned{false};
void pin_this_object() noexcept {
  if (g_pinned.load(std::memory_order_relaxed) || g_pinned.exchange(true, std::memory_order_relaxed)) {
    return;
  }
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&on_thread_exit), &info) != 0 && info.dli_fname != nullptr) {
    static_cast<void>(dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE));
  }
}

bool arm_exit_hook(ThreadState& ts) noexcept {
  if (ts.exit_hook_armed) return true;
  pthread_once(&g_exit_key_once, &create_exit_key);
  if (!g_exit_key_ok || pthread_setspecific(g_exit_key, &ts) != 0) return false;
  ts.exit_hook_armed = true;
  pin_this_object();
  return true;
}

}  // namespace

std::uint64_t thread_token() noexcept {
  ThreadState& ts = t_thread;
  if (ts.token != 0) return ts.token;
  if (ts.torn_down || !arm_exit_hook(ts)) return 0;
  const std::uint64_t serial = g_next_serial.fetch_add(1, std::memory_order_relaxed);
  // The first free slot: O(threads running now), once per thread.
  for (std::uint64_t slot = 1; slot < kSlots; ++slot) {
    std::uint64_t expected = 0;
    if (g_thread_slots[slot].load(std::memory_order_relaxed) != 0) continue;
    const std::uint64_t token = (serial << kSlotBits) | slot;
    if (g_thread_slots[slot].compare_exchange_strong(expected, token, std::memory_order_acq_rel,
                                                      std::memory_order_relaxed)) {
      ts.token = token;
      return token;
    }
  }
  return 0;
}

bool token_alive(std::uint64_t token) noexcept {
  if (token == kBusyToken) return true;
  if (token == kNoOwner) return false;
  return g_thread_slots[token & kSlotMask].load(std::memory_order_acquire) == token;
}

std::uint64_t new_resource_id() noexcept {
  ThreadState& ts = t_thread;
  if (ts.resource_ids_left == 0) {
    ts.next_resource_id =
        g_next_resource_id.fetch_add(kResourceIdBatch, std::memory_order_relaxed);
    ts.resource_ids_left = kResourceIdBatch;
  }
  --ts.resource_ids_left;
  return ts.next_resource_id++;
}

}  // namespace chunkpmr::detail
