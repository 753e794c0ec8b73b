#include "fs/overlay.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "fs/log.h"

namespace hgvfs::fs {
namespace {

enum Db : size_t { kDirs = 0, kMeta = 1, kXattrs = 2 };
static_assert(kXattrs == Overlay::kXattrsDb);

constexpr ByteView kFormatKey = "format";
constexpr ByteView kReservedKey = "reserved";
constexpr size_t kInodeKeySize = 8;  // a "dirs" key starts with the directory's inode
constexpr uint8_t kMaterializedFlag = 1;

void putU8(Bytes& out, uint8_t v) { out.push_back(static_cast<char>(v)); }

void putBe32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

void putBe64(Bytes& out, uint64_t v) {
  putBe32(out, static_cast<uint32_t>(v >> 32));
  putBe32(out, static_cast<uint32_t>(v));
}

void putTime(Bytes& out, const timespec& t) {
  putBe64(out, static_cast<uint64_t>(int64_t{t.tv_sec}));
  putBe64(out, static_cast<uint64_t>(int64_t{t.tv_nsec}));
}

// The caller checked that 16 bytes fit at `offset`.
timespec timeAt(ByteView data, size_t offset) {
  timespec t{};
  t.tv_sec = static_cast<time_t>(static_cast<int64_t>(be64At(data, offset)));
  t.tv_nsec = static_cast<long>(static_cast<int64_t>(be64At(data, offset + 8)));
  return t;
}

Bytes dirKey(uint64_t ino) {
  Bytes key;
  putBe64(key, ino);
  return key;
}

uint64_t keyInode(ByteView key) { return be64At(key, 0); }

// The version byte that starts every value.
Status checkVersion(ByteView data, const std::string& what) {
  if (data.empty()) return corrupt("empty " + what);
  unsigned version = u8At(data, 0);
  if (version > kOverlayFormat) {
    return unsupported(what + " of version " + std::to_string(version) +
                       ", written by a newer hgvfs (this one reads version " +
                       std::to_string(kOverlayFormat) + ")");
  }
  if (version != kOverlayFormat) {
    return corrupt(what + " of unknown version " + std::to_string(version));
  }
  return okStatus();
}

Error badSize(const std::string& what, size_t size, size_t expected) {
  return corrupt(what + " of " + std::to_string(size) + " bytes (expected " +
                 std::to_string(expected) + ")");
}

Bytes encodeReserved(uint64_t upTo) {
  Bytes out;
  putU8(out, kOverlayFormat);
  putBe64(out, upTo);
  return out;
}

Result<uint64_t> decodeReserved(ByteView data) {
  HG_RETURN_IF_ERROR(checkVersion(data, "overlay inode mark"));
  if (data.size() != kOverlayReservedSize) {
    return badSize("overlay inode mark", data.size(), kOverlayReservedSize);
  }
  return be64At(data, 1);
}

// Names the record an error is about: the environment, the directory and
// (for an entry) the entry's name.
Error located(Error e, const std::string& env, uint64_t dir, std::optional<ByteView> name) {
  e.where = env + " (directory inode " + std::to_string(dir);
  if (name) e.where += ", entry '" + printable(*name) + "'";
  e.where += ")";
  return e;
}

Error sysError(const std::string& what, const std::string& where) {
  int err = errno;
  return ioError(err, what + ": " + std::strerror(err), where);
}

// Format 1 (see overlay.h), read exactly as hgvfs up to 401fa2a read it,
// in host byte order. Only the upgrade uses it.
namespace format1 {

template <typename T>
bool getRaw(ByteView& in, T& v) {
  if (in.size() < sizeof v) return false;
  std::memcpy(&v, in.data(), sizeof v);
  in.remove_prefix(sizeof v);
  return true;
}

bool getTime(ByteView& in, timespec& t) {
  int64_t s, ns;
  if (!getRaw(in, s) || !getRaw(in, ns)) return false;
  t.tv_sec = s;
  t.tv_nsec = ns;
  return true;
}

Result<OverlayEntry> decodeEntry(ByteView data) {
  OverlayEntry e;
  uint8_t flags = 0;
  if (!getRaw(data, e.ino) || !getRaw(data, e.mode) || !getRaw(data, e.uid) ||
      !getRaw(data, e.gid) || !getRaw(data, flags)) {
    return corrupt("truncated format 1 overlay entry");
  }
  e.materialized = flags & 1;
  if (!e.materialized) {
    if (data.size() < hg::Node::kSize) return corrupt("truncated format 1 overlay entry");
    e.id = hg::Node::fromRaw(data.data());
    e.source = Bytes(data.substr(hg::Node::kSize));
  }
  return e;
}

Result<OverlayDirHeader> decodeHeader(ByteView data) {
  OverlayDirHeader h;
  if (!getRaw(data, h.mode) || !getRaw(data, h.uid) || !getRaw(data, h.gid) ||
      !getTime(data, h.atime) || !getTime(data, h.mtime) || !getTime(data, h.ctime)) {
    return corrupt("truncated format 1 overlay directory header");
  }
  return h;
}

Result<uint64_t> decodeReserved(ByteView data) {
  uint64_t mark = 0;
  if (data.size() != sizeof mark) return badSize("format 1 overlay inode mark", data.size(), 8);
  std::memcpy(&mark, data.data(), sizeof mark);
  return mark;
}

}  // namespace format1

// Every record of `dbi` as `txn` sees it, copied (the caller writes next).
Result<std::vector<std::pair<Bytes, Bytes>>> readAll(MDB_txn* txn, MDB_dbi dbi,
                                                     const std::string& where) {
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn, dbi, &cursor);
  if (rc != 0) return ioError(EIO, mdb_strerror(rc), where);
  std::vector<std::pair<Bytes, Bytes>> records;
  MDB_val k, v;
  for (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
    records.emplace_back(Bytes(static_cast<const char*>(k.mv_data), k.mv_size),
                         Bytes(static_cast<const char*>(v.mv_data), v.mv_size));
  }
  mdb_cursor_close(cursor);
  if (rc != MDB_NOTFOUND) return ioError(EIO, mdb_strerror(rc), where);
  return records;
}

struct UpgradeCounts {
  size_t directories = 0;
  size_t entries = 0;
  bool reserved = false;
  bool any() const { return directories || entries || reserved; }
};

// Rewrites every record of a format 1 overlay in format 2, inside `txn`.
// A record format 1 cannot have held fails the whole upgrade.
Status upgradeFromFormat1(MDB_txn* txn, store::LmdbEnv& env, UpgradeCounts& counts) {
  MDB_dbi dirs = env.dbi(kDirs), meta = env.dbi(kMeta);
  HG_ASSIGN_OR_RETURN(auto records, readAll(txn, dirs, env.path()));
  for (auto& [key, value] : records) {
    if (key.size() < kInodeKeySize) {
      return corrupt(
          "format 1 overlay record with a key of " + std::to_string(key.size()) + " bytes",
          env.path());
    }
    uint64_t dir = keyInode(key);
    if (key.size() == kInodeKeySize) {
      auto header = format1::decodeHeader(value);
      if (!header.ok()) return located(std::move(header).takeError(), env.path(), dir, {});
      value = header->encode();
      ++counts.directories;
    } else {
      auto entry = format1::decodeEntry(value);
      if (!entry.ok()) {
        return located(std::move(entry).takeError(), env.path(), dir,
                       ByteView(key).substr(kInodeKeySize));
      }
      value = entry->encode();
      ++counts.entries;
    }
    HG_RETURN_IF_ERROR(store::LmdbEnv::put(txn, dirs, key, value));
  }
  HG_ASSIGN_OR_RETURN(auto metaRecords, readAll(txn, meta, env.path()));
  for (const auto& [key, value] : metaRecords) {
    if (key != kReservedKey) {
      return corrupt("format 1 overlay with an unknown key '" + printable(key) + "'", env.path());
    }
    auto mark = format1::decodeReserved(value);
    if (!mark.ok()) {
      Error e = std::move(mark).takeError();
      e.where = env.path();
      return e;
    }
    HG_RETURN_IF_ERROR(store::LmdbEnv::put(txn, meta, kReservedKey, encodeReserved(*mark)));
    counts.reserved = true;
  }
  return okStatus();
}

Status checkFormatMarker(ByteView marker, const std::string& directory) {
  if (!marker.empty() && u8At(marker, 0) > kOverlayFormat) {
    return unsupported("the overlay is in format " + std::to_string(u8At(marker, 0)) +
                           ", written by a newer hgvfs (this one reads format " +
                           std::to_string(kOverlayFormat) +
                           "); mount it with that hgvfs or a newer one",
                       directory);
  }
  if (marker.size() != 1 || u8At(marker, 0) != kOverlayFormat) {
    return corrupt("the overlay's format marker is not valid ('" + printable(marker) + "')",
                   directory);
  }
  return okStatus();
}

// Formats 2 and 3 had the same records (format 2 without the "xattrs"
// database; neither with two entries naming one inode): each value has its
// version byte raised to this format's, then the marker, in one
// transaction.
Status upgradeVersionBytes(store::LmdbEnv& env, const std::string& directory, unsigned from) {
  size_t values = 0;
  HG_RETURN_IF_ERROR(env.write([&](MDB_txn* txn) -> Status {
    values = 0;
    MDB_val k{kFormatKey.size(), const_cast<char*>(kFormatKey.data())}, v;
    int rc = mdb_get(txn, env.dbi(kMeta), &k, &v);
    if (rc != 0) return ioError(EIO, mdb_strerror(rc), env.path());
    ByteView marker(static_cast<const char*>(v.mv_data), v.mv_size);
    if (marker.size() != 1 || u8At(marker, 0) != from) return checkFormatMarker(marker, directory);
    // This environment was opened without "xattrs" (format 2 has none):
    // opened here only if it exists.
    std::vector<std::pair<Db, MDB_dbi>> dbs = {{kDirs, env.dbi(kDirs)}, {kMeta, env.dbi(kMeta)}};
    MDB_dbi xattrs;
    rc = mdb_dbi_open(txn, "xattrs", 0, &xattrs);
    if (rc == 0) {
      dbs.emplace_back(kXattrs, xattrs);
    } else if (rc != MDB_NOTFOUND) {
      return ioError(EIO, mdb_strerror(rc), env.path());
    }
    for (auto [db, dbi] : dbs) {
      HG_ASSIGN_OR_RETURN(auto records, readAll(txn, dbi, env.path()));
      for (auto& [key, value] : records) {
        if (ByteView(key) == kFormatKey && db == kMeta) continue;
        if (value.empty() || u8At(value, 0) != from) {
          return corrupt("format " + std::to_string(from) + " overlay record of version " +
                             std::to_string(value.empty() ? 0 : u8At(value, 0)),
                         env.path());
        }
        value[0] = static_cast<char>(kOverlayFormat);
        HG_RETURN_IF_ERROR(store::LmdbEnv::put(txn, dbi, key, value));
        ++values;
      }
    }
    return store::LmdbEnv::put(txn, env.dbi(kMeta), kFormatKey,
                               Bytes(1, static_cast<char>(kOverlayFormat)));
  }));
  log().info("overlay {}: upgraded from format {} to format {} ({} records)", directory, from,
             kOverlayFormat, values);
  return okStatus();
}

// Makes sure the overlay in `env` is in this format: checks its marker, or
// (when it has none) writes it, after upgrading the records of a format 1
// overlay. All of that is one transaction: an overlay is never half
// upgraded, and a refused one is left as it was.
Status settleFormat(store::LmdbEnv& env, const std::string& directory) {
  HG_ASSIGN_OR_RETURN(auto marker, env.get(env.dbi(kMeta), kFormatKey));
  if (marker && marker->size() == 1 && (u8At(*marker, 0) == 2 || u8At(*marker, 0) == 3)) {
    return upgradeVersionBytes(env, directory, u8At(*marker, 0));
  }
  if (marker) return checkFormatMarker(*marker, directory);
  UpgradeCounts counts;
  HG_RETURN_IF_ERROR(env.write([&](MDB_txn* txn) -> Status {
    counts = {};
    // Another process may have settled it in the meantime.
    MDB_val k{kFormatKey.size(), const_cast<char*>(kFormatKey.data())}, v;
    int rc = mdb_get(txn, env.dbi(kMeta), &k, &v);
    if (rc == 0) {
      return checkFormatMarker(ByteView(static_cast<const char*>(v.mv_data), v.mv_size), directory);
    }
    if (rc != MDB_NOTFOUND) return ioError(EIO, mdb_strerror(rc), env.path());
    HG_RETURN_IF_ERROR(upgradeFromFormat1(txn, env, counts));
    return store::LmdbEnv::put(txn, env.dbi(kMeta), kFormatKey,
                               Bytes(1, static_cast<char>(kOverlayFormat)));
  }));
  if (counts.any()) {
    log().info("overlay {}: upgraded from format 1 to format {} ({} directories, {} entries{})",
               directory, kOverlayFormat, counts.directories, counts.entries,
               counts.reserved ? ", the inode mark" : "");
  }
  return okStatus();
}

}  // namespace

