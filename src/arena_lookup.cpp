// SPDX-License-Identifier: BSL-1.0
#include "arena_lookup.hpp"

#include "test_hooks.hpp"
#include "thread_arena.hpp"

namespace chunkpmr::detail {
namespace {

void remember(ThreadState& ts, const ResourceState& resource, ThreadArena* arena) noexcept {
  ts.mru_id = resource.id;
  ts.mru_arena = arena;
  ts.no_arena_id = 0;  // it may have said "no arena" for this resource
}

// Acquire: the list's links and each arena's construction were published by the
// release CAS in push_arena.
ThreadArena* first_arena(const ResourceState& resource) noexcept {
  return resource.arenas.load(std::memory_order_acquire);
}

ThreadArena* find_owned_by(const ResourceState& resource, std::uint64_t token) noexcept {
  for (ThreadArena* a = first_arena(resource); a != nullptr; a = a->next_in_resource()) {
    // Relaxed: only this thread ever stores its own token, so seeing it needs no order;
    // any other value just means "not ours".
    if (a->owner_token().load(std::memory_order_relaxed) == token) return a;
  }
  return nullptr;
}

// Moves `arena`'s owner from a value that is not a live thread's to `new_owner`.
bool try_take(ThreadArena* arena, std::uint64_t new_owner) noexcept {
  std::uint64_t owner = arena->owner_token().load(std::memory_order_relaxed);
  if (token_alive(owner)) return false;  // acquire inside: the dead owner's writes
  CHUNKPMR_TEST_HOOK(adopt_before_cas, arena);
  return arena->owner_token().compare_exchange_strong(owner, new_owner, std::memory_order_acquire,
                                                    std::memory_order_relaxed);
}

// An abandoned arena for `new_owner`: first the one that made the block the thread last
// freed before it had an arena (`preferred`): a thread that takes over another's blocks
// (a server's next generation, a pool's new thread) allocates as that one did, so that
// arena's chunks, ratchet and probe fit it, and its blocks' chunks come home. Another
// dead thread's arena would mix the pinned chunks of two workloads in one arena while
// the old ones die (larson: one arena's frames nearly doubled when two lanes swapped
// arenas).
ThreadArena* take_any(ResourceState& resource, std::uint64_t new_owner,
                      const ThreadArena* preferred = nullptr) noexcept {
  if (preferred != nullptr) {
    for (ThreadArena* a = first_arena(resource); a != nullptr; a = a->next_in_resource()) {
      if (a == preferred) {
        if (try_take(a, new_owner)) return a;
        break;
      }
    }
  }
  for (ThreadArena* a = first_arena(resource); a != nullptr; a = a->next_in_resource()) {
    if (try_take(a, new_owner)) return a;
  }
  return nullptr;
}

ThreadArena* create_and_push(ResourceState& resource, std::uint64_t owner) {
  // Upstream may be anything, another chunkpmr resource included: no lock is held here.
  ThreadArena* arena = ThreadArena::create(resource);
  arena->owner_token().store(owner, std::memory_order_relaxed);
  ThreadArena* head = resource.arenas.load(std::memory_order_relaxed);
  do {
    arena->set_next_in_resource(head);
  } while (!resource.arenas.compare_exchange_weak(head, arena, std::memory_order_release,
                                                  std::memory_order_relaxed));
  return arena;
}

}  // namespace

ThreadArena* find_own_arena(const ResourceState& resource) noexcept {
  ThreadState& ts = t_thread;
  ThreadArena* arena = ts.token != 0 ? find_owned_by(resource, ts.token) : nullptr;
  if (arena != nullptr) {
    remember(ts, resource, arena);
  } else {
    ts.no_arena_id = resource.id;
  }
  return arena;
}

ThreadArena* find_or_attach_arena(ResourceState& resource) {
  ThreadState& ts = t_thread;
  // The thread's cached entry first: a slow path after a fast-path miss (a full chunk,
  // an over-aligned request, which skips the fast path) needs no walk. The entry is
  // only ever set to an arena this thread owns, and cleared at its exit hook.
  if (ts.mru_id == resource.id) return ts.mru_arena;
  const std::uint64_t token = thread_token();
  if (token == 0 || ts.attaching_id == resource.id) return nullptr;
  ThreadArena* arena = find_owned_by(resource, token);
  if (arena == nullptr) arena = take_any(resource, token, ts.freed_from);
  if (arena == nullptr) {
    // Upstream may allocate from this very resource meanwhile: that nested call must
    // not create a second arena for this thread, so it borrows one instead.
    struct Attaching {
      ThreadState& ts;
      std::uint64_t previous;
      ~Attaching() { ts.attaching_id = previous; }
    } attaching{ts, ts.attaching_id};
    ts.attaching_id = resource.id;
    arena = create_and_push(resource, token);
  }
  remember(ts, resource, arena);
  return arena;
}

ThreadArena* begin_borrow(ResourceState& resource) {
  if (ThreadArena* arena = take_any(resource, kBusyToken)) return arena;
  return create_and_push(resource, kBusyToken);
}

void end_borrow(ThreadArena* arena) noexcept {
  // Release: the next user of the arena (its acquire CAS) sees what this one did.
  arena->owner_token().store(kNoOwner, std::memory_order_release);
}

bool try_take_abandoned(ThreadArena* arena) noexcept { return try_take(arena, kBusyToken); }

bool arena_owned_by_running_thread(const ThreadArena* arena) noexcept {
  const std::uint64_t owner = arena->owner_token().load(std::memory_order_relaxed);
  return owner != kBusyToken && token_alive(owner);
}

}  // namespace chunkpmr::detail
