// SPDX-License-Identifier: BSL-1.0
// chunkpmr — the initial buffer: the user's buffer, or the first buffer from upstream.
//
// A short-lived resource should cost what monotonic_buffer_resource costs: one
// ordinary upstream request. So, unless the user gave a buffer, the first refill of any
// thread asks upstream for one *first buffer* of at least `initial_size` bytes (and of
// at least the request, aligned for it, the request's block at its start) with an
// ordinary alignment — not a 64 KiB-aligned frame. Its blocks are found by address
// range, never by masking, and are never reclaimed one by one (as in monotonic); the
// buffer goes back upstream with release() and the destructor.
//
// Either buffer is bumped by one arena only (the one whose refill claimed it, with one
// exchange), like a chunk without a header: that arena's current_ stays null, so a free
// is never matched against it.
#pragma once

#include <chunkpmr/detail/resource_state.hpp>

#include <cstddef>
#include <cstdint>

namespace chunkpmr::detail {

// Where the first buffer is at least this big, whatever initial_size says: a request
// of twenty short strings in a vector (about 3 KiB) then needs one upstream call.
inline constexpr std::size_t kMinFirstBufferBytes = 4096;

struct BumpRange {
  std::uintptr_t begin = 0;
  std::uintptr_t end = 0;
};

// Claims the initial buffer for the calling arena, sized for a first block of (bytes,
// alignment) if it comes from upstream. false if it was claimed already or the budget
// cannot hold it. Throws what upstream throws (the buffer stays unclaimed).
bool claim_initial_buffer(ResourceState& resource, std::size_t bytes, std::size_t alignment,
                          BumpRange& range);

// Whether a block at `address` lies in the initial buffer. Any thread.
inline bool in_initial_buffer(const ResourceState& resource, std::uintptr_t address) noexcept {
  const std::size_t bytes = resource.initial_bytes.load(std::memory_order_acquire);
  return address - resource.initial_base.load(std::memory_order_relaxed) < bytes;
}

// Gives the first buffer back upstream and makes the initial buffer claimable again
// (release() and the destructor; no other thread uses the resource then).
void reset_initial_buffer(ResourceState& resource) noexcept;

}  // namespace chunkpmr::detail