Bytes OverlayEntry::encode() const {
  Bytes out;
  out.reserve(kOverlayEntryFixedSize + (materialized ? 0 : hg::Node::kSize + 4 + source.size()));
  putU8(out, kOverlayFormat);
  putU8(out, materialized ? kMaterializedFlag : 0);
  putBe64(out, ino);
  putBe32(out, mode);
  putBe32(out, uid);
  putBe32(out, gid);
  if (!materialized) {
    out += id.view();
    putBe32(out, static_cast<uint32_t>(source.size()));
    out += source;
  }
  return out;
}

Result<OverlayEntry> OverlayEntry::decode(ByteView data) {
  HG_RETURN_IF_ERROR(checkVersion(data, "overlay entry"));
  if (data.size() < kOverlayEntryFixedSize) {
    return badSize("truncated overlay entry", data.size(), kOverlayEntryFixedSize);
  }
  OverlayEntry e;
  uint8_t flags = u8At(data, 1);
  if (flags & ~kMaterializedFlag) {
    return corrupt("overlay entry with unknown flags " + std::to_string(flags));
  }
  e.materialized = flags & kMaterializedFlag;
  e.ino = be64At(data, 2);
  e.mode = be32At(data, 10);
  e.uid = be32At(data, 14);
  e.gid = be32At(data, 18);
  size_t end = kOverlayEntryFixedSize;
  if (!e.materialized) {
    if (!fits(data, end, hg::Node::kSize + 4)) {
      return badSize("truncated overlay entry", data.size(), end + hg::Node::kSize + 4);
    }
    e.id = hg::Node::fromRaw(data.data() + end);
    uint32_t sourceSize = be32At(data, end + hg::Node::kSize);
    end += hg::Node::kSize + 4;
    if (!fits(data, end, sourceSize)) {
      return badSize("truncated overlay entry", data.size(), end + sourceSize);
    }
    e.source = Bytes(data.substr(end, sourceSize));
    end += sourceSize;
  }
  if (data.size() != end) return badSize("overlay entry", data.size(), end);
  return e;
}

