// SPDX-License-Identifier: BSL-1.0
/// \file
/// \brief chunkpmr::ChunkProviderResource, a `std::pmr::memory_resource` built on
/// per-thread chunk arenas, with its options (chunkpmr::ResourceOptions) and its
/// statistics (chunkpmr::ResourceStats).
///
/// Allocation bumps a cursor in the calling thread's current chunk (no lock, no atomic
/// read-modify-write). Every allocation may be freed individually, on any thread; a
/// chunk goes back to a cache as soon as all of its allocations are freed, and cached
/// chunks beyond a per-thread cap go back upstream. See docs/DESIGN.md.
#pragma once

#include <chunkpmr/detail/resource_state.hpp>
#include <chunkpmr/export.hpp>

#include <cstddef>
#include <cstdint>
#include <memory_resource>

/// \brief Everything chunkpmr declares.
namespace chunkpmr {

/// \brief The configuration of a ChunkProviderResource, given to
/// ChunkProviderResource(const ResourceOptions&) and returned by
/// ChunkProviderResource::options().
///
/// An aggregate: name only the fields that differ from the defaults,
/// `ResourceOptions{.upstream = &pool, .first_buffer = false}`.
struct ResourceOptions {
  /// \brief Where chunks, the first buffer, per-thread bookkeeping and over-aligned
  /// blocks come from. Default: `std::pmr::get_default_resource()` at the time the
  /// options object is made.
  ///
  /// Captured at construction and used until the resource is destroyed. Must not be
  /// null (the constructor throws `std::invalid_argument`); the resource it points to
  /// must outlive the ChunkProviderResource, and its `deallocate` must not throw.
  std::pmr::memory_resource* upstream = std::pmr::get_default_resource();

  /// \brief Cap on the bytes held from upstream, for the whole resource (all
  /// threads): regions of chunks, chunks of their own and the first buffer, whether
  /// their blocks are live, cached or free. Default: `SIZE_MAX` (no cap).
  ///
  /// An allocation that would take ResourceStats::bytes_held above it first returns
  /// the calling thread's cached chunks upstream and tries again; if that is not
  /// enough it throws `std::bad_alloc`. Per-thread bookkeeping is not counted;
  /// over-aligned blocks (their own upstream requests) are.
  std::size_t byte_budget = SIZE_MAX;

  /// \brief Requests whose `bytes + alignment` exceed this many bytes and that do not
  /// fit the rest of the current chunk get a one-shot ("oversized") chunk of their own,
  /// which goes back upstream as soon as the block is freed. Default: 16 KiB.
  ///
  /// At most 65472 (a 64 KiB chunk less its 64-byte header); a larger value makes the
  /// constructor throw `std::invalid_argument`.
  std::size_t max_normal_alloc = 16 * 1024;

  /// \brief The `initial_size` of `std::pmr::monotonic_buffer_resource`: the size of
  /// the first buffer and of the first chunks. Default: 512.
  ///
  /// The constructor accepts any value; a first buffer larger than upstream can give
  /// makes the first allocation throw what upstream throws.
  ///
  /// With #first_buffer, the first upstream request of the resource is at least
  /// `max(initial_chunk_bytes, 4096)` bytes, so allocations totalling up to this size
  /// need no second request. It is also the first chunk size of each arena that does
  /// not start from the first buffer (rounded up to a size class: 512 B, 1 KiB, ...
  /// 64 KiB, and at most #max_chunk_bytes); chunk sizes then grow by one class at a
  /// refill, as long as the chunk being retired is at least a quarter live, up to
  /// #max_chunk_bytes. An arena whose chunks are under half live with 1 MiB or more of
  /// what it holds dead (blocks with random lifetimes pinning its chunks) shrinks its
  /// chunks one class per refill down to 4 KiB, gives a block too large for them a
  /// chunk of its own, and grows them again once three quarters of what it holds is
  /// live or under 256 KiB is dead.
  std::size_t initial_chunk_bytes = 512;

