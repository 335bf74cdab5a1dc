// chunkpmr — a std::pmr::memory_resource built on per-thread chunk arenas.
//
// Allocation bumps a cursor in the calling thread's current chunk (no lock, no atomic
// read-modify-write). Every allocation may be freed individually, on any thread; a
// chunk goes back to a cache as soon as all of its allocations are freed, and cached
// chunks beyond a per-thread cap go back upstream. See docs/DESIGN.md.
#pragma once

#include <chunkpmr/detail/resource_state.hpp>

#include <cstddef>
#include <cstdint>
#include <memory_resource>

namespace chunkpmr {

struct ResourceOptions {
  // Where chunks come from. Captured at construction; must outlive the resource.
  std::pmr::memory_resource* upstream = std::pmr::get_default_resource();
  // Cap on bytes held from upstream by chunks (live + cached), resource-wide.
  std::size_t byte_budget = SIZE_MAX;
  // A request with bytes + alignment above this that does not fit the current chunk
  // gets a one-shot "oversized" chunk. At most 65472 (a 64 KiB chunk minus its header).
  std::size_t max_normal_alloc = 16 * 1024;
  // First chunk size of each thread arena (rounded up to a size class, 512 B .. 64 KiB);
  // chunk sizes then ratchet up one class per refill.
  std::size_t initial_chunk_bytes = 512;
  // Free chunks a thread keeps for reuse before returning further ones upstream.
  std::size_t max_cached_bytes_per_thread = 1 << 20;
  // true: the first allocations come from one ordinary upstream request of at least
  // initial_chunk_bytes (and at least 4 KiB), like monotonic_buffer_resource's first
  // buffer, so a short-lived resource costs one cheap upstream call. Blocks in it are
  // reclaimed only by release() and the destructor. false: every block comes from a
  // chunk and its memory is reused once freed.
  bool first_buffer = true;
  // The largest chunk the class ratchet grows to (rounded down to a class, 512 B ..
  // 64 KiB). Smaller chunks pin less memory when a few long-lived blocks sit among
  // short-lived ones, at the cost of more refills; requests that need a larger chunk
  // still get one.
  std::size_t max_chunk_bytes = 64 * 1024;
};

// A snapshot; counters are summed over arenas without a global lock-step, so the
// fields need not be mutually consistent while other threads run.
struct ResourceStats {
  std::size_t bytes_held = 0;       // chunk bytes held from upstream now (live + cached)
  std::size_t peak_bytes_held = 0;  // highest value of bytes_held so far
  std::uint64_t normal_chunks_allocated = 0;     // class chunks obtained from upstream
  std::uint64_t oversized_chunks_allocated = 0;  // one-shot chunks obtained from upstream
  std::uint64_t chunk_reuses = 0;                // chunks taken from a cache instead
  std::uint64_t chunks_released_by_owner = 0;    // emptied by the thread owning them
  std::uint64_t chunks_released_by_other_threads = 0;
  std::size_t cached_chunks = 0;  // free chunks kept in thread caches
  std::size_t cached_bytes = 0;
  std::size_t live_thread_arenas = 0;  // arenas currently attached to a running thread
  std::uint64_t passthrough_allocations = 0;  // over-aligned requests sent to upstream
};

class ChunkProviderResource : public std::pmr::memory_resource {
 public:
  ChunkProviderResource();
  explicit ChunkProviderResource(std::pmr::memory_resource* upstream);
  explicit ChunkProviderResource(std::size_t initial_size);
  ChunkProviderResource(std::size_t initial_size, std::pmr::memory_resource* upstream);
  ChunkProviderResource(void* buffer, std::size_t buffer_size);
  ChunkProviderResource(void* buffer, std::size_t buffer_size,
                        std::pmr::memory_resource* upstream);
  // Throws std::invalid_argument for a null upstream or max_normal_alloc above 65472.
  explicit ChunkProviderResource(const ResourceOptions& options);

  ChunkProviderResource(const ChunkProviderResource&) = delete;
  ChunkProviderResource& operator=(const ChunkProviderResource&) = delete;

  // Returns every chunk (and every pass-through allocation) to upstream. Other threads
  // that used the resource may still be running; they must not use it any more.
  ~ChunkProviderResource() override;

  // As monotonic_buffer_resource::release(): every allocation becomes invalid and all
  // memory goes back upstream. No other thread may use the resource meanwhile. The
  // resource stays usable and starts again from its initial buffer / initial size.
  void release();

  // Returns free cached chunks to upstream: the calling thread's caches and those of
  // arenas whose thread has exited, at once; other running threads return theirs at
  // their next refill. Live allocations are untouched. Safe while other threads work.
  void trim();

  std::pmr::memory_resource* upstream_resource() const noexcept { return state_.upstream; }
  ResourceStats stats() const noexcept;

 protected:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept override;
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override;

 private:
  void free_everything() noexcept;

  mutable detail::ResourceState state_;
};

}  // namespace chunkpmr
