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
// The probe tells them apart off the fast path: at a refill (one in every 64 KiB of
// chunks installed) it reads the reference count of one held chunk, taking the held
// list of the chunks in the arena's regions in turn (chunks of their own are one-shot,
// over-aligned, or a tight budget's, and say nothing about a chunk class), and at the
// end of each pass
// along the list publishes the share of the held bytes still live (live blocks times
// the mean block size the arena hands out, summed over the chunks read, over their
// bytes; a cached chunk counts as empty). The arena shrinks its chunk class while that
// share is low and it holds enough for it to matter (pinning()), and lets the class
// grow again only when the share is high (allows_growth()).
//
// Threading: the owner thread of the arena only (or whoever has the arena to itself),
// like the held list it walks. The counts it reads are decremented by other threads:
// relaxed loads, since a stale count only shifts the share by one chunk's worth. A chunk on
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
  static constexpr std::uint32_t kWhole = 1u << 15;  // shares are in 1/32768ths
  // Dead bytes from which an arena makes its chunks smaller, and below a quarter of
  // which it lets them grow freely again: the bytes it holds in regions (whole, written
  // or not) times the share of its held chunks' bytes that is not live. Below that,
  // the refills of smaller chunks would cost more time than the little memory they
  // save (a thread's few chunks in a short-lived or round-robin use, a small table).
  // An absolute amount, not a share alone: two chunks read half empty after a mass
  // free say nothing about lifetimes, and cost little. The gap between the two keeps
  // an arena whose smaller chunks now pin less from growing them back.
  static constexpr std::size_t kMinDeadBytes = std::size_t{1} << 20;

  // A chunk is about to leave the held list (before its links change).
  void forget(const ChunkHeader* chunk) noexcept {
    if (chunk == next_) next_ = chunk->held_next;
  }

  // At a refill, for the chunk being retired: `used_bytes` taken by `handouts` blocks.
  // Keeps the mean block size that turns a live count into live bytes.
  void retired(std::size_t used_bytes, std::uint32_t handouts) noexcept {
    if (handouts == 0 || used_bytes == 0) return;
    // A chunk holds less than 64 KiB, so the mean fits 16 bits.
    const auto bytes = static_cast<int>(std::clamp<std::size_t>(used_bytes / handouts, 1, 0xFFFF));
    const int mean = mean_block_bytes_;
    mean_block_bytes_ = static_cast<std::uint16_t>(mean == 0 ? bytes : mean + (bytes - mean) / 8);
  }

  // Reads one held chunk: the next in turn along the list that starts at `held_head`.
  // The share is taken over a whole pass along the list, weighted by bytes (live bytes
  // of the chunks read over their bytes), and published when the pass ends: the list
  // is in order of age, the newest chunks first and full, the oldest pinned, so a
  // running mean would follow where the pass is rather than the whole. The current
  // chunk's count holds the arena's surplus and reads as wholly live, which it nearly
  // is (its blocks are the newest); a cached chunk reads as empty.
  // `installed_bytes`: the size of the chunk the refill installs. One chunk is read per
  // 64 KiB installed, so that small chunks, refilled often, do not pay a header read
  // (a likely cache miss) at every refill.
  void sample(const ChunkHeader* held_head, std::size_t installed_bytes) noexcept {
    installed_since_sample_ += static_cast<std::uint32_t>(installed_bytes);
    if (installed_since_sample_ < kChunkAlign) return;
    installed_since_sample_ = 0;
    const ChunkHeader* chunk = next_;
    if (chunk == nullptr) {  // a pass ends (or the first begins)
      if (bytes_sum_ != 0) share_ = static_cast<std::uint16_t>(std::uint64_t{live_sum_} * kWhole / bytes_sum_);
      live_sum_ = 0;
      bytes_sum_ = 0;
      chunk = held_head;
      if (chunk == nullptr) return;
    }
    next_ = chunk->held_next;
    if (chunk->size_class > kLargestClass || mean_block_bytes_ == 0) return;
    const std::uint64_t live = chunk->refcount.load(std::memory_order_relaxed);
    const std::uint64_t bytes = chunk->total_bytes;  // 448 B .. 64 KiB
    // A chunk apart was sized for its one block (at least half of it is the block's).
    const std::uint64_t live_bytes =
        chunk->slots_carved == kChunkApart && live != 0 ? bytes : std::min(bytes, live * mean_block_bytes_);
    live_sum_ += static_cast<std::uint32_t>((live_bytes + kUnit / 2) / kUnit);
    bytes_sum_ += static_cast<std::uint32_t>(bytes / kUnit);
    // An arena holding 128 GiB and more: publish early rather than overflow.
    if (bytes_sum_ >= (std::uint32_t{1} << 31)) next_ = nullptr;
  }

  // The arena holds `frames_held` frames, under half of its held chunks' bytes live,
  // and at least kMinDeadBytes dead.
  bool pinning(std::size_t frames_held) const noexcept {
    return share_ < kWhole / 2 && dead_bytes(frames_held) >= kMinDeadBytes;
  }
  // Little dead, or on average at least three quarters live, measured on chunks (of
  // `ratchet_bytes`) that hold at least four blocks. (The gap between the two share
  // thresholds keeps an arena whose chunks shrank from growing them again on a few
  // fresh, full chunks: larger chunks would be pinned as before. A chunk of one or two
  // blocks goes back as soon as they die, so its share says nothing about lifetimes:
  // with blocks of 3 KiB, 4 KiB chunks read three quarters live where 64 KiB ones
  // read a quarter.)
  bool allows_growth(std::size_t frames_held, std::size_t ratchet_bytes) const noexcept {
    if (dead_bytes(frames_held) < kMinDeadBytes / 4) return true;
    return share_ >= kWhole / 4 * 3 && std::size_t{mean_block_bytes_} * 4 <= ratchet_bytes;
  }

  std::uint32_t share() const noexcept { return share_; }

 private:
  static constexpr std::uint64_t kUnit = 64;  // the sums count bytes in 64-byte units

  // The pass reads chunks one at a time while others come and go, so its sums cover
  // only part of a long held list: its share, not its bytes, is what it measures.
  std::uint64_t dead_bytes(std::size_t frames_held) const noexcept {
    return std::uint64_t{frames_held} * kChunkAlign * (kWhole - share_) / kWhole;
  }

  const ChunkHeader* next_ = nullptr;   // the held chunk read next; null: a pass ends
  std::uint32_t live_sum_ = 0;          // this pass so far: live bytes / kUnit
  std::uint32_t bytes_sum_ = 0;         // this pass so far: chunk bytes / kUnit
  std::uint16_t share_ = kWhole;        // the last whole pass's live share
  std::uint16_t mean_block_bytes_ = 0;  // running mean of bytes per handout; 0: none yet
  std::uint32_t installed_since_sample_ = 0;  // chunk bytes installed since the last read (< 128 KiB)
};

}  // namespace chunkpmr::detail
