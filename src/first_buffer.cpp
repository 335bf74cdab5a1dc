// SPDX-License-Identifier: BSL-1.0
#include "first_buffer.hpp"

#include "chunk_source.hpp"

#include <algorithm>
#include <new>

namespace chunkpmr::detail {
namespace {

void publish_range(ResourceState& r, std::uintptr_t base, std::size_t bytes) noexcept {
  // Base first, then the size with release: a reader that sees the new size (acquire)
  // sees the new base too. One that sees the old size (0) matches no address at all.
  r.initial_base.store(base, std::memory_order_relaxed);
  r.initial_bytes.store(bytes, std::memory_order_release);
}

}  // namespace

bool claim_initial_buffer(ResourceState& r, std::size_t bytes, std::size_t alignment,
                          BumpRange& range) {
  if (r.initial_claimed.load(std::memory_order_relaxed) ||
      r.initial_claimed.exchange(true, std::memory_order_relaxed)) {
    return false;
  }
  if (r.user_buffer != nullptr) {
    range.begin = reinterpret_cast<std::uintptr_t>(r.user_buffer);
    range.end = range.begin + r.user_buffer_size;
    return true;
  }
  // The caller keeps impossible sizes away (bytes <= kMaxObjectBytes), so this cannot wrap.
  const std::size_t size = std::max({r.initial_size, bytes, kMinFirstBufferBytes});
  const std::size_t align = std::max(alignment, alignof(std::max_align_t));
  if (!reserve_budget(r, size)) {
    r.initial_claimed.store(false, std::memory_order_relaxed);
    return false;
  }
  void* memory;
  try {
    memory = allocate_reserved(r, size, align);  // a misaligned buffer is refused there
  } catch (...) {
    r.initial_claimed.store(false, std::memory_order_relaxed);
    throw;
  }
  r.first_buffer_bytes = size;
  r.first_buffer_alignment = align;
  range.begin = reinterpret_cast<std::uintptr_t>(memory);
  range.end = range.begin + size;
  publish_range(r, range.begin, size);
  return true;
}

void reset_initial_buffer(ResourceState& r) noexcept {
  if (r.first_buffer_bytes != 0) {
    void* memory = reinterpret_cast<void*>(r.initial_base.load(std::memory_order_relaxed));
    const std::size_t bytes = r.first_buffer_bytes;
    publish_range(r, 0, 0);
    r.first_buffer_bytes = 0;
    r.upstream->deallocate(memory, bytes, r.first_buffer_alignment);
    release_budget(r, bytes);
  }
  r.initial_claimed.store(false, std::memory_order_relaxed);
}

}  // namespace chunkpmr::detail
