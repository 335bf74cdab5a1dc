// SPDX-License-Identifier: BSL-1.0
// A producer thread builds pmr strings; a consumer thread takes them over and destroys
// them. The consumer's frees go back to the producer's arena without locks, and the
// producer reuses those chunks.
#include <chunkpmr/chunk_provider_resource.hpp>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <memory_resource>
#include <mutex>
#include <string>
#include <thread>

int main() {
  chunkpmr::ChunkProviderResource resource;
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::pmr::string> queue;  // the strings, not the deque, use `resource`
  bool finished = false;
  std::size_t consumed_bytes = 0;

  std::thread consumer([&] {
    std::unique_lock lock(mutex);
    for (;;) {
      changed.wait(lock, [&] { return finished || !queue.empty(); });
      if (queue.empty()) return;
      std::pmr::string message = std::move(queue.front());  // same resource: no copy
      queue.pop_front();
      changed.notify_all();
      lock.unlock();
      consumed_bytes += message.size();  // ~message frees on this thread
      lock.lock();
    }
  });

  for (int i = 0; i < 200000; ++i) {
    std::pmr::string message(&resource);
    message = "message number " + std::to_string(i) + " with some payload to make it long";
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return queue.size() < 1000; });
    queue.push_back(std::move(message));
    changed.notify_all();
  }
  {
    std::lock_guard lock(mutex);
    finished = true;
  }
  changed.notify_all();
  consumer.join();

  const chunkpmr::ResourceStats s = resource.stats();
  std::printf("consumed %zu bytes; chunks emptied by the consumer: %llu; "
              "bytes held from upstream: %zu (peak %zu)\n",
              consumed_bytes, static_cast<unsigned long long>(s.chunks_released_by_other_threads),
              s.bytes_held, s.peak_bytes_held);
  return 0;
}