Bytes OverlayDirHeader::encode() const {
  Bytes out;
  out.reserve(kOverlayDirHeaderSize);
  putU8(out, kOverlayFormat);
  putBe32(out, mode);
  putBe32(out, uid);
  putBe32(out, gid);
  putTime(out, atime);
  putTime(out, mtime);
  putTime(out, ctime);
  return out;
}

Result<OverlayDirHeader> OverlayDirHeader::decode(ByteView data) {
  HG_RETURN_IF_ERROR(checkVersion(data, "overlay directory header"));
  if (data.size() != kOverlayDirHeaderSize) {
    return badSize("overlay directory header", data.size(), kOverlayDirHeaderSize);
  }
  OverlayDirHeader h;
  h.mode = be32At(data, 1);
  h.uid = be32At(data, 5);
  h.gid = be32At(data, 9);
  h.atime = timeAt(data, 13);
  h.mtime = timeAt(data, 29);
  h.ctime = timeAt(data, 45);
  return h;
}

void OverlayBatch::putHeader(uint64_t dir, const OverlayDirHeader& header) {
  ops_.push_back({Op::kPut, dirKey(dir), header.encode()});
}

void OverlayBatch::putEntry(uint64_t dir, ByteView name, const OverlayEntry& entry) {
  ops_.push_back({Op::kPut, dirKey(dir) + Bytes(name), entry.encode()});
}

