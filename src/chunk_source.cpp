// SPDX-License-Identifier: BSL-1.0
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

namespace {

// A chunk that is one upstream request of its own: `block` as upstream gave it,
// total_bytes of it, `alignment` as asked. Poisons the cookie so a stale free into the
// chunk trips the debug check.
void give_back_own_request(ResourceState& resource, ChunkHeader* header, void* block,
                           std::size_t alignment) noexcept {
  const std::size_t total = header->total_bytes;
  header->cookie = 0;
  header->~ChunkHeader();
  resource.upstream->deallocate(block, total, alignment);
  release_budget(resource, total);
}

// An over-aligned block's header sits after the block, at the end of the request, and
// records log2 of the alignment in slots_carved.
void return_over_aligned(ResourceState& resource, ChunkHeader* header) noexcept {
  void* block = reinterpret_cast<void*>(header->base() - (header->total_bytes - kHeaderBytes));
  give_back_own_request(resource, header, block, std::size_t{1} << header->slots_carved);
}

}  // namespace

bool upstream_honoured_alignment(const void* memory, std::size_t alignment) noexcept {
  // memory_resource::allocate is declared to return memory aligned as asked
  // (libstdc++ marks it __alloc_align__), so the compiler may fold a plain test of the
  // address to "aligned". The empty asm hides where the value came from.
  auto address = reinterpret_cast<std::uintptr_t>(memory);
  asm("" : "+r"(address));
  return (address & (alignment - 1)) == 0;
}

ChunkHeader* init_header(ChunkHeader* chunk, std::size_t total_bytes, unsigned size_class,
                         ThreadArena* owner) noexcept {
  // The region fields (set by whoever made the header) are left as they are.
  chunk->refcount.store(0, std::memory_order_relaxed);
  chunk->cookie = ChunkHeader::cookie_for(chunk);
  chunk->next.store(nullptr, std::memory_order_relaxed);
  chunk->owner = owner;
  chunk->held_prev = nullptr;
  chunk->held_next = nullptr;
  chunk->total_bytes = total_bytes;
  chunk->size_class = static_cast<std::uint8_t>(size_class);
  chunk->slots_carved = 0;  // a frame's header may hold an earlier use's
  return chunk;
}

void* allocate_reserved(ResourceState& resource, std::size_t bytes, std::size_t alignment) {
  void* memory;
  try {
    memory = resource.upstream->allocate(bytes, alignment);
  } catch (...) {
    release_budget(resource, bytes);
    throw;
  }
  if (!upstream_honoured_alignment(memory, alignment)) {
    // Masking (or the first block) would be wrong: refuse the memory rather than
    // corrupt anything later.
    resource.upstream->deallocate(memory, bytes, alignment);
    release_budget(resource, bytes);
    throw std::bad_alloc();
  }
  return memory;
}

ChunkHeader* obtain_chunk(ResourceState& resource, std::size_t total_bytes,
                          unsigned size_class, ThreadArena* owner) {
  void* memory = allocate_reserved(resource, total_bytes, kChunkAlign);
  return init_header(::new (memory) ChunkHeader{}, total_bytes, size_class, owner);
}

ChunkHeader* carve_chunk(ChunkHeader* block, std::size_t offset, unsigned size_class,
                         ThreadArena* owner) noexcept {
  // A small-class block's places start at class_bytes(size_class); a class frame's at
  // its multiples, place 0 past the frame's header.
  const std::size_t bytes = block->size_class == kSmallBlockClass
                                ? class_bytes(size_class)
                                : class_frame_chunk_bytes(offset, class_bytes(size_class));
  CHUNKPMR_ASSERT(block->size_class >= kClassFrameBase && is_small_class(size_class) &&
                      offset >= kHeaderBytes && offset + bytes <= kChunkAlign &&
                      (block->size_class == kSmallBlockClass
                           ? offset == class_bytes(size_class)
                           : offset == kFirstPlaceOffset || offset % class_bytes(size_class) == 0),
                  "chunkpmr: carving a non-small class, from a non-block, out of it or off its places");
  // Relaxed: the block's count is only touched by whoever uses its arena (see
  // chunk_header.hpp), never by two threads at once.
  block->refcount.store(block->refcount.load(std::memory_order_relaxed) + 1,
                        std::memory_order_relaxed);
  return init_header(::new (reinterpret_cast<void*>(block->base() + offset)) ChunkHeader{},
                     bytes, size_class, owner);
}

void return_chunk(ResourceState& resource, FrameSource& frames, ChunkHeader* chunk) noexcept {
  if (chunk->size_class == kOverAlignedClass) {
    return_over_aligned(resource, chunk);
  } else if (chunk->is_carved()) {
    chunk->cookie = 0;
    chunk->~ChunkHeader();
    release_block_reference(resource, frames, frame_of(chunk->base()));
  } else if (chunk->in_region()) {
    frames.give_back(resource, chunk);
  } else {
    give_back_own_request(resource, chunk, chunk, kChunkAlign);
  }
}

void release_block_reference(ResourceState& resource, FrameSource& frames,
                             ChunkHeader* block) noexcept {
  const std::uint32_t count = block->refcount.load(std::memory_order_relaxed);
  CHUNKPMR_ASSERT(count > 0, "chunkpmr: small-class block reference count underflow");
  if (count == 1) {
    return_chunk(resource, frames, block);
  } else {
    block->refcount.store(count - 1, std::memory_order_relaxed);
  }
}

}  // namespace chunkpmr::detail