  /// \brief Free chunks a thread keeps cached for reuse, in bytes; chunks emptied
  /// beyond this go back upstream. Default: 1 MiB.
  std::size_t max_cached_bytes_per_thread = 1 << 20;

  /// \brief Whether the first allocations come from one first buffer, as
  /// `monotonic_buffer_resource`'s do. Default: `true`.
  ///
  /// `true`: the first refill of any thread asks upstream for one ordinary
  /// (not 64 KiB-aligned) block of at least `max(initial_chunk_bytes, 4096)` bytes,
  /// aligned for the request, and serves the first allocations from it, so that a
  /// short-lived resource costs one cheap upstream call. Blocks in it are reclaimed
  /// only by ChunkProviderResource::release() and the destructor, never one by one.
  /// If the #byte_budget cannot hold it, there is no first buffer.
  ///
  /// `false`: every block comes from a chunk, and its memory is reused once freed
  /// (for a long-lived resource under churn).
  bool first_buffer = true;

  /// \brief The largest chunk the size-class ratchet grows to, rounded down to a class
  /// (512 B, 1 KiB, ... 64 KiB). Default: 64 KiB.
  ///
  /// Any value is accepted: below 512 it means 512, above 64 KiB it means 64 KiB. It
  /// also caps the first chunk size that #initial_chunk_bytes sets. Smaller chunks pin
  /// less memory when a few long-lived blocks sit among short-lived ones, at the cost
  /// of more refills; a request that needs a larger chunk still gets one. (An arena
  /// whose chunks are pinned shrinks them by itself once 1 MiB is dead: see
  /// #initial_chunk_bytes. A cap acts from the first chunk on.)
  std::size_t max_chunk_bytes = 64 * 1024;
};

/// \brief A snapshot of a ChunkProviderResource's counters, returned by
/// ChunkProviderResource::stats().
///
/// The counters are read one after another without stopping other threads, so while
/// other threads use the resource the fields need not be consistent with each other.
/// The counters of chunk events are kept per arena, and ChunkProviderResource::release()
/// frees the arenas: they count since construction or the last release().
struct ResourceStats {
  /// \brief Bytes held from upstream now: regions of chunks, chunks of their own and
  /// the first buffer, over-aligned blocks, whether their blocks are live, cached or
  /// free (the quantity ResourceOptions::byte_budget caps; not per-thread bookkeeping).
  std::size_t bytes_held = 0;
  /// \brief The highest value #bytes_held has had since construction (release()
  /// does not reset it).
  std::size_t peak_bytes_held = 0;
  /// \brief Size-class chunks (classes 512 B to 64 KiB) obtained since construction or the
  /// last release(), from upstream or carved from a 64 KiB block obtained from
  /// upstream.
  std::uint64_t normal_chunks_allocated = 0;
  /// \brief One-shot chunks obtained from upstream since construction or the last
  /// release(): one per request above ResourceOptions::max_normal_alloc that did not
  /// fit the current chunk.
  std::uint64_t oversized_chunks_allocated = 0;
  /// \brief Chunks taken from a thread's cache instead of upstream, since construction
  /// or the last release().
  std::uint64_t chunk_reuses = 0;
  /// \brief Chunks emptied by their owning thread (its last live block freed there, or
  /// found empty when retired), since construction or the last release(). One-shot
  /// chunks and over-aligned blocks count as chunks here and below.
  std::uint64_t chunks_released_by_owner = 0;
  /// \brief Chunks emptied by a free on a thread other than their owner (handed back
  /// to the owner through its lock-free remote stack), since construction or the last
  /// release().
  std::uint64_t chunks_released_by_other_threads = 0;
  /// \brief Free chunks kept in thread caches now.
  std::size_t cached_chunks = 0;
  /// \brief Bytes of the free chunks kept in thread caches now.
  std::size_t cached_bytes = 0;
  /// \brief Arenas attached now to a running thread (not those of exited threads,
  /// which wait to be adopted, trimmed or released).
  std::size_t live_thread_arenas = 0;
  /// \brief Over-aligned requests (alignment above 16 KiB), each an upstream request of
  /// its own, since construction (release() does not reset it).
  std::uint64_t passthrough_allocations = 0;
};

/// \brief A `std::pmr::memory_resource` that allocates from per-thread chunk arenas:
/// as fast as a bump allocator, with no lock and no atomic read-modify-write on its
/// allocation path, and with every block individually freeable on any thread.
///
/// Use it where `std::pmr::monotonic_buffer_resource` or a pool resource would be
/// used. Each thread allocates from its own arena in the resource; memory comes from
/// the upstream resource in chunks of at most 64 KiB, on 64 KiB frames that come from
/// upstream in regions of 1 to 510 frames (and, first, one ordinary first buffer: see
/// ResourceOptions::first_buffer). A chunk whose blocks are all freed is cached by its
/// thread, or goes back upstream beyond ResourceOptions::max_cached_bytes_per_thread.
/// Alignments up to 16 KiB are served from chunks; a larger one is an upstream request
/// of its own.
///
/// \threadsafety Any number of threads may call `allocate`, `deallocate`, trim(),
/// stats(), options() and upstream_resource() concurrently on the same resource, and a
/// block may be freed on a thread other than the one that allocated it, after that
/// thread exited included. release() and the destructor must not run concurrently
/// with any other use of the resource. Construction allocates nothing; all memory,
/// per-thread bookkeeping included, comes from upstream: chunkpmr itself never calls
/// global `operator new` or `malloc`. No internal lock is held while upstream runs, so
/// upstream may itself use chunkpmr resources, this one included: also while release()
/// gives memory back (what upstream allocates from this resource then outlives
/// release(); a block from before it must not be freed then), but not while the
/// destructor runs.
///
/// Not copyable, not movable; two resources compare equal only if they are the same
/// object.
class CHUNKPMR_API ChunkProviderResource : public std::pmr::memory_resource {
 public:
  /// \brief Makes a resource that takes its memory from
  /// `std::pmr::get_default_resource()`.
  ///
  /// \effects As ChunkProviderResource(const ResourceOptions&) with
  /// `ResourceOptions{}`: upstream is `std::pmr::get_default_resource()`, the other
  /// options are their defaults.
  /// \post `upstream_resource() == std::pmr::get_default_resource()`, and options()
  /// equals `ResourceOptions{}` with that upstream.
  /// \throws Nothing. Nothing is allocated.
  /// \complexity Constant.
  ChunkProviderResource() noexcept;