void OverlayBatch::removeEntry(uint64_t dir, ByteView name) {
  ops_.push_back({Op::kDelete, dirKey(dir) + Bytes(name), {}});
}

void OverlayBatch::removeDirectory(uint64_t dir) {
  ops_.push_back({Op::kDeleteDirectory, dirKey(dir), {}});
}

Result<std::unique_ptr<Overlay>> Overlay::open(const std::string& directory) {
  std::unique_ptr<Overlay> overlay(new Overlay());
  overlay->directory_ = directory;
  store::LmdbEnv::Options options;
  options.initialMapSize = size_t{64} << 20;
  options.maxReaders = 256;
  // Commits reach the kernel at once (a killed daemon loses nothing);
  // fsync/fsyncdir ask for the disk.
  options.noSync = true;
  HG_ASSIGN_OR_RETURN(overlay->env_,
                      store::LmdbEnv::open(directory + "/meta", {"dirs", "meta"}, options));
  // Before anything else is written: a refused overlay stays as it was.
  HG_RETURN_IF_ERROR(settleFormat(*overlay->env_, directory));
  // Then opened again with the databases format 3 added (creating them
  // would have written to an overlay that may have been refused).
  overlay->env_.reset();
  HG_ASSIGN_OR_RETURN(overlay->env_, store::LmdbEnv::open(directory + "/meta",
                                                          {"dirs", "meta", "xattrs"}, options));
  std::string files = directory + "/files";
  if (mkdir(files.c_str(), 0700) != 0 && errno != EEXIST) {
    return sysError("cannot create the overlay", files);
  }
  overlay->takeReserve();
  HG_ASSIGN_OR_RETURN(auto mark, overlay->env_->get(overlay->env_->dbi(kMeta), kReservedKey));
  if (mark) {
    auto reserved = decodeReserved(*mark);
    if (!reserved.ok()) {
      Error e = std::move(reserved).takeError();
      e.where = overlay->env_->path();
      return e;
    }
    overlay->reserved_ = *reserved;
  }
  HG_RETURN_IF_ERROR(overlay->loadXattrInodes());
  return overlay;
}

