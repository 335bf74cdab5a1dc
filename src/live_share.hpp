// SPDX-License-Identifier: BSL-1.0
// chunkpmr — how much of what an arena holds is still live: the signal that makes its
// chunks smaller when blocks with random lifetimes pin them.
//
// A chunk goes back only when its last block is freed. Under random lifetimes (a
// server replacing random entries of a table, a cache), a chunk of k blocks stays held
// until the longest-lived of them dies, and the arena holds about
// H(k) = 1 + 1/2 + ... + 1/k times its live bytes: 4.7× for 64 blocks a chunk, 2.7×
// for 8. Smaller chunks pin less. Bump workloads (blocks freed together by release(),
// or in about the order they were made) hold chunks that are full or empty, and want
// large chunks: fewer refills, fewer headers.
//
// The probe tells them apart off the fast path: at each refill it reads the reference
// count of one held chunk, taking the held list in turn, and keeps a running mean,
// weighted by bytes, of the share of the sampled chunks still live (live blocks times
// the mean block size the arena hands out, over the chunk's bytes; a cached chunk
// counts as empty). The arena shrinks its chunk class while that share is low and it
// holds enough for it to matter (pinning()), and lets the class grow again only when
// the share is high (allows_growth()).
//
// Threading: the owner thread of the arena only (or whoever has the arena to itself),
// like the held list it walks. The counts it reads are decremented by other threads:
// relaxed loads, since a stale count only shifts the mean by one sample. A chunk on
// the held list has not gone back, so reading its header is safe; the arena tells the
// probe before it unlinks a chunk (forget()), so the probe never keeps a chunk that
// went back.
#pragma once

#include "chunk_header.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace chunkpmr::detail {

class LiveShareProbe {
 public:
  static constexpr std::uint32_t kWhole = 1u << 16;  // shares are in 1/65536ths
  // Below this many 64 KiB frames (1 MiB) the arena holds too little for pinning to
  // matter (a thread's few chunks in a short-lived or round-robin use).
  static constexpr std::size_t kMinFramesHeld = 64;

  // A chunk is about to leave the held list (before its links change).
  void forget(const ChunkHeader* chunk) noexcept {
    if (chunk == next_) next_ = chunk->held_next;
  }

  // At a refill, for the chunk being retired: `used_bytes` handed out in `handouts`
  // blocks. Keeps the mean block size that turns a live count into live bytes.
  void retired(std::size_t used_bytes, std::uint32_t handouts) noexcept {
    if (handouts == 0) return;
    // A chunk holds less than 64 KiB, so the mean fits 16 bits.
    const auto bytes = static_cast<int>(std::clamp<std::size_t>(used_bytes / handouts, 1, 0xFFFF));
    const int mean = mean_block_bytes_;
    mean_block_bytes_ = static_cast<std::uint16_t>(mean == 0 ? bytes : mean + (bytes - mean) / 8);
  }

  // Reads one held chunk (the next in turn along the list that starts at `held_head`);
  // `current` is skipped, since its count holds the arena's surplus. The mean is
  // weighted by the chunk's bytes, so that it is the share of held bytes that are live:
  // after the arena moves to small chunks, its many new ones must not outvote the
  // few large ones still pinned.
  void sample(const ChunkHeader* held_head, const ChunkHeader* current) noexcept {
    const ChunkHeader* chunk = next_ != nullptr ? next_ : held_head;
    if (chunk == nullptr) return;
    next_ = chunk->held_next;
    if (chunk == current || chunk->size_class > kLargestClass || mean_block_bytes_ == 0) return;
    const std::uint64_t live = chunk->refcount.load(std::memory_order_relaxed);
    const std::uint64_t bytes = chunk->total_bytes;  // <= 64 KiB
    const std::uint64_t live_bytes = std::min(bytes, live * mean_block_bytes_);
    const auto share = static_cast<std::int64_t>(live_bytes * kWhole / bytes);
    const auto weight = static_cast<std::int64_t>(bytes);  // a 64 KiB chunk moves the mean by 1/8
    share_ = static_cast<std::uint32_t>(static_cast<std::int64_t>(share_) +
                                        (share - static_cast<std::int64_t>(share_)) * weight /
                                            static_cast<std::int64_t>(8 * kChunkAlign));
  }

  // The arena holds `frames_held` frames, on average less than a third live.
  bool pinning(std::size_t frames_held) const noexcept {
    return frames_held >= kMinFramesHeld && share_ < kWhole / 3;
  }
  // Little held, or on average at least three quarters of it live. (The gap between
  // the two thresholds keeps an arena whose chunks shrank from growing them again on
  // a few fresh, full chunks: larger chunks would be pinned as before.)
  bool allows_growth(std::size_t frames_held) const noexcept {
    return frames_held < kMinFramesHeld || share_ >= kWhole / 4 * 3;
  }

  std::uint32_t share() const noexcept { return share_; }

 private:
  const ChunkHeader* next_ = nullptr;   // the held chunk sampled next; null: the list's head
  std::uint32_t share_ = kWhole;        // running mean of sampled live shares
  std::uint16_t mean_block_bytes_ = 0;  // running mean of bytes per handout; 0: none yet
};

}  // namespace chunkpmr::detail
