// Overlay: extended attributes, in the "xattrs" database (overlay.h).
//
//   database "xattrs", key `ino ‖ name` (u64 big-endian, then the full
//   name's bytes, "user.x" as the caller wrote it):
//     u8  version              1 byte    kOverlayFormat
//     value                    the rest: the attribute's bytes
//
// Space: like ext4 with 4 KiB blocks (where all attributes of an inode share
// one block), an inode's attributes fit in kOverlayXattrSpace bytes, each
// costing 16 bytes, its name after the namespace prefix and its value, both
// rounded up to 4 bytes; a set that would pass it is ENOSPC. (A value above
// 64 KiB never gets here: the kernel answers E2BIG, and ERANGE for a name
// above 255 bytes.)

#include <sys/xattr.h>

#include <cerrno>
#include <cstring>

#include "fs/log.h"
#include "fs/overlay.h"

namespace hgvfs::fs {
namespace {

constexpr size_t kOverlayXattrSpace = 4096 - 32 - 4;

Bytes xattrKey(uint64_t ino, ByteView name) {
  Bytes key(8, '\0');
  for (int i = 0; i < 8; ++i) key[i] = static_cast<char>((ino >> (56 - 8 * i)) & 0xff);
  key += name;
  return key;
}

size_t round4(size_t n) { return (n + 3) & ~size_t{3}; }

// What an attribute takes of kOverlayXattrSpace.
size_t xattrCost(ByteView name, size_t valueSize) {
  size_t dot = name.find('.');
  size_t suffix = dot == ByteView::npos ? name.size() : name.size() - dot - 1;
  return 16 + round4(suffix) + round4(valueSize);
}

Error xattrError(int err, std::string what) {
  Error e = invalidArgument(std::move(what));
  e.err = err;
  return e;
}

}  // namespace

bool Overlay::hasXattrs(uint64_t ino) const {
  MutexLock lock(xattrMutex_);
  return xattrInodes_.count(ino) > 0;
}

Status Overlay::loadXattrInodes() {
  std::unordered_set<uint64_t> inodes;
  HG_RETURN_IF_ERROR(env_->scan(env_->dbi(kXattrsDb), {}, [&](ByteView key, ByteView) {
    if (key.size() >= 8) inodes.insert(be64At(key, 0));
    return true;
  }));
  MutexLock lock(xattrMutex_);
  xattrInodes_ = std::move(inodes);
  return okStatus();
}

Result<std::optional<Bytes>> Overlay::getXattr(uint64_t ino, ByteView name) {
  std::optional<Bytes> out;
  if (!hasXattrs(ino)) return out;
  Bytes key = xattrKey(ino, name);
  bool bad = false;
  HG_RETURN_IF_ERROR(env_->scan(env_->dbi(kXattrsDb), key, [&](ByteView k, ByteView v) {
    if (k.size() != key.size()) return true;  // a longer name
    if (v.empty() || u8At(v, 0) != kOverlayFormat) {
      bad = true;
    } else {
      out.emplace(v.substr(1));
    }
    return false;
  }));
  if (bad) return corrupt("extended attribute of unknown version", env_->path());
  return out;
}

Result<std::vector<Bytes>> Overlay::listXattrs(uint64_t ino) {
  std::vector<Bytes> names;
  if (!hasXattrs(ino)) return names;
  HG_RETURN_IF_ERROR(
      env_->scan(env_->dbi(kXattrsDb), xattrKey(ino, {}), [&](ByteView key, ByteView) {
        names.emplace_back(key.substr(8));
        return true;
      }));
  return names;
}

Status Overlay::setXattr(uint64_t ino, ByteView name, ByteView value, int flags) {
  Bytes prefix = xattrKey(ino, {});
  Bytes key = xattrKey(ino, name);
  Bytes stored(1, static_cast<char>(kOverlayFormat));
  stored += value;
  MDB_dbi dbi = env_->dbi(kXattrsDb);
  HG_RETURN_IF_ERROR(env_->write([&](MDB_txn* txn) -> Status {
    // The space the others take, and whether this one exists.
    size_t used = 0;
    bool exists = false;
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(txn, dbi, &cursor);
    if (rc != 0) return ioError(EIO, mdb_strerror(rc), env_->path());
    MDB_val k{prefix.size(), prefix.data()}, v;
    rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size >= 8 && std::memcmp(k.mv_data, prefix.data(), 8) == 0) {
      ByteView other(static_cast<const char*>(k.mv_data) + 8, k.mv_size - 8);
      if (other == name) {
        exists = true;
      } else {
        used += xattrCost(other, v.mv_size - 1);
      }
      rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if ((flags & XATTR_CREATE) && exists) return xattrError(EEXIST, "attribute exists");
    if ((flags & XATTR_REPLACE) && !exists) return xattrError(ENODATA, "no such attribute");
    if (used + xattrCost(name, value.size()) > kOverlayXattrSpace) {
      return xattrError(ENOSPC, "no space left for extended attributes");
    }
    return store::LmdbEnv::put(txn, dbi, key, stored);
  }));
  MutexLock lock(xattrMutex_);
  xattrInodes_.insert(ino);
  return okStatus();
}

Status Overlay::removeXattr(uint64_t ino, ByteView name) {
  if (!hasXattrs(ino)) return xattrError(ENODATA, "no such attribute");
  Bytes key = xattrKey(ino, name);
  Bytes prefix = xattrKey(ino, {});
  MDB_dbi dbi = env_->dbi(kXattrsDb);
  bool last = false;
  HG_RETURN_IF_ERROR(env_->write([&](MDB_txn* txn) -> Status {
    MDB_val k{key.size(), key.data()}, v;
    int rc = mdb_del(txn, dbi, &k, nullptr);
    if (rc == MDB_NOTFOUND) return xattrError(ENODATA, "no such attribute");
    if (rc != 0) return ioError(EIO, mdb_strerror(rc), env_->path());
    MDB_cursor* cursor = nullptr;
    rc = mdb_cursor_open(txn, dbi, &cursor);
    if (rc != 0) return ioError(EIO, mdb_strerror(rc), env_->path());
    MDB_val p{prefix.size(), prefix.data()};
    rc = mdb_cursor_get(cursor, &p, &v, MDB_SET_RANGE);
    last = !(rc == 0 && p.mv_size >= 8 && std::memcmp(p.mv_data, prefix.data(), 8) == 0);
    mdb_cursor_close(cursor);
    return okStatus();
  }));
  if (last) {
    MutexLock lock(xattrMutex_);
    xattrInodes_.erase(ino);
  }
  return okStatus();
}

Status Overlay::deleteXattrsIn(MDB_txn* txn, uint64_t ino) {
  if (!hasXattrs(ino)) return okStatus();
  Bytes prefix = xattrKey(ino, {});
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn, env_->dbi(kXattrsDb), &cursor);
  if (rc != 0) return ioError(EIO, mdb_strerror(rc), env_->path());
  MDB_val k{prefix.size(), prefix.data()}, v;
  rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
  while (rc == 0 && k.mv_size >= 8 && std::memcmp(k.mv_data, prefix.data(), 8) == 0) {
    rc = mdb_cursor_del(cursor, 0);
    if (rc != 0) break;
    // Positioned again from the prefix: after deleting the last record of
    // the database, the cursor has no current record.
    k = MDB_val{prefix.size(), prefix.data()};
    rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
  }
  mdb_cursor_close(cursor);
  if (rc != 0 && rc != MDB_NOTFOUND) return ioError(EIO, mdb_strerror(rc), env_->path());
  return okStatus();
}

void Overlay::forgetXattrs(uint64_t ino) {
  MutexLock lock(xattrMutex_);
  xattrInodes_.erase(ino);
}

Status Overlay::removeXattrs(uint64_t ino) {
  HG_RETURN_IF_ERROR(env_->write([&](MDB_txn* txn) { return deleteXattrsIn(txn, ino); }));
  forgetXattrs(ino);  // once gone on disk
  return okStatus();
}

Result<size_t> Overlay::dropXattrsExcept(const std::function<bool(uint64_t)>& keep) {
  std::vector<uint64_t> orphans;
  {
    MutexLock lock(xattrMutex_);
    for (uint64_t ino : xattrInodes_) {
      if (!keep(ino)) orphans.push_back(ino);
    }
  }
  for (uint64_t ino : orphans) {
    log().debug("overlay repair: extended attributes of inode {} that nothing names; removed", ino);
    HG_RETURN_IF_ERROR(removeXattrs(ino));
  }
  return orphans.size();
}

}  // namespace hgvfs::fs
