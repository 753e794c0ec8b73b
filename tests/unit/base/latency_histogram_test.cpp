#include "base/latency_histogram.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace hgvfs {
namespace {

TEST(LatencyHistogramTest, EmptyHasNothing) {
  LatencyHistogram h;
  LatencySummary s = h.summary();
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.p99Ns, 0u);
}

TEST(LatencyHistogramTest, PercentilesAreBucketUpperBounds) {
  LatencyHistogram h;
  for (int i = 0; i < 90; ++i) h.record(1000);   // bucket [512, 1024)... 1000 → < 1024
  for (int i = 0; i < 9; ++i) h.record(100000);  // < 131072
  h.record(10000000);                            // < 16777216
  LatencySummary s = h.summary();
  EXPECT_EQ(s.count, 100u);
  EXPECT_EQ(s.totalNs, 90u * 1000 + 9u * 100000 + 10000000);
  EXPECT_EQ(s.p50Ns, 1023u);
  EXPECT_EQ(s.p90Ns, 1023u);
  EXPECT_EQ(s.p99Ns, 131071u);
  EXPECT_EQ(s.maxNs, 16777215u);
  EXPECT_GE(s.p50Ns, 1000u);  // an upper bound, never below the value
}

TEST(LatencyHistogramTest, HugeAndZeroDurationsLand) {
  LatencyHistogram h;
  h.record(0);
  h.record(~uint64_t{0});
  LatencySummary s = h.summary();
  EXPECT_EQ(s.count, 2u);
  EXPECT_EQ(s.p50Ns, 0u);
  EXPECT_EQ(s.maxNs, (uint64_t{1} << (LatencyHistogram::kBuckets - 1)) - 1);
}

TEST(LatencyHistogramTest, ThreadsDoNotLoseRecords) {
  LatencyHistogram h;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) h.record(static_cast<uint64_t>(i));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(h.summary().count, 40000u);
}

}  // namespace
}  // namespace hgvfs
