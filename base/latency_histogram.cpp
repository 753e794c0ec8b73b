#include "base/latency_histogram.h"

namespace hgvfs {
namespace {

uint64_t bucketBound(int bucket) { return bucket == 0 ? 0 : (uint64_t{1} << bucket) - 1; }

}  // namespace

LatencySummary LatencyHistogram::summary() const {
  std::array<uint64_t, kBuckets> counts;
  uint64_t inBuckets = 0;
  for (int i = 0; i < kBuckets; ++i) {
    counts[i] = buckets_[i].load(std::memory_order_relaxed);
    inBuckets += counts[i];
  }
  LatencySummary s;
  s.count = inBuckets;  // the buckets, not count_: percentiles must agree with them
  s.totalNs = totalNs_.load(std::memory_order_relaxed);
  if (inBuckets == 0) return s;
  // The smallest bucket bound at or below which `fraction` of the records fall.
  auto percentile = [&](uint64_t perMille) {
    uint64_t wanted = (inBuckets * perMille + 999) / 1000, seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts[i];
      if (seen >= wanted) return bucketBound(i);
    }
    return bucketBound(kBuckets - 1);
  };
  s.p50Ns = percentile(500);
  s.p90Ns = percentile(900);
  s.p99Ns = percentile(990);
  for (int i = kBuckets - 1; i >= 0; --i) {
    if (counts[i]) {
      s.maxNs = bucketBound(i);
      break;
    }
  }
  return s;
}

}  // namespace hgvfs
