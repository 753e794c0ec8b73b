// LruCache (store/lru_cache.h): a byte budget, eviction from the cold end,
// values that outlive their eviction, and many threads at once (run it in
// the TSan preset to check the locking).

#include "store/lru_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace hgvfs::store {
namespace {

using Cache = LruCache<int, std::string>;

std::shared_ptr<const std::string> val(const std::string& s) {
  return std::make_shared<const std::string>(s);
}

std::string valueOr(Cache& c, int key, const std::string& missing = "<none>") {
  auto v = c.get(key);
  return v ? *v : missing;
}

TEST(LruCacheTest, GetAndMiss) {
  Cache c(100);
  EXPECT_EQ(c.get(1), nullptr);
  c.put(1, val("one"), 10);
  EXPECT_EQ(valueOr(c, 1), "one");
  EXPECT_EQ(c.get(2), nullptr);
  auto s = c.stats();
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(s.bytes, 10u);
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 2u);
}

TEST(LruCacheTest, EvictsLeastRecentlyUsedFirst) {
  Cache c(30);
  c.put(1, val("a"), 10);
  c.put(2, val("b"), 10);
  c.put(3, val("c"), 10);
  EXPECT_EQ(c.stats().bytes, 30u);
  // Touch 1: now 2 is the coldest.
  EXPECT_EQ(valueOr(c, 1), "a");
  c.put(4, val("d"), 10);
  EXPECT_EQ(c.get(2), nullptr);
  EXPECT_EQ(valueOr(c, 1), "a");
  EXPECT_EQ(valueOr(c, 3), "c");
  EXPECT_EQ(valueOr(c, 4), "d");
  EXPECT_EQ(c.stats().bytes, 30u);
  // Order is now (hot → cold) 4 3 1; a 25-byte insert leaves room for
  // nothing else, so all three go, coldest first.
  c.put(5, val("e"), 25);
  EXPECT_EQ(c.stats().entries, 1u);
  EXPECT_EQ(c.stats().bytes, 25u);
  EXPECT_EQ(valueOr(c, 5), "e");
}

TEST(LruCacheTest, EvictsOnlyAsMuchAsNeeded) {
  Cache c(100);
  for (int i = 0; i < 10; ++i) c.put(i, val(std::to_string(i)), 10);
  c.put(100, val("x"), 15);  // over by 15: the two coldest (0, 1) go
  EXPECT_EQ(c.get(0), nullptr);
  EXPECT_EQ(c.get(1), nullptr);
  for (int i = 2; i < 10; ++i) EXPECT_EQ(valueOr(c, i), std::to_string(i));
  EXPECT_EQ(c.stats().bytes, 95u);
}

TEST(LruCacheTest, ReplacingAKeyReplacesItsCost) {
  Cache c(50);
  c.put(1, val("small"), 10);
  c.put(1, val("bigger"), 40);
  EXPECT_EQ(c.stats().entries, 1u);
  EXPECT_EQ(c.stats().bytes, 40u);
  EXPECT_EQ(valueOr(c, 1), "bigger");
  c.put(2, val("two"), 10);
  EXPECT_EQ(c.stats().bytes, 50u);
  c.put(1, val("tiny"), 1);
  EXPECT_EQ(c.stats().bytes, 11u);
}

TEST(LruCacheTest, ValueLargerThanTheBudgetIsNotKept) {
  Cache c(50);
  c.put(1, val("a"), 20);
  c.put(2, val("huge"), 51);
  EXPECT_EQ(c.get(2), nullptr);
  EXPECT_EQ(valueOr(c, 1), "a") << "an oversized value must not evict the others";
  // Nor may the old value of that key survive a put of a new one.
  c.put(1, val("replaced but too big"), 51);
  EXPECT_EQ(c.get(1), nullptr);
  EXPECT_EQ(c.stats().bytes, 0u);
  // Exactly the budget fits.
  c.put(3, val("exact"), 50);
  EXPECT_EQ(valueOr(c, 3), "exact");
}

TEST(LruCacheTest, ZeroBudgetKeepsNothing) {
  Cache c(0);
  c.put(1, val("a"), 1);
  EXPECT_EQ(c.get(1), nullptr);
  c.put(2, val("free"), 0);  // a zero-cost value fits a zero budget
  EXPECT_EQ(valueOr(c, 2), "free");
}

TEST(LruCacheTest, EvictedValueStaysValidForItsReader) {
  Cache c(10);
  c.put(1, val("kept by the reader"), 10);
  auto held = c.get(1);
  c.put(2, val("other"), 10);
  EXPECT_EQ(c.get(1), nullptr);
  ASSERT_NE(held, nullptr);
  EXPECT_EQ(*held, "kept by the reader");
}

TEST(LruCacheTest, StringKeys) {
  LruCache<std::string, int> c(2);
  c.put("a", std::make_shared<const int>(1), 1);
  c.put("b", std::make_shared<const int>(2), 1);
  c.put("c", std::make_shared<const int>(3), 1);
  EXPECT_EQ(c.get("a"), nullptr);
  ASSERT_NE(c.get("c"), nullptr);
  EXPECT_EQ(*c.get("c"), 3);
}

// Many threads putting, getting and replacing: every value found belongs to
// its key, the budget holds whenever it is looked at, and the counts add up.
TEST(LruCacheTest, ManyThreads) {
  constexpr size_t kBudget = 4096;
  constexpr int kThreads = 8;
  constexpr int kOps = 20000;
  Cache c(kBudget);
  std::atomic<uint64_t> gets{0};
  std::atomic<bool> wrong{false}, overBudget{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < kOps; ++i) {
        int key = static_cast<int>(rng() % 512);
        if (rng() % 3 == 0) {
          c.put(key, val("v" + std::to_string(key)), 1 + rng() % 64);
        } else {
          ++gets;
          auto v = c.get(key);
          if (v && *v != "v" + std::to_string(key)) wrong = true;
        }
        if (i % 256 == 0 && c.stats().bytes > kBudget) overBudget = true;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_FALSE(wrong);
  EXPECT_FALSE(overBudget);
  auto s = c.stats();
  EXPECT_LE(s.bytes, kBudget);
  EXPECT_EQ(s.hits + s.misses, gets.load());
  EXPECT_GT(s.hits, 0u);
}

}  // namespace
}  // namespace hgvfs::store
