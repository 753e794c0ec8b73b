#pragma once
// Lock rules the compiler checks: Clang's thread-safety analysis
// (-Wthread-safety), in the style of leveldb's port/thread_annotations.h,
// and mutex types that carry the annotations (libstdc++'s do not).
//
//   Mutex mu_;                      int count_ GUARDED_BY(mu_);
//   void bump() EXCLUDES(mu_) { MutexLock lock(mu_); ++count_; }
//   void bumpLocked() REQUIRES(mu_);
//
//   SharedMutex ns_;                 a reader/writer lock:
//   ReaderLock lock(ns_);            shared (REQUIRES_SHARED(ns_) methods)
//   WriterLock lock(ns_);            exclusive (REQUIRES(ns_) methods)
//
// The `thread-safety` preset builds with -Werror=thread-safety; other
// compilers see empty macros. Where the order between two locks matters,
// ACQUIRED_AFTER / ACQUIRED_BEFORE write it next to the declaration.
//
// Thread rules: these are the locks.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#if defined(__clang__)
#define HGVFS_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define HGVFS_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) HGVFS_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY HGVFS_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) HGVFS_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) HGVFS_THREAD_ANNOTATION(pt_guarded_by(x))
#define ACQUIRED_AFTER(...) HGVFS_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define ACQUIRED_BEFORE(...) HGVFS_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define REQUIRES(...) HGVFS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) HGVFS_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
#define ACQUIRE(...) HGVFS_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) HGVFS_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) HGVFS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) HGVFS_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define RELEASE_GENERIC(...) HGVFS_THREAD_ANNOTATION(release_generic_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) HGVFS_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) HGVFS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) HGVFS_THREAD_ANNOTATION(assert_capability(x))
#define RETURN_CAPABILITY(x) HGVFS_THREAD_ANNOTATION(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS HGVFS_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace hgvfs {

class CAPABILITY("mutex") Mutex {
 public:
  void lock() ACQUIRE() { m_.lock(); }
  void unlock() RELEASE() { m_.unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return m_.try_lock(); }
  // For condition variables: the analysis cannot follow a wait.
  std::mutex& native() { return m_; }

 private:
  std::mutex m_;
};

class CAPABILITY("shared mutex") SharedMutex {
 public:
  void lock() ACQUIRE() { m_.lock(); }
  void unlock() RELEASE() { m_.unlock(); }
  void lock_shared() ACQUIRE_SHARED() { m_.lock_shared(); }
  void unlock_shared() RELEASE_SHARED() { m_.unlock_shared(); }

 private:
  std::shared_mutex m_;
};

class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& m) ACQUIRE(m) : m_(m) { m_.lock(); }
  ~MutexLock() RELEASE() { m_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& m_;
};

class SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex& m) ACQUIRE(m) : m_(m) { m_.lock(); }
  ~WriterLock() RELEASE() {
    if (held_) m_.unlock();
  }
  // Gives the lock up before the end of the scope.
  void unlock() RELEASE() {
    m_.unlock();
    held_ = false;
  }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex& m_;
  bool held_ = true;
};

class SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex& m) ACQUIRE_SHARED(m) : m_(m) { m_.lock_shared(); }
  ~ReaderLock() RELEASE_GENERIC() {
    if (held_) m_.unlock_shared();
  }
  void unlock() RELEASE_GENERIC() {
    m_.unlock_shared();
    held_ = false;
  }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  SharedMutex& m_;
  bool held_ = true;
};

// A condition variable over a Mutex (leveldb's port::CondVar): wait() is
// called with the mutex held and returns with it held.
class CondVar {
 public:
  explicit CondVar(Mutex* mu) : mu_(mu) {}
  void wait() {
    std::unique_lock<std::mutex> lock(mu_->native(), std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  template <typename Clock, typename Duration>
  void waitUntil(const std::chrono::time_point<Clock, Duration>& deadline) {
    std::unique_lock<std::mutex> lock(mu_->native(), std::adopt_lock);
    cv_.wait_until(lock, deadline);
    lock.release();
  }
  void signal() { cv_.notify_one(); }
  void signalAll() { cv_.notify_all(); }

 private:
  Mutex* mu_;
  std::condition_variable cv_;
};

}  // namespace hgvfs
