#include "store/lmdb_env.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace hgvfs::store {
namespace {

MDB_val toVal(ByteView v) { return MDB_val{v.size(), const_cast<char*>(v.data())}; }

Error errorFor(int rc, const std::string& what, const std::string& where) {
  if (rc == ENOSPC) return ioError(ENOSPC, what + ": no space left on device", where);
  if (rc > 0) return ioError(rc, what + ": " + std::strerror(rc), where);
  if (rc == MDB_CORRUPTED || rc == MDB_PANIC || rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
    return corrupt(what + ": " + mdb_strerror(rc), where);
  }
  return ioError(EIO, what + ": " + mdb_strerror(rc), where);
}

}  // namespace

Error LmdbEnv::lmdbError(int rc, const std::string& what) const {
  return errorFor(rc, what, path_);
}

Result<std::unique_ptr<LmdbEnv>> LmdbEnv::open(const std::string& dir,
                                               const std::vector<std::string>& names,
                                               const Options& options) {
  std::unique_ptr<LmdbEnv> env(new LmdbEnv());
  env->path_ = dir;
  for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
    std::string part = dir.substr(0, slash);
    if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      return ioError(errno, std::string("cannot create cache directory: ") + strerror(errno), part);
    }
    if (slash == std::string::npos) break;
  }
  int rc = mdb_env_create(&env->env_);
  if (rc != 0) return errorFor(rc, "mdb_env_create", dir);
  mdb_env_set_maxdbs(env->env_, static_cast<MDB_dbi>(names.size() + 1));
  mdb_env_set_maxreaders(env->env_, options.maxReaders);
  mdb_env_set_mapsize(env->env_, options.initialMapSize);
  unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
  if (options.noSync) flags |= MDB_NOSYNC;
  rc = mdb_env_open(env->env_, dir.c_str(), flags, 0600);
  if (rc != 0) return errorFor(rc, "cannot open the object cache", dir);
  // The map may already be larger than asked (another process grew it).
  mdb_env_set_mapsize(env->env_, 0);

  Status status = env->write([&](MDB_txn* txn) -> Status {
    env->dbis_.clear();
    for (const auto& name : names) {
      MDB_dbi dbi;
      int r = mdb_dbi_open(txn, name.c_str(), MDB_CREATE, &dbi);
      if (r != 0) return errorFor(r, "cannot open database '" + name + "'", dir);
      env->dbis_.push_back(dbi);
    }
    return okStatus();
  });
  if (!status.ok()) return std::move(status).takeError();
  return env;
}

LmdbEnv::~LmdbEnv() {
  if (env_) mdb_env_close(env_);
}

size_t LmdbEnv::mapSize() const {
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  return info.me_mapsize;
}

int LmdbEnv::beginTxn(unsigned flags, MDB_txn** txn) {
  return mdb_txn_begin(env_, nullptr, flags, txn);
}

void LmdbEnv::adoptMapSize() { mdb_env_set_mapsize(env_, 0); }

Result<std::optional<Bytes>> LmdbEnv::get(Dbi dbi, ByteView key) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    ReaderLock lock(resizeMutex_);
    MDB_txn* txn = nullptr;
    int rc = beginTxn(MDB_RDONLY, &txn);
    if (rc == MDB_MAP_RESIZED) {
      lock.unlock();
      WriterLock ex(resizeMutex_);
      adoptMapSize();
      continue;
    }
    if (rc != 0) return lmdbError(rc, "cannot begin a read transaction");
    MDB_val k = toVal(key), v;
    rc = mdb_get(txn, dbi, &k, &v);
    std::optional<Bytes> out;
    if (rc == 0) out.emplace(static_cast<const char*>(v.mv_data), v.mv_size);
    mdb_txn_abort(txn);
    if (rc != 0 && rc != MDB_NOTFOUND) return lmdbError(rc, "read failed");
    return out;
  }
  return lmdbError(MDB_MAP_RESIZED, "the map keeps being resized");
}

