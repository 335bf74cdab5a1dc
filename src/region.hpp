// SPDX-License-Identifier: BSL-1.0
// chunkpmr — regions: an arena's 64 KiB frames come from upstream several at a time.
//
// A region is one upstream request holding 1 to 510 frames, given back with exactly the
// (bytes, alignment) pair it was asked with. Its frames hold the arena's 64 KiB class
// chunks and its small-class blocks; one-shot chunks and the chunks of their own that a
// tight budget falls back to are still requests of their own.
//
// The request: below 16 frames, (frames * 64 KiB, 64 KiB). From 16 frames on, an
// ordinary request ((frames + 1) * 64 KiB, alignof(max_align_t)) with the frames at its
// first 64 KiB boundary. The reason is glibc: it serves an aligned request of n bytes as
// an ordinary one of n + alignment and, above its mmap threshold, keeps only the aligned
// part; when that is freed it raises the threshold to the part it kept, which is less
// than the next request of the same size asks for. So the largest aligned size an
// arena uses is mmapped and munmapped every time, and its pages faulted in again. An
// ordinary request is freed at its full size, glibc raises the threshold past it, and
// the next region of that size comes from glibc's heap. The extra frame (at most 1/16
// of the region) counts in bytes held and the budget, since it is held from upstream,
// but is never resident beyond the page of the word before the first frame that
// records the block's address.
//
// Sizing: each new region has as many frames as the arena already holds in regions,
// rounded down to a power of two, between 1 and 510: an arena that grows asks upstream
// for 64 KiB, 64 KiB, 128 KiB, 256 KiB, ... doubling up to 16 MiB, then 510 frames at a
// time (so at most one call per MiB once it holds 1 MiB), the way
// monotonic_buffer_resource grows its buffers. 510 frames are asked as 511 * 64 KiB,
// which glibc maps as 511 * 64 KiB + 4 KiB: the largest block for which glibc still
// raises its mmap threshold (it stops at 32 MiB). So after the first such region is
// freed, every region comes from glibc's heap, and glibc's trim threshold (twice the
// mmap threshold, ~64 MiB) keeps what release() frees, up to that much, off the kernel:
// with a 16 MiB cap, release() of 50 MB made glibc trim its heap every time, and the
// kernel freed (and the next round faulted in again) every page a frame header had
// touched. After release() or once its regions went back an arena starts small again,
// so a short-lived resource never asks for more than it is about to use.
//
// Reuse: frames given back go on the arena's free-frame list and are handed out again
// before any new region is asked for; untouched frames of the newest region come next.
// A region whose frames are all back goes upstream at once. (Chunks reach this point
// only after the arena's chunk cache declined them: cache cap, class floor, trim(),
// release().)
//
// Teardown (release(), the resource's end): every region goes upstream as it is, one
// call each, without a look at the frames in it: the arena's chunks in regions need no
// goodbye one by one (ThreadArena::return_every_chunk). A walk along a million blocks'
// chunks read one header per 64 KiB frame, each a cache miss, for nothing.
//
// Bookkeeping lives in the frame headers themselves (chunk_header.hpp): every frame
// points at its region's first frame, whose header holds the counts and the link to
// the arena's next region. So a region costs upstream nothing beyond its frames. Only
// the arena's user touches any of it.
#pragma once

#include "chunk_header.hpp"

#include <chunkpmr/detail/resource_state.hpp>

#include <cstddef>

namespace chunkpmr::detail {

// Not a power of two: see "Sizing" above (511 frames asked would be 32 MiB + 4 KiB).
inline constexpr unsigned kMaxRegionFrames = 510;
inline constexpr unsigned kOrdinaryRequestFrames = 16;

// What upstream is asked for a region of `frames` frames (and given back with).
constexpr bool region_is_ordinary_request(unsigned frames) noexcept {
  return frames >= kOrdinaryRequestFrames;
}
constexpr std::size_t region_request_bytes(unsigned frames) noexcept {
  return (std::size_t{frames} + (region_is_ordinary_request(frames) ? 1 : 0)) * kChunkAlign;
}
constexpr std::size_t region_request_alignment(unsigned frames) noexcept {
  return region_is_ordinary_request(frames) ? alignof(std::max_align_t) : kChunkAlign;
}

class FrameSource {
 public:
  // A 64 KiB frame with a fresh header whose region fields are set (the caller fills in
  // the rest): a frame given back earlier, else the next untouched frame of the newest
  // region, else the first frame of a new region. nullptr if the budget cannot hold
  // even a one-frame region. Throws what upstream throws, or std::bad_alloc if upstream
  // returns memory that is not 64 KiB-aligned; the budget reservation is undone first.
  ChunkHeader* take(ResourceState& resource);

  // The chunk or block in `frame` went back: the frame can be taken again, and its
  // region goes upstream if no other frame of it is out.
  void give_back(ResourceState& resource, ChunkHeader* frame) noexcept;

  // Every region goes upstream at once, whatever is in its frames: the caller has
  // forgotten every chunk and block in them (teardown). The source is empty after it.
  void release_all(ResourceState& resource) noexcept;

  std::size_t frames_held() const noexcept { return frames_held_; }

 private:
  void release_region(ResourceState& resource, ChunkHeader* region) noexcept;

  // Every region held, newest first (ChunkHeader::next_region). Only the first can
  // have untouched frames (they come next when no frame was given back).
  ChunkHeader* regions_ = nullptr;
  ChunkHeader* free_ = nullptr;  // given-back frames, linked through held_prev/held_next
  std::size_t frames_held_ = 0;  // frames of all regions this arena holds
};

}  // namespace chunkpmr::detail
