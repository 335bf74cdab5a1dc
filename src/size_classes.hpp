// SPDX-License-Identifier: BSL-1.0
// chunkpmr — chunk size classes and the alignment rules that make masking work.
//
// Every chunk lives in a 64 KiB-aligned "frame" (a region's frames are 64 KiB-aligned
// even when the region is an ordinary request: region.hpp), so clearing the low 16
// bits of any pointer handed out from a chunk finds the frame's header. (Over-aligned
// blocks are not in chunks; see kMaxChunkAlignment.) A frame is one of:
//  - a chunk of its own: a 64 KiB class chunk (a region's frame), a one-shot oversized
//    chunk (an upstream request (total_bytes, kChunkAlign)), or, under a budget too
//    small for a frame, a small class chunk (its own request too);
//  - a small-class block: a 64 KiB frame carved into the small classes 0..6, the
//    chunk of class c at offset class_bytes(c) (the buddy layout: 512 B at 512,
//    1 KiB at 1 KiB, ... 32 KiB at 32 KiB; the first 512 bytes hold the block's
//    header). Glibc serves a 64 KiB-aligned request of 512 B with about 12 KiB of
//    resident memory; one block serves a thread's whole run up the ratchet through
//    the small classes;
//  - a class frame: a 64 KiB frame of chunks of one small class c <= 5, in the places
//    k * class_bytes(c): where an arena needs the same small class again (its ratchet
//    stays below 64 KiB). The frame's header takes the start of place 0, whose chunk
//    begins right after it (class_bytes(c) - 64 bytes, the only chunk not aligned to
//    its size): a page chunk in a page of its own for a 64-byte header would make
//    arenas whose chunks shrank to pages hold a sixteenth more than they use.
// Inside a block, the chunk holding offset o (o >= 512) starts at bit_floor(o); inside
// a class frame, at o rounded down to class_bytes(c), or at 64 in place 0. Every other
// carved chunk is aligned to its own size.
// Masking works for a pointer p only if p < frame + kChunkAlign, which holds because:
//  - class chunks and blocks are at most kChunkAlign bytes, and a handout is at least
//    one byte, so its start lies strictly inside the frame;
//  - an oversized chunk places its single allocation at the first offset past the
//    header aligned to `alignment` <= kMaxChunkAlignment, i.e. below 16 KiB + 64.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace chunkpmr::detail {

inline constexpr std::size_t kChunkAlign = std::size_t{64} * 1024;
inline constexpr std::size_t kMinChunkBytes = 512;
inline constexpr unsigned kLargestClass = 7;  // 512 << 7 == 64 KiB
inline constexpr unsigned kOversizedClass = 0x80;
// An over-aligned block's record (header) placed after the block (see below).
inline constexpr unsigned kOverAlignedClass = 0x81;
// Frame headers that are not chunks but describe a frame carved into chunks have a
// size_class from kClassFrameBase up (never a chunk's):
//  - kSmallBlockClass: a small-class block, one chunk of each class 0..6 (buddy layout);
//  - kClassFrameBase + c: a class frame, chunks of class c (0..5) at every multiple of
//    class_bytes(c), the first after the frame header (class_frame_place).
inline constexpr unsigned kClassFrameBase = 0xF0;
inline constexpr unsigned kSmallBlockClass = 0xFE;
inline constexpr unsigned kLargestClassFrameClass = 5;  // 16 KiB: four chunks per frame
// The class an arena's chunks shrink to when blocks with random lifetimes pin them
// (live_share.hpp): 4 KiB, a page.
inline constexpr unsigned kPinnedClass = 3;
// Larger alignments bypass chunks (they could push the start past the first 64 KiB):
// such a block is one upstream request of its own, aligned as asked, with its header
// (kOverAlignedClass) after the block at the next 64-byte boundary, where deallocate
// finds it from (p, bytes) alone; the arena that made it holds it like a one-shot chunk.
inline constexpr std::size_t kMaxChunkAlignment = std::size_t{16} * 1024;
// A zero-byte block still gets a byte of its own before the header.
constexpr std::size_t over_aligned_header_offset(std::size_t bytes) noexcept {
  return ((bytes == 0 ? 1 : bytes) + 63) & ~std::size_t{63};  // bytes <= kMaxObjectBytes
}

