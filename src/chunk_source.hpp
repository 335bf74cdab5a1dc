// chunkpmr — getting chunks from upstream and giving them back, under the byte budget.
//
// Every chunk is requested as (total_bytes, kChunkAlign) and returned with exactly the
// same pair. The budget is reserved before the upstream call and rolled back if it
// fails, so bytes_held never exceeds byte_budget.
#pragma once

#include "chunk_header.hpp"

#include <chunkpmr/detail/resource_state.hpp>

#include <cstddef>

namespace chunkpmr::detail {

// Reserves `bytes` of the budget; false if that would exceed it.
bool reserve_budget(ResourceState& resource, std::size_t bytes) noexcept;
void release_budget(ResourceState& resource, std::size_t bytes) noexcept;

// A fresh chunk with its header initialised (refcount 0, not linked anywhere), for the
// budget already reserved by the caller. Throws what upstream throws, or
// std::bad_alloc if upstream hands back a block that is not 64 KiB-aligned.
ChunkHeader* obtain_chunk(ResourceState& resource, std::size_t total_bytes,
                          unsigned size_class, ThreadArena* owner);

// Returns the chunk to upstream and its bytes to the budget.
void return_chunk(ResourceState& resource, ChunkHeader* chunk) noexcept;

}  // namespace chunkpmr::detail
