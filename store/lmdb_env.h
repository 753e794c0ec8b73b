#pragma once
// A small RAII layer over one LMDB environment (lmdb.h).
//
// Named databases are opened once, at open(), and addressed by handle.
// Every read runs in its own read-only transaction that ends inside the
// call (no transaction outlives a function). Writes go through write(),
// one transaction per call; LMDB itself serializes writers, across threads
// and across the processes sharing the environment.
//
// The map grows as needed: a write that hits MDB_MAP_FULL doubles the map
// size under an exclusive lock (no transaction of this process may be open
// while the size changes) and is retried; a map grown by another process
// is adopted on MDB_MAP_RESIZED. A full disk is an Io error (ENOSPC).
//
// Thread rules: any thread. Lock order: resizeMutex_ (shared for every
// transaction, exclusive to resize) is taken before LMDB's own locks; see
// its declaration.

#include <lmdb.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "base/thread_annotations.h"

namespace hgvfs::store {

class LmdbEnv {
 public:
  struct Options {
    size_t initialMapSize = size_t{1} << 30;
    unsigned maxReaders = 1024;
    bool noSync = true;  // a cache: losing the last commits in a crash is fine
  };
  using Dbi = MDB_dbi;

  // Opens (creating) the environment in directory `dir` and the named
  // databases `names`, whose handles dbi(i) returns in the same order.
  static Result<std::unique_ptr<LmdbEnv>> open(const std::string& dir,
                                               const std::vector<std::string>& names,
                                               const Options& options);
  static Result<std::unique_ptr<LmdbEnv>> open(const std::string& dir,
                                               const std::vector<std::string>& names) {
    return open(dir, names, Options{});
  }
  ~LmdbEnv();
  LmdbEnv(const LmdbEnv&) = delete;
  LmdbEnv& operator=(const LmdbEnv&) = delete;

  Dbi dbi(size_t i) const { return dbis_[i]; }
  const std::string& path() const { return path_; }

  // The value of `key`, copied out; nullopt when absent.
  Result<std::optional<Bytes>> get(Dbi dbi, ByteView key) EXCLUDES(resizeMutex_);

  // Runs `fn` in a write transaction and commits it. `fn` may be called
  // again (after the map grew) and runs under resizeMutex_ (shared), so it
  // must only write through `txn` and must not call get(), scan() or write().
  Status write(const std::function<Status(MDB_txn* txn)>& fn) EXCLUDES(resizeMutex_);

  // Helpers for use inside write(): put (overwriting or not) and delete.
  static Status put(MDB_txn* txn, Dbi dbi, ByteView key, ByteView value, bool overwrite = true);
  static Status del(MDB_txn* txn, Dbi dbi, ByteView key);

  // Calls `fn(key, value)` for every key starting with `prefix`, in key
  // order, inside one read transaction; `fn` returns false to stop. The
  // views are valid only during the call. Like write()'s, `fn` runs under
  // resizeMutex_ (shared) and must not call get(), scan() or write().
  Status scan(Dbi dbi, ByteView prefix, const std::function<bool(ByteView key, ByteView value)>& fn)
      EXCLUDES(resizeMutex_);

  // Flushes committed transactions to disk (for environments opened with
  // noSync: an fsync of the whole map).
  Status sync();

  size_t mapSize() const;

  // Entries and bytes of pages in use (branch, leaf and overflow pages) of
  // one database, from LMDB's own counts (mdb_stat): no scan.
  struct DbUsage {
    uint64_t entries = 0;
    uint64_t bytes = 0;
  };
  Result<DbUsage> usage(Dbi dbi) EXCLUDES(resizeMutex_);

 private:
  LmdbEnv() = default;
  Error lmdbError(int rc, const std::string& what) const;
  // Begins a transaction (`flags` as mdb_txn_begin's). The map size must not
  // change while it is open, hence the shared lock until it ends.
  int beginTxn(unsigned flags, MDB_txn** txn) REQUIRES_SHARED(resizeMutex_);
  // Adopts the size of a map another process grew (after MDB_MAP_RESIZED).
  void adoptMapSize() REQUIRES(resizeMutex_);
  Status grow(size_t seenMapSize) EXCLUDES(resizeMutex_);

  MDB_env* env_ = nullptr;
  std::string path_;
  std::vector<Dbi> dbis_;
  // Shared by every transaction of this process, exclusive to change the
  // map size (LMDB allows that only while no transaction is open). Lock
  // order: after any lock of the caller, before LMDB's own (its writer
  // mutex and reader table); among hgvfs's locks a leaf, as the callbacks
  // of write() and scan(), which run under it, lock nothing of hgvfs.
  mutable SharedMutex resizeMutex_;
};

}  // namespace hgvfs::store
