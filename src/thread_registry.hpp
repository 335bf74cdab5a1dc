// chunkpmr — which arena a thread uses for a resource, and what happens at thread exit.
//
// Each thread has a small fixed table of (resource id, arena) slots in trivially
// destructible thread_local storage (no allocation, no TLS guard on access), plus a
// one-entry most-recently-used cache that the allocation fast path checks. Resource ids
// are never reused, so an entry left behind by a destroyed or released resource can
// never match again and needs no cleanup.
//
// The lifetime mutex (process-wide) orders every change of who uses an arena: a
// thread attaching to a resource, a thread exiting, a slot being evicted, and a
// resource being released or destroyed. A thread that exits only touches arenas of
// resources still on the live list, checked under that mutex, so it never touches an
// arena freed by a resource destructor on another thread. None of this is on a hot
// path: a thread takes the mutex once per resource it starts using and once at exit.
#pragma once

#include <chunkpmr/detail/resource_state.hpp>

#include <cstdint>
#include <mutex>

namespace chunkpmr::detail {

class ThreadArena;

inline constexpr unsigned kSlotsPerThread = 8;

struct ThreadSlot {
  std::uint64_t id;
  ResourceState* resource;  // compared, never dereferenced unless on the live list
  ThreadArena* arena;
  std::uint64_t last_use;
};

struct ThreadSlots {
  std::uint64_t mru_id;     // 0: none (ids start at 1)
  ThreadArena* mru_arena;
  // The last resource find_arena found no arena for: a thread that only frees blocks of
  // a resource (a consumer) skips the slot scan on each free. Only attach_locked can
  // make it wrong, and it clears it.
  std::uint64_t no_arena_id;
  ThreadSlot slots[kSlotsPerThread];
  std::uint64_t use_clock;
  bool exit_hook_armed;
  bool torn_down;  // the exit hook ran: this thread gets no arena any more
};

// initial-exec: the allocation fast path reads this with one %fs-relative load even
// when the library is built position-independent (no __tls_get_addr call). The cost is
// that a shared object containing chunkpmr must be loaded at program start or fit the
// small static TLS surplus when dlopen()ed, as with other allocators using this model.
#define CHUNKPMR_INITIAL_EXEC_TLS __attribute__((tls_model("initial-exec")))
extern constinit thread_local ThreadSlots t_slots CHUNKPMR_INITIAL_EXEC_TLS;

extern std::mutex g_lifetime_mutex;

std::uint64_t new_resource_id() noexcept;

// The calling thread's arena for `resource`, or nullptr (remembered in no_arena_id).
// No lock.
ThreadArena* find_arena(const ResourceState& resource) noexcept;

// find_arena with both one-entry caches checked inline first: the free path.
inline ThreadArena* arena_for_free(const ResourceState& resource) noexcept {
  const ThreadSlots& ts = t_slots;
  if (ts.mru_id == resource.id) return ts.mru_arena;
  if (ts.no_arena_id == resource.id) return nullptr;
  return find_arena(resource);
}

// The calling thread's arena for `resource`, attaching one (adopting a detached arena
// or creating one from upstream) if needed. nullptr if the thread is past its exit
// hook. Throws what upstream throws.
ThreadArena* find_or_attach_arena(ResourceState& resource);

// Resource teardown (lifetime mutex held): after this no exiting thread touches the
// resource's arenas.
void unregister_resource_locked(ResourceState& resource) noexcept;

}  // namespace chunkpmr::detail
