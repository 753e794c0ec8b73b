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
// transaction, exclusive to resize) is taken before LMDB's own locks.

#include <lmdb.h>

#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "hgbridge/bytes.h"
#include "hgbridge/result.h"

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
  static hg::Result<std::unique_ptr<LmdbEnv>> open(const std::string& dir,
                                                   const std::vector<std::string>& names,
                                                   const Options& options);
  static hg::Result<std::unique_ptr<LmdbEnv>> open(const std::string& dir,
                                                   const std::vector<std::string>& names) {
    return open(dir, names, Options{});
  }
  ~LmdbEnv();
  LmdbEnv(const LmdbEnv&) = delete;
  LmdbEnv& operator=(const LmdbEnv&) = delete;

  Dbi dbi(size_t i) const { return dbis_[i]; }
  const std::string& path() const { return path_; }

  // The value of `key`, copied out; nullopt when absent.
  hg::Result<std::optional<hg::Bytes>> get(Dbi dbi, hg::ByteView key);

  // Runs `fn` in a write transaction and commits it. `fn` may be called
  // again (after the map grew), so it must only write through `txn`.
  hg::Status write(const std::function<hg::Status(MDB_txn* txn)>& fn);

  // Helpers for use inside write(): put (overwriting or not) and delete.
  static hg::Status put(MDB_txn* txn, Dbi dbi, hg::ByteView key, hg::ByteView value,
                        bool overwrite = true);
  static hg::Status del(MDB_txn* txn, Dbi dbi, hg::ByteView key);

  // Calls `fn(key, value)` for every key starting with `prefix`, in key
  // order, inside one read transaction; `fn` returns false to stop. The
  // views are valid only during the call.
  hg::Status scan(Dbi dbi, hg::ByteView prefix,
                  const std::function<bool(hg::ByteView key, hg::ByteView value)>& fn);

  // Flushes committed transactions to disk (for environments opened with
  // noSync: an fsync of the whole map).
  hg::Status sync();

  size_t mapSize() const;

 private:
  LmdbEnv() = default;
  hg::Error lmdbError(int rc, const std::string& what) const;
  hg::Status grow(size_t seenMapSize);

  MDB_env* env_ = nullptr;
  std::string path_;
  std::vector<Dbi> dbis_;
  mutable std::shared_mutex resizeMutex_;
};

}  // namespace hgvfs::store