Result<std::optional<OverlayDir>> Overlay::loadDirectory(uint64_t ino) {
  std::optional<OverlayDir> dir;
  std::optional<Error> bad;
  Bytes prefix = dirKey(ino);
  HG_RETURN_IF_ERROR(env_->scan(env_->dbi(kDirs), prefix, [&](ByteView key, ByteView value) {
    if (key.size() == kInodeKeySize) {
      auto header = OverlayDirHeader::decode(value);
      if (!header.ok()) {
        bad = located(std::move(header).takeError(), env_->path(), ino, {});
        return false;
      }
      dir.emplace();
      dir->header = *header;
      return true;
    }
    if (!dir) return false;  // entries without a header: not a directory
    auto entry = OverlayEntry::decode(value);
    if (!entry.ok()) {
      bad = located(std::move(entry).takeError(), env_->path(), ino, key.substr(kInodeKeySize));
      return false;
    }
    dir->entries.emplace(Bytes(key.substr(kInodeKeySize)), std::move(entry).value());
    return true;
  }));
  if (bad) return std::move(*bad);
  return dir;
}

bool Overlay::hasDirectory(uint64_t ino) {
  auto v = env_->get(env_->dbi(kDirs), dirKey(ino));
  return v.ok() && v->has_value();
}

// LMDB writes copies of the pages it changes, so even a removal needs free
// space: a full disk would make the overlay unable to free anything. A
// small reserved file keeps room for that; it is given up when a commit
// hits ENOSPC (the commit is then retried) and taken again later.
static constexpr off_t kReserveBytes = off_t{4} << 20;

void Overlay::takeReserve() {
  std::string path = directory_ + "/reserve";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  reserveHeld_ = ::fallocate(fd, 0, 0, kReserveBytes) == 0;
  if (!reserveHeld_) (void)::ftruncate(fd, 0);
  ::close(fd);
}

void Overlay::releaseReserve() {
  (void)::truncate((directory_ + "/reserve").c_str(), 0);
  reserveHeld_ = false;
}

