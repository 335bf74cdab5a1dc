// SPDX-License-Identifier: BSL-1.0
#include "region.hpp"

#include "check.hpp"
#include "chunk_source.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <new>

namespace chunkpmr::detail {
namespace {

// Regions of kOrdinaryRequestFrames or more are one ordinary request of one frame more
// than they hold (region.hpp says why); the frames start at the first 64 KiB boundary at
// least a pointer past the block's start, and the block's address sits in that pointer.
// So the block holds the frames wherever upstream puts it.
void*& upstream_block_slot(ChunkHeader* region) noexcept {
  return reinterpret_cast<void**>(region)[-1];
}

void* obtain_region_memory(ResourceState& r, unsigned frames) {
  void* block = allocate_reserved(r, region_request_bytes(frames), region_request_alignment(frames));
  if (!region_is_ordinary_request(frames)) return block;
  const auto first = (reinterpret_cast<std::uintptr_t>(block) + sizeof(void*) + kChunkAlign - 1) &
                     ~static_cast<std::uintptr_t>(kChunkAlign - 1);
  // first - block <= kChunkAlign, so frames * kChunkAlign bytes from `first` fit.
  auto* region = reinterpret_cast<ChunkHeader*>(first);
  upstream_block_slot(region) = block;
  return region;
}

ChunkHeader* frame_at(ChunkHeader* region, unsigned index) noexcept {
  return reinterpret_cast<ChunkHeader*>(region->base() + std::size_t{index} * kChunkAlign);
}

// A header for a frame about to be handed out (not a region's first frame).
ChunkHeader* fresh_frame_header(void* memory, ChunkHeader* region) noexcept {
  auto* frame = ::new (memory) ChunkHeader{};
  frame->region_link = reinterpret_cast<std::uintptr_t>(region);
  return frame;
}

// The upstream block a region was asked as, given back with its (bytes, alignment) pair
// and its bytes to the budget. Nothing in the region is read after this.
void give_region_upstream(ResourceState& r, ChunkHeader* region) noexcept {
  const unsigned frames = region->region_frames;
  void* block = region_is_ordinary_request(frames) ? upstream_block_slot(region) : region;
  region->~ChunkHeader();
  const std::size_t bytes = region_request_bytes(frames);
  r.upstream->deallocate(block, bytes, region_request_alignment(frames));
  release_budget(r, bytes);
}

}  // namespace

ChunkHeader* FrameSource::take(ResourceState& r) {
  if (ChunkHeader* frame = free_) {
    free_ = frame->held_next;
    if (free_ != nullptr) free_->held_prev = nullptr;
    ChunkHeader* region = frame->region_of();
    ++region->frames_out;
    if (frame != region) return fresh_frame_header(frame, region);
    // Frame 0's header carries the region's link and counts: keep them across the new
    // header.
    const std::uintptr_t link = region->region_link;
    const std::uint16_t frames = region->region_frames;
    const std::uint16_t out = region->frames_out;
    const std::uint16_t touched = region->frames_touched;
    ::new (frame) ChunkHeader{};
    frame->region_link = link;
    frame->region_frames = frames;
    frame->frames_out = out;
    frame->frames_touched = touched;
    return frame;
  }
  // Only the newest region can have untouched frames: a region is asked for only once
  // the newest has none left.
  if (ChunkHeader* region = regions_; region != nullptr && region->frames_touched < region->region_frames) {
    ++region->frames_out;
    return fresh_frame_header(frame_at(region, region->frames_touched++), region);
  }
  unsigned frames = std::clamp<unsigned>(
      static_cast<unsigned>(std::bit_floor(std::max<std::size_t>(frames_held_, 1))), 1,
      kMaxRegionFrames);
  while (!reserve_budget(r, region_request_bytes(frames))) {
    if (frames == 1) return nullptr;
    frames /= 2;
  }
  auto* region = ::new (obtain_region_memory(r, frames)) ChunkHeader{};
  region->set_next_region(regions_);
  region->region_frames = static_cast<std::uint16_t>(frames);
  region->frames_out = 1;
  region->frames_touched = 1;
  regions_ = region;
  frames_held_ += frames;
  return region;
}

void FrameSource::give_back(ResourceState& r, ChunkHeader* frame) noexcept {
  CHUNKPMR_ASSERT(frame->in_region() && frame->region_of()->frames_out > 0,
                  "chunkpmr: frame given back to a region twice");
  frame->cookie = 0;  // a stale free into this frame trips the debug check
  frame->held_prev = nullptr;
  frame->held_next = free_;
  if (free_ != nullptr) free_->held_prev = frame;
  free_ = frame;
  ChunkHeader* region = frame->region_of();
  if (--region->frames_out == 0) release_region(r, region);
}

void FrameSource::release_region(ResourceState& r, ChunkHeader* region) noexcept {
  // Every touched frame of the region is on the free list now: take them off it.
  const unsigned touched = region->frames_touched;
  for (unsigned i = 0; i < touched; ++i) {
    ChunkHeader* frame = frame_at(region, i);
    if (frame->held_prev != nullptr) {
      frame->held_prev->held_next = frame->held_next;
    } else {
      free_ = frame->held_next;
    }
    if (frame->held_next != nullptr) frame->held_next->held_prev = frame->held_prev;
  }
  // Off the region list: a walk from the newest region, since a region records only
  // the next one. An arena holds few regions (they grow to 510 frames), and a region
  // goes back far less often than its frames are taken.
  if (regions_ == region) {
    regions_ = region->next_region();
  } else {
    ChunkHeader* before = regions_;
    while (before->next_region() != region) before = before->next_region();
    before->set_next_region(region->next_region());
  }
  frames_held_ -= region->region_frames;
  give_region_upstream(r, region);
}

void FrameSource::release_all(ResourceState& r) noexcept {
  ChunkHeader* region = regions_;
  while (region != nullptr) {
    ChunkHeader* next = region->next_region();
    give_region_upstream(r, region);
    region = next;
  }
  regions_ = nullptr;
  free_ = nullptr;
  frames_held_ = 0;
}

}  // namespace chunkpmr::detail
