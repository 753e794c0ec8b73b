#pragma once
// A least-recently-used cache bounded by bytes, not entries.
//
// Values are shared_ptr<const V>: a reader keeps its value alive after it is
// evicted. Each insert names the bytes it costs; inserting past the budget
// evicts from the cold end. A value larger than the whole budget is not kept.
//
// Thread rules: any thread; one internal mutex (a leaf: no other lock is
// taken while it is held).

#include <cstddef>
#include <list>
#include <memory>
#include <unordered_map>
#include <utility>

#include "base/thread_annotations.h"

namespace hgvfs::store {

template <typename K, typename V>
class LruCache {
 public:
  explicit LruCache(size_t budgetBytes) : budget_(budgetBytes) {}

  std::shared_ptr<const V> get(const K& key) EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    auto it = map_.find(key);
    if (it == map_.end()) {
      ++misses_;
      return nullptr;
    }
    ++hits_;
    order_.splice(order_.begin(), order_, it->second);
    return it->second->value;
  }

  void put(const K& key, std::shared_ptr<const V> value, size_t bytes) EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    auto it = map_.find(key);
    if (it != map_.end()) {
      used_ -= it->second->bytes;
      order_.erase(it->second);
      map_.erase(it);
    }
    // Too big to keep; the old value (dropped above) must not be served for it.
    if (bytes > budget_) return;
    order_.push_front(Node{key, std::move(value), bytes});
    map_.emplace(key, order_.begin());
    used_ += bytes;
    while (used_ > budget_ && !order_.empty()) {
      used_ -= order_.back().bytes;
      map_.erase(order_.back().key);
      order_.pop_back();
    }
  }

  struct Stats {
    size_t bytes, entries, hits, misses;
  };
  Stats stats() const EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    return {used_, map_.size(), hits_, misses_};
  }

 private:
  struct Node {
    K key;
    std::shared_ptr<const V> value;
    size_t bytes;
  };
  // Lock order: a leaf: nothing else is locked while it is held. An evicted
  // value may be freed under it, so V's destructor must lock nothing (Tree
  // and Bytes lock nothing).
  mutable Mutex mutex_;
  const size_t budget_;
  size_t used_ GUARDED_BY(mutex_) = 0;
  size_t hits_ GUARDED_BY(mutex_) = 0;
  size_t misses_ GUARDED_BY(mutex_) = 0;
  std::list<Node> order_ GUARDED_BY(mutex_);  // most recently used first
  std::unordered_map<K, typename std::list<Node>::iterator> map_ GUARDED_BY(mutex_);
};

}  // namespace hgvfs::store
