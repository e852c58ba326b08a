// SPDX-License-Identifier: MIT
#include <cstdint>

#include "metagrad/core/creation.hpp"
#include "test_util.hpp"

using namespace metagrad;

namespace {
/// Sizes no other test in this executable uses, so the pool's buckets for them start empty.
constexpr std::int64_t kOdd = 12'347;

/// Restores the pool's cache limit when a test ends, however it ends.
struct CacheLimitGuard {
  explicit CacheLimitGuard(std::int64_t bytes) { set_cache_limit(bytes); }
  ~CacheLimitGuard() { set_cache_limit(std::int64_t{2} << 30); }
};
}  // namespace

TEST_SUITE("core.storage") {
  TEST_CASE("core.storage: a freed buffer is reused for the same size without a system call") {
    const double* first = nullptr;
    {
      auto t = Tensor<double>::empty(Shape{kOdd});
      first = t.data();
    }
    const auto before = memory_stats();
    CHECK(before.cached_bytes > 0);
    auto again = Tensor<double>::empty(Shape{kOdd});
    CHECK(again.data() == first);
    CHECK(memory_stats().system_allocs == before.system_allocs);
    // A different size cannot take it.
    auto other = Tensor<double>::empty(Shape{kOdd + 100});
    CHECK(memory_stats().system_allocs == before.system_allocs + 1);
  }

  TEST_CASE("core.storage: live counts, 64-byte rounding and alignment") {
    const auto before = memory_stats();
    {
      auto a = Tensor<double>::empty(Shape{1});     // 8 bytes -> 64
      auto b = Tensor<float>::empty(Shape{17});     // 68 bytes -> 128
      const auto during = memory_stats();
      CHECK(during.live_buffers == before.live_buffers + 2);
      CHECK(during.live_bytes == before.live_bytes + 64 + 128);
      CHECK(reinterpret_cast<std::uintptr_t>(a.data()) % 64 == 0);
      CHECK(reinterpret_cast<std::uintptr_t>(b.data()) % 64 == 0);
      auto view = b.detach();  // a second handle, not a second buffer
      CHECK(memory_stats().live_buffers == during.live_buffers);
    }
    CHECK(memory_stats().live_buffers == before.live_buffers);
    CHECK(memory_stats().live_bytes == before.live_bytes);
  }

  TEST_CASE("core.storage: peak bytes and reset") {
    reset_peak_memory();
    const auto base = memory_stats();
    CHECK(base.peak_bytes == base.live_bytes);
    { auto big = Tensor<double>::empty(Shape{kOdd * 3}); }
    const auto after = memory_stats();
    CHECK(after.peak_bytes >= base.live_bytes + kOdd * 3 * 8);
    reset_peak_memory();
    CHECK(memory_stats().peak_bytes == after.live_bytes);
  }

  TEST_CASE("core.storage: the cache limit and empty_cache return memory to the system") {
    empty_cache();
    CHECK(memory_stats().cached_bytes == 0);
    {
      CacheLimitGuard no_cache(0);
      { auto t = Tensor<double>::empty(Shape{kOdd * 5}); }
      CHECK(memory_stats().cached_bytes == 0);
      const auto allocs = memory_stats().system_allocs;
      { auto t = Tensor<double>::empty(Shape{kOdd * 5}); }
      CHECK(memory_stats().system_allocs == allocs + 1);  // nothing was kept to reuse
    }
    { auto t = Tensor<double>::empty(Shape{kOdd * 5}); }
    CHECK(memory_stats().cached_bytes > 0);
    empty_cache();
    CHECK(memory_stats().cached_bytes == 0);
  }

  TEST_CASE("core.storage: empty tensors are valid; negative sizes are not") {
    auto e = Tensor<double>::empty(Shape{0});
    CHECK(e.numel() == 0);
    CHECK(e.data() != nullptr);
    METAGRAD_CHECK_ERROR(Storage<double>(-1), "Storage", "negative size -1");
  }
}