  /// \brief Makes a resource that takes its memory from `upstream`.
  ///
  /// \param upstream the resource chunks come from.
  /// \pre `upstream` is not null and points to a resource that outlives this one
  /// (a debug build checks that it is not null and aborts otherwise).
  /// \effects As ChunkProviderResource(const ResourceOptions&) with
  /// `ResourceOptions{.upstream = upstream}`.
  /// \post `upstream_resource() == upstream`.
  /// \throws Nothing. Nothing is allocated.
  /// \complexity Constant.
  explicit ChunkProviderResource(std::pmr::memory_resource* upstream) noexcept;

  /// \brief Makes a resource over `std::pmr::get_default_resource()` whose first
  /// buffer and first chunks are sized after `initial_size`.
  ///
  /// \param initial_size the first buffer's size (ResourceOptions::initial_chunk_bytes).
  /// \effects As ChunkProviderResource(const ResourceOptions&) with
  /// `ResourceOptions{.initial_chunk_bytes = initial_size}`.
  /// \post `options().initial_chunk_bytes == initial_size`.
  /// \throws Nothing. Nothing is allocated.
  /// \complexity Constant.
  explicit ChunkProviderResource(std::size_t initial_size) noexcept;

  /// \brief Makes a resource over `upstream` whose first buffer and first chunks are
  /// sized after `initial_size`.
  ///
  /// \param initial_size the first buffer's size (ResourceOptions::initial_chunk_bytes).
  /// \param upstream the resource chunks come from.
  /// \pre `upstream` is not null and outlives this resource (checked for null in
  /// debug builds).
  /// \effects As ChunkProviderResource(const ResourceOptions&) with
  /// `ResourceOptions{.upstream = upstream, .initial_chunk_bytes = initial_size}`.
  /// \post `upstream_resource() == upstream` and
  /// `options().initial_chunk_bytes == initial_size`.
  /// \throws Nothing. Nothing is allocated.
  /// \complexity Constant.
  ChunkProviderResource(std::size_t initial_size, std::pmr::memory_resource* upstream) noexcept;

