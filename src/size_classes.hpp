// chunkpmr — chunk size classes and the alignment rules that make masking work.
//
// Every chunk is obtained from upstream as (size, kChunkAlign), so any pointer handed
// out from a chunk finds the chunk header by clearing its low 16 bits. That holds for
// a pointer p only if p < base + kChunkAlign, which these constants guarantee:
//  - class chunks are at most kChunkAlign bytes, and a handout is at least one byte,
//    so its start lies strictly inside the chunk;
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
inline constexpr unsigned kOversizedClass = 0xFF;
// Larger alignments bypass chunks (they could push the start past the first 64 KiB).
inline constexpr std::size_t kMaxChunkAlignment = std::size_t{16} * 1024;

static_assert((kMinChunkBytes << kLargestClass) == kChunkAlign);

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

constexpr std::uintptr_t align_up(std::uintptr_t value, std::size_t alignment) noexcept {
  return (value + alignment - 1) & ~static_cast<std::uintptr_t>(alignment - 1);
}

static_assert(class_for_bytes(1) == 0 && class_for_bytes(512) == 0);
static_assert(class_for_bytes(513) == 1 && class_for_bytes(1024) == 1);
static_assert(class_for_bytes(1025) == 2 && class_for_bytes(65536) == 7);

}  // namespace chunkpmr::detail
