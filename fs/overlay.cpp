#include "fs/overlay.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <unordered_set>

#include "fs/log.h"

namespace hgvfs::fs {
namespace {

enum Db : size_t { kDirs = 0, kMeta = 1 };

Bytes dirKey(uint64_t ino) {
  Bytes key(8, '\0');
  for (int i = 0; i < 8; ++i) key[i] = static_cast<char>((ino >> (56 - 8 * i)) & 0xff);
  return key;
}

uint64_t keyInode(ByteView key) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(key[i]);
  return v;
}

template <typename T>
void putRaw(Bytes& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

template <typename T>
bool getRaw(ByteView& in, T& v) {
  if (in.size() < sizeof v) return false;
  std::memcpy(&v, in.data(), sizeof v);
  in.remove_prefix(sizeof v);
  return true;
}

void putTime(Bytes& out, const timespec& t) {
  putRaw<int64_t>(out, t.tv_sec);
  putRaw<int64_t>(out, t.tv_nsec);
}

bool getTime(ByteView& in, timespec& t) {
  int64_t s, ns;
  if (!getRaw(in, s) || !getRaw(in, ns)) return false;
  t.tv_sec = s;
  t.tv_nsec = ns;
  return true;
}

hg::Error sysError(const std::string& what, const std::string& where) {
  int err = errno;
  return hg::ioError(err, what + ": " + std::strerror(err), where);
}

}  // namespace

Bytes OverlayEntry::encode() const {
  Bytes out;
  putRaw(out, ino);
  putRaw(out, mode);
  putRaw(out, uid);
  putRaw(out, gid);
  putRaw<uint8_t>(out, materialized ? 1 : 0);
  if (!materialized) {
    out += id.view();
    out += source;
  }
  return out;
}

hg::Result<OverlayEntry> OverlayEntry::decode(ByteView data) {
  OverlayEntry e;
  uint8_t flags = 0;
  if (!getRaw(data, e.ino) || !getRaw(data, e.mode) || !getRaw(data, e.uid) ||
      !getRaw(data, e.gid) || !getRaw(data, flags)) {
    return hg::corrupt("truncated overlay entry");
  }
  e.materialized = flags & 1;
  if (!e.materialized) {
    if (data.size() < hg::Node::kSize) return hg::corrupt("truncated overlay entry");
    e.id = hg::Node::fromRaw(data.data());
    e.source = Bytes(data.substr(hg::Node::kSize));
  }
  return e;
}

Bytes OverlayDirHeader::encode() const {
  Bytes out;
  putRaw(out, mode);
  putRaw(out, uid);
  putRaw(out, gid);
  putTime(out, atime);
  putTime(out, mtime);
  putTime(out, ctime);
  return out;
}

hg::Result<OverlayDirHeader> OverlayDirHeader::decode(ByteView data) {
  OverlayDirHeader h;
  if (!getRaw(data, h.mode) || !getRaw(data, h.uid) || !getRaw(data, h.gid) ||
      !getTime(data, h.atime) || !getTime(data, h.mtime) || !getTime(data, h.ctime)) {
    return hg::corrupt("truncated overlay directory header");
  }
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

hg::Result<std::unique_ptr<Overlay>> Overlay::open(const std::string& directory) {
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
  std::string files = directory + "/files";
  if (mkdir(files.c_str(), 0700) != 0 && errno != EEXIST) {
    return sysError("cannot create the overlay", files);
  }
  overlay->takeReserve();
  HG_ASSIGN_OR_RETURN(auto mark, overlay->env_->get(overlay->env_->dbi(kMeta), "reserved"));
  if (mark && mark->size() == 8) std::memcpy(&overlay->reserved_, mark->data(), 8);
  return overlay;
}

hg::Result<std::optional<OverlayDir>> Overlay::loadDirectory(uint64_t ino) {
  std::optional<OverlayDir> dir;
  hg::Status bad = hg::okStatus();
  Bytes prefix = dirKey(ino);
  HG_RETURN_IF_ERROR(env_->scan(env_->dbi(kDirs), prefix, [&](ByteView key, ByteView value) {
    if (key.size() == 8) {
      auto header = OverlayDirHeader::decode(value);
      if (!header.ok()) {
        bad = std::move(header).takeError();
        return false;
      }
      dir.emplace();
      dir->header = *header;
      return true;
    }
    if (!dir) return false;  // entries without a header: not a directory
    auto entry = OverlayEntry::decode(value);
    if (!entry.ok()) {
      bad = std::move(entry).takeError();
      return false;
    }
    dir->entries.emplace(Bytes(key.substr(8)), std::move(entry).value());
    return true;
  }));
  if (!bad.ok()) {
    hg::Error e = std::move(bad).takeError();
    e.where = env_->path() + " (directory inode " + std::to_string(ino) + ")";
    return e;
  }
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

hg::Status Overlay::commit(const OverlayBatch& batch) {
  hg::Status status = commitOnce(batch);
  if (!status.ok() && status.error().err == ENOSPC && reserveHeld_) {
    log().warn("overlay: the disk is full; using the reserved space to record changes");
    releaseReserve();
    status = commitOnce(batch);
  }
  if (status.ok() && !reserveHeld_) takeReserve();
  return status;
}

hg::Status Overlay::commitOnce(const OverlayBatch& batch) {
  if (!batch.ops_.empty()) {
    MDB_dbi dirs = env_->dbi(kDirs);
    HG_RETURN_IF_ERROR(env_->write([&](MDB_txn* txn) -> hg::Status {
      for (const auto& op : batch.ops_) {
        switch (op.kind) {
          case OverlayBatch::Op::kPut:
            HG_RETURN_IF_ERROR(store::LmdbEnv::put(txn, dirs, op.key, op.value));
            break;
          case OverlayBatch::Op::kDelete:
            HG_RETURN_IF_ERROR(store::LmdbEnv::del(txn, dirs, op.key));
            break;
          case OverlayBatch::Op::kDeleteDirectory: {
            MDB_cursor* cursor = nullptr;
            int rc = mdb_cursor_open(txn, dirs, &cursor);
            if (rc != 0) return hg::ioError(EIO, mdb_strerror(rc), env_->path());
            MDB_val k{op.key.size(), const_cast<char*>(op.key.data())}, v;
            rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
            while (rc == 0 && k.mv_size >= 8 && std::memcmp(k.mv_data, op.key.data(), 8) == 0) {
              rc = mdb_cursor_del(cursor, 0);
              if (rc != 0) break;
              rc = mdb_cursor_get(cursor, &k, &v, MDB_GET_CURRENT);
            }
            mdb_cursor_close(cursor);
            if (rc == MDB_MAP_FULL) return hg::ioError(MDB_MAP_FULL, "map full");
            if (rc != 0 && rc != MDB_NOTFOUND && rc != EINVAL) {
              return hg::ioError(EIO, mdb_strerror(rc), env_->path());
            }
            break;
          }
        }
      }
      return hg::okStatus();
    }));
  }
  for (uint64_t ino : batch.filesToRemove_) removeFile(ino);
  return hg::okStatus();
}

hg::Status Overlay::reserveInodes(uint64_t upTo) {
  if (upTo <= reserved_) return hg::okStatus();
  Bytes value(reinterpret_cast<const char*>(&upTo), 8);
  HG_RETURN_IF_ERROR(env_->write(
      [&](MDB_txn* txn) { return store::LmdbEnv::put(txn, env_->dbi(kMeta), "reserved", value); }));
  reserved_ = upTo;
  return hg::okStatus();
}

std::string Overlay::filePath(uint64_t ino) const {
  char name[40];
  std::snprintf(name, sizeof name, "/files/%02x/%016llx", static_cast<unsigned>(ino & 0xff),
                static_cast<unsigned long long>(ino));
  return directory_ + name;
}

hg::Result<int> Overlay::createFile(uint64_t ino) {
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

hg::Result<int> Overlay::createFileWith(uint64_t ino, ByteView content) {
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
      hg::Error e = sysError("cannot write overlay file", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return e;
    }
    done += static_cast<size_t>(n);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    hg::Error e = sysError("cannot rename overlay file", tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return e;
  }
  return fd;
}

hg::Result<int> Overlay::openFile(uint64_t ino) {
  std::string path = filePath(ino);
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return sysError("cannot open overlay file", path);
  return fd;
}

void Overlay::removeFile(uint64_t ino) { ::unlink(filePath(ino).c_str()); }

hg::Result<OverlayCheckReport> Overlay::check() {
  OverlayCheckReport report;
  std::unordered_set<uint64_t> reachable;
  std::unordered_set<uint64_t> files;
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
                      hg::printable(name), dir);
          repairs.removeEntry(dir, name);
          ++report.danglingEntries;
        }
        continue;
      }
      if (::access(filePath(entry.ino).c_str(), F_OK) != 0) {
        log().error("overlay repair: '{}' in directory inode {} had no overlay file; removed",
                    hg::printable(name), dir);
        repairs.removeEntry(dir, name);
        ++report.danglingEntries;
        continue;
      }
      files.insert(entry.ino);
      ++report.files;
    }
  }
  // Directory records no entry reaches.
  std::vector<uint64_t> orphanDirs;
  HG_RETURN_IF_ERROR(env_->scan(env_->dbi(kDirs), {}, [&](ByteView key, ByteView) {
    if (key.size() == 8 && !reachable.count(keyInode(key))) orphanDirs.push_back(keyInode(key));
    return true;
  }));
  for (uint64_t dir : orphanDirs) {
    log().warn("overlay repair: directory record {} was unreachable; removed", dir);
    repairs.removeDirectory(dir);
    report.maxInode = std::max(report.maxInode, dir);
  }
  report.orphanDirectories = orphanDirs.size();
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
