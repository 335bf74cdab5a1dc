// SPDX-License-Identifier: BSL-1.0
// chunkpmr — who the calling thread is, and whether a thread seen earlier still runs.
//
// Every thread that owns an arena has a *token*: a process-wide unique 64-bit number,
// never reused, whose low 16 bits name a slot of a fixed, static liveness table. The
// slot holds the token while the thread runs; the thread's exit hook clears it. So
// "does the thread that owns this arena still run?" is one load, in O(1), with no
// registry of threads or resources and no lock:
//
//     alive(token)  <=>  g_thread_slots[token & 0xFFFF] == token
//
// A slot is reused by a later thread, but with a new token, so a stale token can never
// look alive again (no ABA).
//
// Thread exit therefore costs O(1) whatever the thread used: it clears its slot and
// its one-entry caches, nothing else. Its arenas stay where they are, each tagged with
// the dead token, and whoever next needs an arena for that resource adopts one
// (arena_lookup.hpp). Nothing the exit hook does calls upstream, takes a lock, or
// touches memory that a resource destructor on another thread could free.
//
// Per-thread state is one trivially destructible thread_local (no TLS guard, no
// destructor registration), read by the allocation fast path with one %fs-relative
// load (initial-exec model, also when built position-independent).
#pragma once

#include <cstdint>

namespace chunkpmr::detail {

class ThreadArena;

// A token value that is never a thread's: "this arena is being worked on by someone
// who is not its owner" (a trim of an abandoned arena, or a thread past its exit hook
// borrowing it). Thread tokens are >= 1 << 16, and 0 means "owned by nobody".
inline constexpr std::uint64_t kNoOwner = 0;
inline constexpr std::uint64_t kBusyToken = 1;

struct ThreadState {
  // One-entry cache of the allocation fast path: the resource id last used and this
  // thread's arena for it. Resource ids are never reused (release() takes a new one),
  // so an entry left by a destroyed resource never matches again and needs no cleanup.
  std::uint64_t mru_id;  // 0: none (ids start at 1)
  ThreadArena* mru_arena;
  // The last resource this thread was found to have no arena for: a thread that only
  // frees a resource's blocks (a consumer) skips the arena search on each free.
  // Cleared whenever this thread gets an arena.
  std::uint64_t no_arena_id;
  // The arena that made the block this thread last freed while it had no arena of that
  // block's resource: the first arena it tries to adopt (arena_lookup.cpp). Only ever
  // compared with the arenas of a resource, never followed.
  const ThreadArena* freed_from;
  std::uint64_t token;  // 0: none yet, or torn down
  // Resource ids are handed out to each thread in batches: creating a resource does
  // not touch a shared cache line.
  std::uint64_t next_resource_id;
  // The resource this thread is creating an arena for right now (its upstream is being
  // asked for the arena's memory): a nested allocation from that upstream borrows.
  std::uint64_t attaching_id;
  std::uint32_t resource_ids_left;  // of the batch next_resource_id is in
  bool exit_hook_armed;
  bool torn_down;  // the exit hook ran: this thread owns no arena any more
};

#define CHUNKPMR_INITIAL_EXEC_TLS __attribute__((tls_model("initial-exec")))
extern constinit thread_local ThreadState t_thread CHUNKPMR_INITIAL_EXEC_TLS;

// The calling thread's token, acquiring a slot and arming the exit hook on first use.
// 0 if the thread is past its exit hook, if no exit hook can be armed, or if every slot
// is taken (more than 65535 threads at once): such a thread borrows arenas instead of
// owning one. Lock-free; O(threads running now) on the first call of a thread.
std::uint64_t thread_token() noexcept;

// Whether the thread holding `token` may still use what it owns. kBusyToken counts as
// alive (someone is using the arena); kNoOwner does not.
bool token_alive(std::uint64_t token) noexcept;

// A fresh resource id, never used before in this process.
std::uint64_t new_resource_id() noexcept;

}  // namespace chunkpmr::detail
