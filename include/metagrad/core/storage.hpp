// SPDX-License-Identifier: MIT
// Storage: an aligned, reference-counted buffer. Freed buffers go back to a size-bucketed pool so
// that a training loop, which asks for the same sizes every step, stops calling the system
// allocator after its first iteration.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "metagrad/core/error.hpp"

namespace metagrad {

struct MemoryStats {
  std::int64_t live_buffers = 0;     // storages alive now
  std::int64_t live_bytes = 0;       // bytes held by live storages
  std::int64_t peak_bytes = 0;       // high-water mark of live_bytes since the last reset
  std::int64_t cached_bytes = 0;     // bytes parked in the pool
  std::int64_t system_allocs = 0;    // calls to the system allocator so far
};

namespace detail {

inline constexpr std::size_t kAlignment = 64;

class BufferPool {
 public:
  static BufferPool& instance() {
    static BufferPool pool;
    return pool;
  }

  void* acquire(std::size_t bytes) {
    const std::size_t rounded = round(bytes);
    {
      std::lock_guard lock(mutex_);
      ++stats_.live_buffers;
      stats_.live_bytes += static_cast<std::int64_t>(rounded);
      stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.live_bytes);
      if (auto it = free_.find(rounded); it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        stats_.cached_bytes -= static_cast<std::int64_t>(rounded);
        return p;
      }
      ++stats_.system_allocs;
    }
    void* p = std::aligned_alloc(kAlignment, rounded);
    if (!p) throw Error(detail::concat("Storage: out of memory allocating ", bytes, " bytes"));
    return p;
  }

  void release(void* p, std::size_t bytes) noexcept {
    const std::size_t rounded = round(bytes);
    std::lock_guard lock(mutex_);
    --stats_.live_buffers;
    stats_.live_bytes -= static_cast<std::int64_t>(rounded);
    if (stats_.cached_bytes + static_cast<std::int64_t>(rounded) > cache_limit_) {
      std::free(p);
      return;
    }
    try {
      free_[rounded].push_back(p);
      stats_.cached_bytes += static_cast<std::int64_t>(rounded);
    } catch (...) {
      std::free(p);
    }
  }

  MemoryStats stats() {
    std::lock_guard lock(mutex_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard lock(mutex_);
    stats_.peak_bytes = stats_.live_bytes;
  }
  void empty_cache() {
    std::lock_guard lock(mutex_);
    for (auto& [size, list] : free_)
      for (void* p : list) std::free(p);
    free_.clear();
    stats_.cached_bytes = 0;
  }
  void set_cache_limit(std::int64_t bytes) {
    std::lock_guard lock(mutex_);
    cache_limit_ = bytes;
  }

 private:
  BufferPool() = default;
  ~BufferPool() { empty_cache(); }
  static std::size_t round(std::size_t bytes) {
    return std::max<std::size_t>(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
  }

  std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  MemoryStats stats_;
  std::int64_t cache_limit_ = std::int64_t{2} << 30;
};

}  // namespace detail

/// Live/peak/cached byte counts of the CPU storage pool.
inline MemoryStats memory_stats() { return detail::BufferPool::instance().stats(); }
inline void reset_peak_memory() { detail::BufferPool::instance().reset_peak(); }
/// Returns every cached buffer to the system.
inline void empty_cache() { detail::BufferPool::instance().empty_cache(); }
/// Caps the bytes the pool keeps for reuse (default 2 GiB).
inline void set_cache_limit(std::int64_t bytes) { detail::BufferPool::instance().set_cache_limit(bytes); }

template <class T>
class Storage {
 public:
  explicit Storage(std::int64_t n) : size_(n) {
    check(n >= 0, "Storage", "negative size ", n);
    data_ = static_cast<T*>(detail::BufferPool::instance().acquire(static_cast<std::size_t>(n) * sizeof(T)));
  }
  ~Storage() { detail::BufferPool::instance().release(data_, static_cast<std::size_t>(size_) * sizeof(T)); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::int64_t size() const { return size_; }
  /// Bumped by every in-place write, so autograd can detect a saved tensor modified after use.
  std::uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  T* data_ = nullptr;
  std::int64_t size_ = 0;
  std::uint64_t version_ = 0;
};

}  // namespace metagrad