  /// \brief Makes a resource over `std::pmr::get_default_resource()` that serves its
  /// first allocations from a buffer the caller owns.
  ///
  /// \param buffer the initial buffer, or null for none.
  /// \param buffer_size its size in bytes.
  /// \pre If `buffer` is not null, `[buffer, buffer + buffer_size)` is writable memory
  /// that outlives this resource and is used by nothing else meanwhile.
  /// \effects As ChunkProviderResource(void*, std::size_t, std::pmr::memory_resource*)
  /// with `std::pmr::get_default_resource()`.
  /// \throws Nothing. Nothing is allocated.
  /// \complexity Constant.
  ChunkProviderResource(void* buffer, std::size_t buffer_size) noexcept;

  /// \brief Makes a resource over `upstream` that serves its first allocations from a
  /// buffer the caller owns, as `monotonic_buffer_resource(buffer, buffer_size,
  /// upstream)` does.
  ///
  /// \param buffer the initial buffer, or null for none.
  /// \param buffer_size its size in bytes.
  /// \param upstream the resource chunks come from once the buffer is used up.
  /// \pre `upstream` is not null and outlives this resource (checked for null in debug
  /// builds). If `buffer` is not null, `[buffer, buffer + buffer_size)` is writable
  /// memory that outlives this resource and is used by nothing else meanwhile.
  /// \effects As ChunkProviderResource(std::pmr::memory_resource*) with `upstream`,
  /// except that, if `buffer` is not null, the first allocations are bumped from the
  /// buffer (in place of a first buffer from upstream) until it is used up. Blocks in
  /// the buffer are never reused one by one; release() makes the whole buffer
  /// available again. A null `buffer` is ignored.
  /// \post `upstream_resource() == upstream` and
  /// `options()` equals `ResourceOptions{.upstream = upstream}`.
  /// \throws Nothing. Nothing is allocated.
  /// \complexity Constant.
  ChunkProviderResource(void* buffer, std::size_t buffer_size,
                        std::pmr::memory_resource* upstream) noexcept;

  /// \brief Makes a resource configured by `options`.
  ///
  /// \param options the configuration; see ResourceOptions for each field.
  /// \pre `options.upstream` outlives this resource.
  /// \effects Stores the configuration. Nothing is asked of upstream until the first
  /// allocation.
  /// \post `options()` equals `options` field by field, and
  /// `upstream_resource() == options.upstream`.
  /// \throws std::invalid_argument if `options.upstream` is null or
  /// `options.max_normal_alloc` is above 65472.
  /// \complexity Constant.
  explicit ChunkProviderResource(const ResourceOptions& options);

  /// \brief Not copyable (nor movable): blocks and thread arenas refer to the resource
  /// by address.
  ChunkProviderResource(const ChunkProviderResource&) = delete;
  /// \brief Not copy-assignable (nor move-assignable).
  ChunkProviderResource& operator=(const ChunkProviderResource&) = delete;

