// SPDX-License-Identifier: BSL-1.0
// chunkpmr — the header at the start of every chunk, and the reference count rules.
//
// Layout: one 64-byte cache line at the chunk base, the payload right after it. The
// header is the only per-chunk metadata; it is found from any allocation by masking
// to the 64 KiB frame and, inside a small-class block, rounding the offset down to a
// power of two (see size_classes.hpp and chunk_of below). An over-aligned block's
// header (kOverAlignedClass) is the exception: it sits after the block, found from
// (p, bytes), never by masking.
//
// A small-class block or a class frame is described by a header of the same type at
// its frame base, with size_class kSmallBlockClass or kClassFrameBase + c. Its
// `refcount` counts the chunks carved from it
// that have not gone back plus one while its arena may still carve from it; it is
// read and written only by whoever has exclusive use of that arena (chunks are only
// ever given back through their owner arena), hence relaxed loads and stores.
//
// Who touches what:
//  - refcount: atomic, any thread (see "Reference counting" below).
//  - next:     link in exactly one cache list at a time: the owner arena's local cache
//              (owner thread only) or its remote stack (pushed by any thread, drained
//              by the owner). Atomic because of the remote stack.
//  - owner, held_prev/held_next, total_bytes, size_class, cookie: written by the owner
//    arena's thread when the chunk is obtained from upstream and never changed while
//    the chunk lives, except held_* which only the arena's owning thread touches.
//  - region_link, region_frames, frames_out, frames_touched: the frame's region (region.hpp);
//    only the arena's user touches them, and they outlive the chunk in the frame.
//    Another thread reads `owner` only after it got a pointer into the chunk through
//    its own synchronisation with the allocating thread, which orders the read.
//
// Reference counting (the surplus scheme):
//  - While a chunk is an arena's current chunk its count holds kSurplus, set with a
//    plain store when the chunk is installed. Handouts and frees by the owner are
//    counted in the arena's non-atomic `unused_credit` (kSurplus minus the owner's net
//    handouts); frees by other threads decrement `refcount` atomically.
//  - Live allocations = refcount - unused_credit. Each handout consumes at least one
//    byte of a chunk of at most 64 KiB, so unused_credit > kSurplus - 65536 > 0 and a
//    current chunk's count can never reach zero.
//  - At retire the owner subtracts unused_credit in one fetch_sub, leaving exactly the
//    live count. Whoever moves the count to zero releases the chunk.
#pragma once

