// SPDX-License-Identifier: BSL-1.0
// The resource takes every byte it uses from its upstream: neither allocation, nor
// frees, nor thread attach, nor release/trim/stats call global operator new. This test
// binary replaces operator new to count calls made on the measuring thread while a
// window is open; the upstream used here gets its memory from aligned_alloc.
#define BOOST_TEST_MODULE no_global_new
#include <boost/test/unit_test.hpp>

#include <chunkpmr/chunk_provider_resource.hpp>

#include <algorithm>
#include <cstdlib>
#include <memory_resource>
#include <new>
#include <thread>

namespace {

thread_local bool t_counting = false;
thread_local std::size_t t_global_news = 0;

void* counted_new(std::size_t n, std::size_t alignment) {
  if (t_counting) ++t_global_news;
  const std::size_t rounded = (std::max<std::size_t>(n, 1) + alignment - 1) / alignment * alignment;
  if (void* p = std::aligned_alloc(alignment, rounded)) return p;
  throw std::bad_alloc();
}

// An upstream that does not use operator new either.
class AlignedAllocUpstream : public std::pmr::memory_resource {
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    const std::size_t a = std::max<std::size_t>(alignment, alignof(std::max_align_t));
    void* p = std::aligned_alloc(a, (bytes + a - 1) / a * a);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  void do_deallocate(void* p, std::size_t, std::size_t) override { std::free(p); }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override { return this == &o; }
};

struct CountingWindow {
  CountingWindow() {
    t_global_news = 0;
    t_counting = true;
  }
  ~CountingWindow() { t_counting = false; }
};

}  // namespace

void* operator new(std::size_t n) { return counted_new(n, alignof(std::max_align_t)); }
void* operator new[](std::size_t n) { return counted_new(n, alignof(std::max_align_t)); }
void* operator new(std::size_t n, std::align_val_t a) { return counted_new(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_new(n, static_cast<std::size_t>(a)); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

BOOST_AUTO_TEST_CASE(no_global_operator_new_anywhere_in_the_resource) {
  AlignedAllocUpstream upstream;
  std::size_t news_main = 0;
  std::size_t news_worker = 0;
  {
    chunkpmr::ChunkProviderResource r(&upstream);
    void* blocks[3000];
    {
      CountingWindow window;
      for (int i = 0; i < 3000; ++i) blocks[i] = r.allocate(static_cast<std::size_t>(1 + i * 7 % 900), 8);
      void* big = r.allocate(100000, 8);
      void* aligned = r.allocate(64, 1 << 16);
      r.deallocate(aligned, 64, 1 << 16);
      r.deallocate(big, 100000, 8);
      news_main = t_global_news;
    }
    std::thread worker([&] {  // (std::thread itself allocates: outside the window)
      CountingWindow window;
      for (int i = 0; i < 3000; i += 2) r.deallocate(blocks[i], static_cast<std::size_t>(1 + i * 7 % 900), 8);
      void* p = r.allocate(100, 8);  // attaches a second arena, from upstream
      r.deallocate(p, 100, 8);
      news_worker = t_global_news;
    });
    worker.join();  // thread exit detaches the arena
    CountingWindow window;
    for (int i = 1; i < 3000; i += 2) r.deallocate(blocks[i], static_cast<std::size_t>(1 + i * 7 % 900), 8);
    r.trim();
    static_cast<void>(r.stats());
    r.release();
    static_cast<void>(r.allocate(10, 8));
    news_main += t_global_news;
  }
  BOOST_TEST(news_main == 0u);
  BOOST_TEST(news_worker == 0u);
}
