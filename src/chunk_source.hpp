// SPDX-License-Identifier: BSL-1.0
// chunkpmr — getting chunks from upstream and giving them back, under the byte budget.
//
// Frames (chunks of their own and small-class blocks, see size_classes.hpp) are
// requested as (total_bytes, kChunkAlign) and returned with exactly the same pair. The
// budget is reserved before the upstream call and rolled back if it fails, so
// bytes_held never exceeds byte_budget. Carving a chunk from a block asks upstream for
// nothing and reserves no budget: the block's 64 KiB were reserved when it was obtained.
#pragma once

#include "chunk_header.hpp"
#include "region.hpp"

#include <chunkpmr/detail/resource_state.hpp>

#include <cstddef>

namespace chunkpmr::detail {

// Whether upstream really returned memory aligned to `alignment`: a check no
// optimization can remove (the compiler is told upstream always aligns).
bool upstream_honoured_alignment(const void* memory, std::size_t alignment) noexcept;

// Reserves `bytes` of the budget; false if that would exceed it.
bool reserve_budget(ResourceState& resource, std::size_t bytes) noexcept;
void release_budget(ResourceState& resource, std::size_t bytes) noexcept;

// Upstream memory of (bytes, alignment) for a budget reservation the caller already
// made. Throws what upstream throws, or std::bad_alloc if upstream's memory is not
// aligned as asked; either way the reservation (and the memory) is given back first.
void* allocate_reserved(ResourceState& resource, std::size_t bytes, std::size_t alignment);

// Fills in a chunk's header (refcount 0, not linked anywhere), leaving its region
// fields as they are. size_class kSmallBlockClass makes it a small-class block
// (total_bytes must then be kChunkAlign).
ChunkHeader* init_header(ChunkHeader* chunk, std::size_t total_bytes, unsigned size_class,
                         ThreadArena* owner) noexcept;

// A chunk of its own, (total_bytes, 64 KiB) from upstream, for the budget already
// reserved by the caller, with its header initialised. Throws what upstream throws, or
// std::bad_alloc if upstream hands back a block that is not 64 KiB-aligned; either way
// the reservation is given back first.
ChunkHeader* obtain_chunk(ResourceState& resource, std::size_t total_bytes,
                          unsigned size_class, ThreadArena* owner);

// The chunk of small class `size_class` at `offset` in `block` (a small-class block or
// a class frame), with its header initialised; the block gains a reference. The caller
// (the block's arena) makes sure that place is not in use.
ChunkHeader* carve_chunk(ChunkHeader* block, std::size_t offset, unsigned size_class,
                         ThreadArena* owner) noexcept;

// Gives the chunk back: a carved chunk to its block, a region frame to its region
// (`frames`, the owner arena's), anything else to upstream with its bytes to the budget.
void return_chunk(ResourceState& resource, FrameSource& frames, ChunkHeader* chunk) noexcept;

// Drops one reference to a small-class block; the last one gives the block back.
void release_block_reference(ResourceState& resource, FrameSource& frames,
                             ChunkHeader* block) noexcept;

}  // namespace chunkpmr::detail