#include "size_classes.hpp"

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace chunkpmr::detail {

class ThreadArena;

inline constexpr std::uint32_t kSurplus = std::uint32_t{1} << 30;

// ThreadSanitizer does not model std::atomic_thread_fence; where the code relies on a
// release decrement followed by an acquire fence, TSan builds use an acq_rel decrement
// instead so that it sees the same happens-before edge.
#if defined(__SANITIZE_THREAD__)
#define CHUNKPMR_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CHUNKPMR_TSAN 1
#endif
#endif
#ifndef CHUNKPMR_TSAN
#define CHUNKPMR_TSAN 0
#endif
inline constexpr std::memory_order kDecrementOrder =
    CHUNKPMR_TSAN ? std::memory_order_acq_rel : std::memory_order_release;

struct alignas(64) ChunkHeader {
  std::atomic<std::uint32_t> refcount;
  std::uint32_t cookie;  // debug check on free: derived from the header address
  std::atomic<ChunkHeader*> next;
  ThreadArena* owner;
  ChunkHeader* held_prev;
  ChunkHeader* held_next;
  std::size_t total_bytes;  // bytes of the chunk (for a frame of its own: as asked of upstream)
  // 0 for memory that is not a region frame (a chunk of its own, a carved chunk, an
  // over-aligned block). In a region's frame: the address of the region's first frame;
  // in that first frame itself, the arena's next region (or 0) with bit 0 set, which
  // links an arena's regions without memory of their own (region_of, next_region;
  // frames are 64 KiB-aligned, so bit 0 is free). Set in frame 0: the region's size
  // in frames, its frames handed out and not given back, and how many of its frames
  // were ever handed out (the rest are untouched memory).
  std::uintptr_t region_link;
  std::uint16_t region_frames;
  std::uint16_t frames_out;
  std::uint16_t frames_touched;
  std::uint8_t size_class;  // 0..kLargestClass, kOversizedClass, kOverAlignedClass, or a
                            // carved frame's kind
  std::uint8_t slots_carved;  // a class frame's places handed out so far (1..128); for
                              // an over-aligned block, log2 of its alignment; for a
                              // chunk apart, kChunkApart; else 0

  std::uintptr_t base() const noexcept { return reinterpret_cast<std::uintptr_t>(this); }
  std::uintptr_t payload() const noexcept { return base() + sizeof(ChunkHeader); }
  std::uintptr_t end() const noexcept { return base() + total_bytes; }
  // True for a chunk carved from a small-class block (its base is inside the frame).
  bool is_carved() const noexcept { return (base() & (kChunkAlign - 1)) != 0; }

  static std::uint32_t cookie_for(const ChunkHeader* h) noexcept {
    // Headers are 64-aligned: the low 6 bits carry no information. (Place 0 of a class
    // frame is 64 bytes past the frame's header: the two cookies differ.)
    return static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(h) >> 6) ^ 0x9E3779B9u;
  }
  bool cookie_ok() const noexcept { return cookie == cookie_for(this); }

  bool in_region() const noexcept { return region_link != 0; }
  // A region frame's region: its first frame.
  ChunkHeader* region_of() noexcept {
    return (region_link & 1) != 0 ? this : reinterpret_cast<ChunkHeader*>(region_link);
  }
  // A region's first frame: the arena's next region, or nullptr.
  ChunkHeader* next_region() const noexcept {
    return reinterpret_cast<ChunkHeader*>(region_link & ~std::uintptr_t{1});
  }
  void set_next_region(const ChunkHeader* following) noexcept {
    region_link = reinterpret_cast<std::uintptr_t>(following) | 1;
  }
};

static_assert(sizeof(ChunkHeader) == 64, "the header is one cache line");
static_assert(class_frame_place(0, kMinChunkBytes) == sizeof(ChunkHeader),
              "place 0 of a class frame starts right after the frame header");

inline constexpr std::size_t kHeaderBytes = sizeof(ChunkHeader);

// slots_carved of a class chunk that holds one block of its own, never installed as the
// current chunk (ThreadArena::allocate_apart): the live-share probe reads it as wholly
// live while its block is, since it was sized for that block.
inline constexpr std::uint8_t kChunkApart = 1;

inline ChunkHeader* frame_of(std::uintptr_t address) noexcept {
  return reinterpret_cast<ChunkHeader*>(address & ~static_cast<std::uintptr_t>(kChunkAlign - 1));
}

// The chunk holding a block handed out at `p`. Reading the frame header is safe: the
// caller holds a live block of that frame, so the frame (chunk or small-class block)
// cannot go back upstream meanwhile, and its size_class never changes while it lives.
inline ChunkHeader* chunk_of(const void* p) noexcept {
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  ChunkHeader* frame = frame_of(address);
  const unsigned kind = frame->size_class;
  if (kind < kClassFrameBase) [[likely]] return frame;
  const std::uintptr_t offset = address - frame->base();
  if (kind == kSmallBlockClass) return reinterpret_cast<ChunkHeader*>(frame->base() + std::bit_floor(offset));
  // A class frame: the place's start, or past the frame header in place 0.
  const std::uintptr_t start = offset & ~(class_bytes(kind - kClassFrameBase) - 1);
  return reinterpret_cast<ChunkHeader*>(frame->base() + (start == 0 ? sizeof(ChunkHeader) : start));
}

}  // namespace chunkpmr::detail
