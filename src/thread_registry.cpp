#include "thread_registry.hpp"

#include "test_hooks.hpp"
#include "thread_arena.hpp"

#include <pthread.h>

namespace chunkpmr::detail {

constinit thread_local ThreadSlots t_slots CHUNKPMR_INITIAL_EXEC_TLS{};
constinit std::mutex g_lifetime_mutex;

namespace {

std::atomic<std::uint64_t> g_next_resource_id{1};
ResourceState* g_live_resources = nullptr;  // guarded by g_lifetime_mutex

pthread_key_t g_exit_key;
bool g_exit_key_ok = false;
pthread_once_t g_exit_key_once = PTHREAD_ONCE_INIT;

bool is_live_locked(const ThreadSlot& slot) noexcept {
  for (ResourceState* r = g_live_resources; r != nullptr; r = r->live_next) {
    if (r == slot.resource) return r->id == slot.id;
  }
  return false;
}

void register_resource_locked(ResourceState& resource) noexcept {
  if (resource.registered) return;
  resource.live_prev = nullptr;
  resource.live_next = g_live_resources;
  if (g_live_resources != nullptr) g_live_resources->live_prev = &resource;
  g_live_resources = &resource;
  resource.registered = true;
}

void detach_locked(ResourceState& resource, ThreadArena* arena) noexcept {
  arena->detach_from_thread();
  arena->attached = false;
  arena->next_detached = resource.detached_arenas;
  resource.detached_arenas = arena;
}

// A thread's exit: runs after the thread's C++ thread_local destructors (glibc calls
// pthread key destructors after them), so blocks those destructors free or allocate
// still use the thread's arenas. Allocation after this point takes the fallback arena.
void on_thread_exit(void*) noexcept {
  ThreadSlots& ts = t_slots;
  ts.torn_down = true;
  ts.mru_id = 0;
  ts.mru_arena = nullptr;
  std::lock_guard lock(g_lifetime_mutex);
  for (ThreadSlot& slot : ts.slots) {
    if (slot.id != 0 && is_live_locked(slot)) {
      CHUNKPMR_TEST_HOOK(thread_exit_before_detach, slot.arena);
      detach_locked(*slot.resource, slot.arena);
    }
    slot = ThreadSlot{};
  }
}

void create_exit_key() noexcept {
  g_exit_key_ok = pthread_key_create(&g_exit_key, &on_thread_exit) == 0;
}

// False if no exit hook can be had: the thread then must not own arenas.
bool arm_exit_hook(ThreadSlots& ts) noexcept {
  if (ts.exit_hook_armed) return true;
  pthread_once(&g_exit_key_once, &create_exit_key);
  if (!g_exit_key_ok || pthread_setspecific(g_exit_key, &ts) != 0) return false;
  ts.exit_hook_armed = true;
  return true;
}

void remember(ThreadSlots& ts, ThreadSlot& slot) noexcept {
  slot.last_use = ++ts.use_clock;
  ts.mru_id = slot.id;
  ts.mru_arena = slot.arena;
}

// Puts `arena` into a slot of the calling thread: an empty one, else one left by a
// dead resource, else the least recently used one, whose arena is detached (it will
// be adopted again if this thread comes back to that resource).
void attach_locked(ThreadSlots& ts, ResourceState& resource, ThreadArena* arena) noexcept {
  ThreadSlot* victim = &ts.slots[0];
  for (ThreadSlot& slot : ts.slots) {
    if (slot.id == 0 || !is_live_locked(slot)) {
      victim = &slot;
      break;
    }
    if (slot.last_use < victim->last_use) victim = &slot;
  }
  if (victim->id != 0 && is_live_locked(*victim)) detach_locked(*victim->resource, victim->arena);
  register_resource_locked(resource);
  arena->attached = true;
  *victim = ThreadSlot{resource.id, &resource, arena, 0};
  remember(ts, *victim);
  ts.no_arena_id = 0;  // it may have said "no arena" for this resource
}

}  // namespace

std::uint64_t new_resource_id() noexcept {
  return g_next_resource_id.fetch_add(1, std::memory_order_relaxed);
}

ThreadArena* find_arena(const ResourceState& resource) noexcept {
  ThreadSlots& ts = t_slots;
  for (ThreadSlot& slot : ts.slots) {
    if (slot.id == resource.id && slot.resource == &resource) {
      remember(ts, slot);
      return slot.arena;
    }
  }
  ts.no_arena_id = resource.id;
  return nullptr;
}

ThreadArena* find_or_attach_arena(ResourceState& resource) {
  if (ThreadArena* arena = find_arena(resource)) return arena;
  ThreadSlots& ts = t_slots;
  if (ts.torn_down || !arm_exit_hook(ts)) return nullptr;
  {
    std::lock_guard lock(g_lifetime_mutex);
    if (ThreadArena* adopted = resource.detached_arenas) {
      resource.detached_arenas = adopted->next_detached;
      adopted->next_detached = nullptr;
      attach_locked(ts, resource, adopted);
      return adopted;
    }
  }
  // Upstream may be anything (even another chunkpmr resource): never call it under
  // the lifetime mutex where it could allocate.
  ThreadArena* created = ThreadArena::create(resource);
  std::lock_guard lock(g_lifetime_mutex);
  created->next_in_resource = resource.arenas;
  resource.arenas = created;
  attach_locked(ts, resource, created);
  return created;
}

void unregister_resource_locked(ResourceState& resource) noexcept {
  if (!resource.registered) return;
  if (resource.live_prev != nullptr) {
    resource.live_prev->live_next = resource.live_next;
  } else {
    g_live_resources = resource.live_next;
  }
  if (resource.live_next != nullptr) resource.live_next->live_prev = resource.live_prev;
  resource.live_prev = resource.live_next = nullptr;
  resource.registered = false;
}

}  // namespace chunkpmr::detail