Status Overlay::commit(const OverlayBatch& batch) {
  Status status = commitOnce(batch);
  if (!status.ok() && status.error().err == ENOSPC && reserveHeld_) {
    log().warn("overlay: the disk is full; using the reserved space to record changes");
    releaseReserve();
    status = commitOnce(batch);
  }
  if (status.ok() && !reserveHeld_) takeReserve();
  return status;
}

Status Overlay::commitOnce(const OverlayBatch& batch) {
  if (!batch.ops_.empty()) {
    MDB_dbi dirs = env_->dbi(kDirs);
    HG_RETURN_IF_ERROR(env_->write([&](MDB_txn* txn) -> Status {
      for (const auto& op : batch.ops_) {
        switch (op.kind) {
          case OverlayBatch::Op::kPut:
            HG_RETURN_IF_ERROR(store::LmdbEnv::put(txn, dirs, op.key, op.value));
            break;
          case OverlayBatch::Op::kDelete:
            HG_RETURN_IF_ERROR(store::LmdbEnv::del(txn, dirs, op.key));
            break;
          case OverlayBatch::Op::kDeleteDirectory: {
            HG_RETURN_IF_ERROR(deleteXattrsIn(txn, keyInode(op.key)));
            MDB_cursor* cursor = nullptr;
            int rc = mdb_cursor_open(txn, dirs, &cursor);
            if (rc != 0) return ioError(EIO, mdb_strerror(rc), env_->path());
            MDB_val k{op.key.size(), const_cast<char*>(op.key.data())}, v;
            rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
            while (rc == 0 && k.mv_size >= kInodeKeySize &&
                   std::memcmp(k.mv_data, op.key.data(), kInodeKeySize) == 0) {
              rc = mdb_cursor_del(cursor, 0);
              if (rc != 0) break;
              rc = mdb_cursor_get(cursor, &k, &v, MDB_GET_CURRENT);
            }
            mdb_cursor_close(cursor);
            if (rc == MDB_MAP_FULL) return ioError(MDB_MAP_FULL, "map full");
            if (rc != 0 && rc != MDB_NOTFOUND && rc != EINVAL) {
              return ioError(EIO, mdb_strerror(rc), env_->path());
            }
            break;
          }
        }
      }
      return okStatus();
    }));
    for (const auto& op : batch.ops_) {
      if (op.kind == OverlayBatch::Op::kDeleteDirectory) forgetXattrs(keyInode(op.key));
    }
  }
  for (uint64_t ino : batch.filesToRemove_) removeFile(ino);
  return okStatus();
}

Status Overlay::reserveInodes(uint64_t upTo) {
  if (upTo <= reserved_) return okStatus();
  Bytes value = encodeReserved(upTo);
  HG_RETURN_IF_ERROR(env_->write([&](MDB_txn* txn) {
    return store::LmdbEnv::put(txn, env_->dbi(kMeta), kReservedKey, value);
  }));
  reserved_ = upTo;
  return okStatus();
}

std::string Overlay::filePath(uint64_t ino) const {
  char name[40];
  std::snprintf(name, sizeof name, "/files/%02x/%016llx", static_cast<unsigned>(ino & 0xff),
                static_cast<unsigned long long>(ino));
  return directory_ + name;
}

Result<int> Overlay::createFile(uint64_t ino) {
  std::string path = filePath(ino);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 && errno == ENOENT) {
    std::string dir = path.substr(0, path.rfind('/'));
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return sysError("cannot create overlay directory", dir);
    }
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  }
  if (fd < 0) return sysError("cannot create overlay file", path);
  return fd;
}

Result<int> Overlay::createFileWith(uint64_t ino, ByteView content) {
  std::string path = filePath(ino);
  std::string tmp = path + ".tmp";
  HG_ASSIGN_OR_RETURN(int probe, createFile(ino));  // makes the directory, claims the name
  ::close(probe);
  ::unlink(path.c_str());
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return sysError("cannot create overlay file", tmp);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Error e = sysError("cannot write overlay file", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return e;
    }
    done += static_cast<size_t>(n);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Error e = sysError("cannot rename overlay file", tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return e;
  }
  return fd;
}

Result<int> Overlay::openFile(uint64_t ino) {
  std::string path = filePath(ino);
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return sysError("cannot open overlay file", path);
  return fd;
}

