#include "chunk_source.hpp"

#include "check.hpp"

#include <new>

namespace chunkpmr::detail {

// The budget is only a counter: no other memory is published through it, so relaxed
// operations suffice. The CAS makes check-and-add one step, so two threads cannot both
// pass the check for the last bytes.
bool reserve_budget(ResourceState& resource, std::size_t bytes) noexcept {
  std::size_t held = resource.bytes_held.load(std::memory_order_relaxed);
  do {
    if (bytes > resource.byte_budget || held > resource.byte_budget - bytes) return false;
  } while (!resource.bytes_held.compare_exchange_weak(held, held + bytes,
                                                       std::memory_order_relaxed));
  const std::size_t now = held + bytes;
  std::size_t peak = resource.peak_bytes_held.load(std::memory_order_relaxed);
  while (now > peak && !resource.peak_bytes_held.compare_exchange_weak(
                           peak, now, std::memory_order_relaxed)) {
  }
  return true;
}

void release_budget(ResourceState& resource, std::size_t bytes) noexcept {
  resource.bytes_held.fetch_sub(bytes, std::memory_order_relaxed);
}

ChunkHeader* obtain_chunk(ResourceState& resource, std::size_t total_bytes,
                          unsigned size_class, ThreadArena* owner) {
  void* memory = resource.upstream->allocate(total_bytes, kChunkAlign);
  if ((reinterpret_cast<std::uintptr_t>(memory) & (kChunkAlign - 1)) != 0) {
    // Masking would find garbage: refuse the block rather than corrupt memory later.
    resource.upstream->deallocate(memory, total_bytes, kChunkAlign);
    throw std::bad_alloc();
  }
  auto* chunk = ::new (memory) ChunkHeader;
  chunk->refcount.store(0, std::memory_order_relaxed);
  chunk->cookie = ChunkHeader::cookie_for(chunk);
  chunk->next.store(nullptr, std::memory_order_relaxed);
  chunk->owner = owner;
  chunk->held_prev = nullptr;
  chunk->held_next = nullptr;
  chunk->total_bytes = total_bytes;
  chunk->size_class = size_class;
  return chunk;
}

void return_chunk(ResourceState& resource, ChunkHeader* chunk) noexcept {
  const std::size_t total = chunk->total_bytes;
  // Poison the cookie so a stale free of this chunk trips the debug check.
  chunk->cookie = 0;
  chunk->~ChunkHeader();
  resource.upstream->deallocate(chunk, total, kChunkAlign);
  release_budget(resource, total);
}

}  // namespace chunkpmr::detail