Status LmdbEnv::scan(Dbi dbi, ByteView prefix, const std::function<bool(ByteView, ByteView)>& fn) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    ReaderLock lock(resizeMutex_);
    MDB_txn* txn = nullptr;
    int rc = beginTxn(MDB_RDONLY, &txn);
    if (rc == MDB_MAP_RESIZED) {
      lock.unlock();
      WriterLock ex(resizeMutex_);
      adoptMapSize();
      continue;
    }
    if (rc != 0) return lmdbError(rc, "cannot begin a read transaction");
    MDB_cursor* cursor = nullptr;
    rc = mdb_cursor_open(txn, dbi, &cursor);
    if (rc != 0) {
      mdb_txn_abort(txn);
      return lmdbError(rc, "cannot open a cursor");
    }
    MDB_val k = toVal(prefix), v;
    rc = mdb_cursor_get(cursor, &k, &v, prefix.empty() ? MDB_FIRST : MDB_SET_RANGE);
    while (rc == 0) {
      ByteView key(static_cast<const char*>(k.mv_data), k.mv_size);
      if (key.substr(0, prefix.size()) != prefix) break;
      if (!fn(key, ByteView(static_cast<const char*>(v.mv_data), v.mv_size))) break;
      rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    mdb_txn_abort(txn);
    if (rc != 0 && rc != MDB_NOTFOUND) return lmdbError(rc, "scan failed");
    return okStatus();
  }
  return lmdbError(MDB_MAP_RESIZED, "the map keeps being resized");
}

Status LmdbEnv::sync() {
  int rc = mdb_env_sync(env_, 1);
  if (rc != 0) return lmdbError(rc, "sync failed");
  return okStatus();
}

Status LmdbEnv::grow(size_t seenMapSize) {
  WriterLock ex(resizeMutex_);
  if (mapSize() != seenMapSize) return okStatus();  // another thread grew it
  int rc = mdb_env_set_mapsize(env_, seenMapSize * 2);
  if (rc != 0) return lmdbError(rc, "cannot grow the map");
  return okStatus();
}

Status LmdbEnv::write(const std::function<Status(MDB_txn*)>& fn) {
  for (int attempt = 0; attempt < 40; ++attempt) {
    ReaderLock lock(resizeMutex_);
    size_t seen = mapSize();
    MDB_txn* txn = nullptr;
    int rc = beginTxn(0, &txn);
    if (rc == MDB_MAP_RESIZED) {
      lock.unlock();
      WriterLock ex(resizeMutex_);
      adoptMapSize();
      continue;
    }
    if (rc != 0) return lmdbError(rc, "cannot begin a write transaction");
    Status status = fn(txn);
    if (!status.ok()) {
      mdb_txn_abort(txn);
      if (status.error().kind == ErrorKind::kIo && status.error().err == MDB_MAP_FULL) {
        lock.unlock();
        HG_RETURN_IF_ERROR(grow(seen));
        continue;
      }
      return status;
    }
    rc = mdb_txn_commit(txn);
    if (rc == MDB_MAP_FULL) {
      lock.unlock();
      HG_RETURN_IF_ERROR(grow(seen));
      continue;
    }
    if (rc != 0) return lmdbError(rc, "commit failed");
    return okStatus();
  }
  return lmdbError(MDB_MAP_FULL, "the map could not grow enough");
}

Status LmdbEnv::put(MDB_txn* txn, Dbi dbi, ByteView key, ByteView value, bool overwrite) {
  MDB_val k = toVal(key), v = toVal(value);
  int rc = mdb_put(txn, dbi, &k, &v, overwrite ? 0 : MDB_NOOVERWRITE);
  if (rc == 0 || rc == MDB_KEYEXIST) return okStatus();
  if (rc == MDB_MAP_FULL) return ioError(MDB_MAP_FULL, "map full");
  return errorFor(rc, "write failed", {});
}

Status LmdbEnv::del(MDB_txn* txn, Dbi dbi, ByteView key) {
  MDB_val k = toVal(key);
  int rc = mdb_del(txn, dbi, &k, nullptr);
  if (rc == 0 || rc == MDB_NOTFOUND) return okStatus();
  if (rc == MDB_MAP_FULL) return ioError(MDB_MAP_FULL, "map full");
  return errorFor(rc, "delete failed", {});
}

Result<LmdbEnv::DbUsage> LmdbEnv::usage(Dbi dbi) {
  ReaderLock lock(resizeMutex_);
  MDB_txn* txn = nullptr;
  int rc = beginTxn(MDB_RDONLY, &txn);
  if (rc != 0) return lmdbError(rc, "cannot begin a read transaction");
  MDB_stat st{};
  rc = mdb_stat(txn, dbi, &st);
  mdb_txn_abort(txn);
  if (rc != 0) return lmdbError(rc, "cannot read database statistics");
  uint64_t pages = st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
  return DbUsage{st.ms_entries, pages * st.ms_psize};
}

}  // namespace hgvfs::store