  /// \brief Destroys the resource, returning all its memory upstream.
  ///
  /// \pre No other thread uses the resource during or after the call (threads that
  /// used it may still be running, and may exit later), and no block it handed out is
  /// used afterwards. Upstream does not allocate from this resource during the call.
  /// \effects As release(): every upstream request the resource holds (regions, chunks
  /// of their own, the first buffer, over-aligned blocks, per-thread arenas) is given
  /// back to upstream, each with the size and alignment it was asked for.
  /// \throws Nothing.
  /// \complexity Linear in the number of upstream requests held (a region of up to 510
  /// chunks is one) and of arenas (at most the peak number of threads that used the
  /// resource at once); the chunks inside a region are not visited.
  ~ChunkProviderResource() override;

  /// \brief Gives all memory back upstream, as
  /// `std::pmr::monotonic_buffer_resource::release()` does, and starts afresh.
  ///
  /// \pre No other thread uses the resource during the call, and no block allocated
  /// before it is used (or deallocated) after it.
  /// \effects Calls `upstream_resource()->deallocate()` once for every upstream request
  /// it holds (each region of 64 KiB chunks, each chunk of its own, the first buffer,
  /// every over-aligned block, every per-thread arena obtained from upstream), whether
  /// its blocks are live, freed or cached. Upstream may allocate from this resource
  /// meanwhile: those blocks come from a fresh per-thread arena and outlive the call.
  /// The resource stays
  /// usable: it starts again as if just constructed, from its initial buffer (the
  /// caller's buffer anew, or a new first buffer) and its initial chunk size. May be
  /// called repeatedly.
  /// \post `stats().bytes_held == 0`, `stats().cached_chunks == 0` and the chunk
  /// event counters of stats() are 0; ResourceStats::peak_bytes_held and
  /// ResourceStats::passthrough_allocations are kept.
  /// \throws Nothing.
  /// \complexity Linear in the number of upstream requests held (a region of up to 510
  /// chunks is one) and of arenas; the chunks inside a region are not visited.
  /// \threadsafety Not concurrently with any other use of this resource.
  void release();

  /// \brief Returns free cached chunks upstream.
  ///
  /// \effects At once, for the calling thread's arena and for every arena whose thread
  /// has exited: gives back upstream its cached chunks, the chunks other threads
  /// emptied for it, and its current chunk if no block in it is live (a region
  /// goes back once none of its frames is in use). Every other running thread is
  /// asked to do the same for its own arena, which it does at its next refill. Live
  /// blocks are untouched, and so is the first buffer. (An over-aligned block freed on
  /// another thread is such an emptied chunk.)
  /// \throws Nothing.
  /// \complexity Linear in the number of arenas and of the chunks given back.
  /// \threadsafety Safe while other threads allocate and free.
  void trim();

  /// \brief The resource memory comes from.
  /// \returns The upstream given at construction.
  /// \throws Nothing.
  /// \complexity Constant.
  /// \threadsafety Any thread, concurrently with anything but the destructor.
  std::pmr::memory_resource* upstream_resource() const noexcept { return state_.upstream; }

  /// \brief The configuration the resource was constructed with.
  /// \returns The ResourceOptions given to the constructor, or for the other
  /// constructors the ResourceOptions they are described as equivalent to (the
  /// caller's buffer of a buffer constructor is not part of them).
  /// \throws Nothing.
  /// \complexity Constant.
  /// \threadsafety Any thread, concurrently with anything but the destructor.
  ResourceOptions options() const noexcept;

  /// \brief A snapshot of the resource's counters.
  /// \returns The current ResourceStats. While other threads use the resource the
  /// fields are read one by one and need not be consistent with each other.
  /// \throws Nothing.
  /// \complexity Linear in the number of arenas (at most the peak number of threads
  /// that used the resource at once).
  /// \threadsafety Any thread, concurrently with anything but release() and the
  /// destructor.
  ResourceStats stats() const noexcept;