void Overlay::removeFile(uint64_t ino) {
  ::unlink(filePath(ino).c_str());
  if (hasXattrs(ino)) (void)removeXattrs(ino);
}

Result<OverlayCheckReport> Overlay::check() {
  OverlayCheckReport report;
  std::unordered_set<uint64_t> reachable;
  std::unordered_set<uint64_t> files;
  std::unordered_map<uint64_t, std::pair<uint64_t, Bytes>> firstName;  // of each file
  OverlayBatch repairs;
  std::deque<uint64_t> queue;
  if (hasDirectory(1)) queue.push_back(1);
  while (!queue.empty()) {
    uint64_t dir = queue.front();
    queue.pop_front();
    if (!reachable.insert(dir).second) continue;
    HG_ASSIGN_OR_RETURN(auto loaded, loadDirectory(dir));
    if (!loaded) continue;
    ++report.directories;
    report.maxInode = std::max(report.maxInode, dir);
    for (const auto& [name, entry] : loaded->entries) {
      report.maxInode = std::max(report.maxInode, entry.ino);
      if (!entry.materialized) continue;
      if (S_ISDIR(entry.mode)) {
        if (hasDirectory(entry.ino)) {
          queue.push_back(entry.ino);
        } else {
          log().error("overlay repair: directory '{}' in directory inode {} had no record; removed",
                      printable(name), dir);
          repairs.removeEntry(dir, name);
          ++report.danglingEntries;
        }
        continue;
      }
      if (::access(filePath(entry.ino).c_str(), F_OK) != 0) {
        log().error("overlay repair: '{}' in directory inode {} had no overlay file; removed",
                    printable(name), dir);
        repairs.removeEntry(dir, name);
        ++report.danglingEntries;
        continue;
      }
      if (!files.insert(entry.ino).second) {
        // A second name of a file (a hard link).
        auto& names = report.links[entry.ino];
        if (names.empty()) names.emplace_back(firstName[entry.ino]);
        names.emplace_back(dir, name);
        continue;
      }
      firstName.emplace(entry.ino, std::make_pair(dir, name));
      ++report.files;
    }
  }
  // Directory records no entry reaches.
  std::vector<uint64_t> orphanDirs;
  HG_RETURN_IF_ERROR(env_->scan(env_->dbi(kDirs), {}, [&](ByteView key, ByteView) {
    if (key.size() == kInodeKeySize && !reachable.count(keyInode(key))) {
      orphanDirs.push_back(keyInode(key));
    }
    return true;
  }));
  for (uint64_t dir : orphanDirs) {
    log().warn("overlay repair: directory record {} was unreachable; removed", dir);
    repairs.removeDirectory(dir);
    report.maxInode = std::max(report.maxInode, dir);
  }
  report.orphanDirectories = orphanDirs.size();
  // Extended attributes of inodes nothing names any more (a daemon killed
  // between a removal and the cleanup after it).
  HG_ASSIGN_OR_RETURN(report.orphanXattrs, dropXattrsExcept([&](uint64_t ino) {
                        return reachable.count(ino) > 0 || files.count(ino) > 0;
                      }));
  // Overlay files no entry names, and half-written copies.
  std::string root = directory_ + "/files";
  if (DIR* top = ::opendir(root.c_str())) {
    while (dirent* sub = ::readdir(top)) {
      if (sub->d_name[0] == '.') continue;
      std::string subdir = root + "/" + sub->d_name;
      DIR* d = ::opendir(subdir.c_str());
      if (!d) continue;
      while (dirent* f = ::readdir(d)) {
        if (f->d_name[0] == '.') continue;
        std::string name = f->d_name;
        bool tmp = name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0;
        uint64_t ino = std::strtoull(name.c_str(), nullptr, 16);
        report.maxInode = std::max(report.maxInode, ino);
        if (!tmp && files.count(ino)) continue;
        log().warn("overlay repair: removed overlay file {} that no entry named", name);
        ::unlink((subdir + "/" + name).c_str());
        ++report.orphanFiles;
      }
      ::closedir(d);
    }
    ::closedir(top);
  }
  if (!repairs.empty()) HG_RETURN_IF_ERROR(commit(repairs));
  return report;
}

}  // namespace hgvfs::fs
