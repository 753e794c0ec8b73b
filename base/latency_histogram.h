#pragma once
// Counting how long something took, cheaply enough for every FUSE request:
// a count, a total and a fixed log2 histogram of durations in nanoseconds,
// all relaxed atomics (no lock, no allocation). Bucket i holds durations
// below 2^i ns (bucket 0: zero); the last bucket holds the rest.
// Percentiles read from it are the upper bound of the bucket they fall in,
// so they overstate by less than 2×.
//
// Thread rules: record() from any number of threads at once; summary()
// from any thread (a snapshot that may miss records made meanwhile).

#include <array>
#include <atomic>
#include <cstdint>

namespace hgvfs {

struct LatencySummary {
  uint64_t count = 0;
  uint64_t totalNs = 0;
  uint64_t maxNs = 0;  // upper bound of the highest bucket in use
  uint64_t p50Ns = 0, p90Ns = 0, p99Ns = 0;
};

class LatencyHistogram {
 public:
  static constexpr int kBuckets = 40;  // up to 2^39 ns (about 9 minutes), then the last

  void record(uint64_t ns) noexcept {
    int bucket = ns == 0 ? 0 : 64 - __builtin_clzll(ns);
    if (bucket >= kBuckets) bucket = kBuckets - 1;
    count_.fetch_add(1, std::memory_order_relaxed);
    totalNs_.fetch_add(ns, std::memory_order_relaxed);
    buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  }

  LatencySummary summary() const;

 private:
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> totalNs_{0};
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
};

}  // namespace hgvfs
