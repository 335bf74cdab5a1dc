// SPDX-License-Identifier: BSL-1.0
// chunkpmr — how a thread finds its arena for a resource, without any lock.
//
// Each resource keeps a lock-free, append-only list of its arenas (`arenas`, pushed
// with a CAS, never unlinked while the resource lives). Each arena carries an atomic
// owner token (thread_identity.hpp): the token of the thread it belongs to, kNoOwner,
// or kBusyToken.
//
//  - Lookup: the thread's one-entry cache (resource id -> arena) first; on a miss, walk
//    the list for the arena whose owner is the calling thread's token. The list is as
//    long as the number of threads using the resource at once (arenas are reused), so
//    a thread may use any number of resources with no table to overflow.
//  - Attach: adopt an arena whose owner is gone (dead token, or kNoOwner) with one
//    CAS of its owner; else create one (memory from upstream, no lock held, so
//    upstream may itself use chunkpmr) and push it.
//  - A thread past its exit hook owns nothing: each of its allocations *borrows* an
//    arena (CAS to kBusyToken, allocate, store kNoOwner), and never caches it.
//
// Who may use an arena's non-atomic state: the thread whose live token is in `owner`,
// or whoever moved `owner` to kBusyToken. Ownership changes only by a CAS from a value
// that is not a live thread's token, so it never changes under a running owner.
// Orders: a new arena's owner is stored before the release CAS that publishes it;
// adoption reads the dead owner's slot with acquire (see thread_identity.cpp) and takes
// the arena with an acquire CAS (pairing with the release store of kNoOwner by a
// borrower or trimmer), so the adopter sees every write of the previous user.
#pragma once

#include "thread_identity.hpp"

#include <chunkpmr/detail/resource_state.hpp>

namespace chunkpmr::detail {

class ThreadArena;

// The calling thread's arena for `resource`, or nullptr (remembered in no_arena_id).
// Never attaches; O(arenas of the resource).
ThreadArena* find_own_arena(const ResourceState& resource) noexcept;

// find_own_arena with both one-entry caches checked inline first: the free path.
inline ThreadArena* arena_for_free(const ResourceState& resource) noexcept {
  const ThreadState& ts = t_thread;
  if (ts.mru_id == resource.id) return ts.mru_arena;
  if (ts.no_arena_id == resource.id) return nullptr;
  return find_own_arena(resource);
}

// The calling thread's arena for `resource`, attaching one if needed, and made the
// thread's cached entry. nullptr if the thread cannot own one (see thread_token()):
// the caller then borrows. Throws what upstream throws.
ThreadArena* find_or_attach_arena(ResourceState& resource);

// An arena of `resource` that nobody else uses until end_borrow (owner kBusyToken),
// created if there is none to take. Throws what upstream throws.
ThreadArena* begin_borrow(ResourceState& resource);
void end_borrow(ThreadArena* arena) noexcept;

// Takes `arena` for exclusive use if its owner is gone (owner becomes kBusyToken);
// false if a live thread owns it or someone else is using it.
bool try_take_abandoned(ThreadArena* arena) noexcept;

// Whether `arena` belongs to a thread that still runs (not a borrower, not nobody).
bool arena_owned_by_running_thread(const ThreadArena* arena) noexcept;

}  // namespace chunkpmr::detail