 protected:
  /// \brief Allocates `bytes` bytes aligned to `alignment`: the implementation of
  /// `allocate`.
  ///
  /// \param bytes the size of the block; 0 gives a distinct one-byte block that must
  /// be freed like any other.
  /// \param alignment its alignment.
  /// \pre `alignment` is a power of two (checked in debug builds).
  /// \effects Bumps the calling thread's current chunk. When the block does not fit,
  /// refills from the thread's cache or from upstream: first the first buffer (see
  /// ResourceOptions::first_buffer), then chunks, carved from 64 KiB frames that come
  /// from upstream in regions (below 16 frames `(frames * 65536, 65536)` requests, from
  /// 16 frames on ordinary requests of one frame more); a block whose
  /// `bytes + alignment` exceed ResourceOptions::max_normal_alloc gets a one-shot chunk
  /// of its own. An `alignment` above 16 KiB gets an upstream request of its own, aligned
  /// as asked, with a 64-byte header after the block; the thread's arena holds it like a
  /// one-shot chunk, so release() gives it back. A size no object can have is passed to
  /// upstream exactly as asked.
  /// \returns A pointer to at least `bytes` bytes aligned to `alignment`, which stays
  /// valid until it is deallocated, release() is called, or the resource is destroyed.
  /// \throws std::bad_alloc if the allocation would exceed
  /// ResourceOptions::byte_budget even after the calling thread's cache was returned
  /// upstream, or if upstream returned memory not aligned as asked; whatever upstream
  /// throws (for a size no object can have too, or `std::bad_alloc` if upstream
  /// returns one anyway). After an exception the resource stays usable, its current
  /// chunks are as before (the calling thread's cached chunks may have gone back
  /// upstream), and nothing leaks.
  /// \complexity Constant on the fast path (no lock, no atomic read-modify-write, no
  /// call of upstream); a refill or a thread's first allocation also walks the
  /// resource's arenas (as many as threads used it at once) and may call upstream.
  /// \threadsafety Any thread, concurrently with anything but release() and the
  /// destructor. No path takes a lock; over-aligned requests are the calling thread's
  /// own upstream requests, held by its arena.
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;

  /// \brief Frees a block: the implementation of `deallocate`.
  ///
  /// \param p the block.
  /// \param bytes the size it was allocated with.
  /// \param alignment the alignment it was allocated with.
  /// \pre `p` was returned by `allocate(bytes, alignment)` on this resource, with the
  /// same `bytes` and `alignment`, and has not been deallocated since, nor released
  /// by release(). Debug builds check that the block came from this resource and that
  /// the alignment is a power of two.
  /// \effects Makes the block's memory available again. A chunk whose last live block
  /// this was goes to its owning thread's cache (through the owner's lock-free remote
  /// stack if freed on another thread), or back upstream beyond the cache's cap; a
  /// one-shot chunk and an over-aligned block go back upstream at once when the thread
  /// that allocated them frees them from its own code; freed on another thread (or from
  /// upstream inside a slow path, or after that thread's exit hook), they wait on its
  /// remote stack for its next slow path, or for trim() or adoption once it exited, and
  /// count in bytes held meanwhile. A block of the first buffer or of the caller's
  /// buffer is reclaimed only by release().
  /// \throws Nothing.
  /// \complexity Constant, plus the upstream `deallocate` calls above; at most one
  /// atomic read-modify-write on a free from a thread other than the block's owner.
  /// \threadsafety Any thread, whichever thread allocated the block and whether it is
  /// still running, concurrently with anything but release() and the destructor.
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept override;

  /// \brief Equality: identity.
  /// \param other the resource to compare with.
  /// \returns `this == &other`: blocks of one resource can be freed only through it.
  /// \throws Nothing.
  /// \complexity Constant.
  /// \threadsafety Any thread.
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override;

 private:
  CHUNKPMR_LOCAL void free_everything() noexcept;

  mutable detail::ResourceState state_;
};

}  // namespace chunkpmr