static_assert((kMinChunkBytes << kLargestClass) == kChunkAlign);

// Requests above this many bytes are passed to upstream exactly as they came (no
// object can be that large: PTRDIFF_MAX less a frame); keeping them out lets every
// size computation below add a header, an alignment or a frame without wrapping.
inline constexpr std::size_t kMaxObjectBytes =
    static_cast<std::size_t>(PTRDIFF_MAX) - 2 * kChunkAlign;

constexpr std::size_t class_bytes(unsigned size_class) noexcept {
  return kMinChunkBytes << size_class;
}

// The smallest class whose chunks hold `total` bytes (header included); saturates at
// the largest class, so callers must not ask for more than kChunkAlign.
constexpr unsigned class_for_bytes(std::size_t total) noexcept {
  if (total <= kMinChunkBytes) return 0;
  const unsigned c = static_cast<unsigned>(std::bit_width((total - 1) / kMinChunkBytes));
  return c < kLargestClass ? c : kLargestClass;
}

// Classes below kLargestClass are carved from small-class blocks.
constexpr bool is_small_class(unsigned size_class) noexcept {
  return size_class < kLargestClass;
}

constexpr std::uintptr_t align_up(std::uintptr_t value, std::size_t alignment) noexcept {
  return (value + alignment - 1) & ~static_cast<std::uintptr_t>(alignment - 1);
}

// Where place k of a class frame of `place_bytes` places starts, and how many bytes its
// chunk has: place 0 after the frame's header (a 64-byte header, chunk_header.hpp).
inline constexpr std::size_t kFirstPlaceOffset = 64;
constexpr std::size_t class_frame_place(unsigned k, std::size_t place_bytes) noexcept {
  return k == 0 ? kFirstPlaceOffset : std::size_t{k} * place_bytes;
}
constexpr std::size_t class_frame_chunk_bytes(std::size_t offset, std::size_t place_bytes) noexcept {
  return place_bytes - (offset & (place_bytes - 1));
}

// Whether a block of `bytes` at `alignment` (a power of two) needs a whole chunk of
// `size_class`: more than place 0 of a class frame holds, 64 bytes short (the chunk
// header at the place's start, the block at the first `alignment` boundary after it).
// Only class-frame classes have such a place; offsets within a frame are address
// offsets, since frames are 64 KiB-aligned.
constexpr bool needs_whole_chunk(unsigned size_class, std::size_t bytes, std::size_t alignment) noexcept {
  if (size_class > kLargestClassFrameClass) return false;
  constexpr std::size_t kFirstPlacePayload = kFirstPlaceOffset + 64;  // then place 0's header
  const std::size_t block_offset = alignment > kFirstPlacePayload ? alignment : kFirstPlacePayload;
  const std::size_t chunk_end = class_bytes(size_class);
  return block_offset >= chunk_end || bytes > chunk_end - block_offset;
}

static_assert(class_for_bytes(1) == 0 && class_for_bytes(512) == 0);
static_assert(class_for_bytes(513) == 1 && class_for_bytes(1024) == 1);
static_assert(class_for_bytes(1025) == 2 && class_for_bytes(65536) == 7);
static_assert(!needs_whole_chunk(3, 4096 - 128, 8) && needs_whole_chunk(3, 4096 - 127, 8) &&
              !needs_whole_chunk(3, 4096 - 256, 256) && needs_whole_chunk(3, 4096 - 255, 256) &&
              needs_whole_chunk(0, 1, 512) && !needs_whole_chunk(6, 32768 - 64, 8));
static_assert(class_frame_chunk_bytes(class_frame_place(0, 4096), 4096) == 4096 - 64 &&
              class_frame_chunk_bytes(class_frame_place(3, 4096), 4096) == 4096);

}  // namespace chunkpmr::detail
