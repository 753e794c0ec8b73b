#pragma once
// FileSystem's private types, shared by file_system.cpp and
// working_diff.cpp (no other file includes this).

#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>

#include "fs/file_system.h"

namespace hgvfs::fs {

// An open overlay file.
class OverlayFile {
 public:
  OverlayFile(int fd, std::atomic<int>& count) : fd_(fd), count_(count) { ++count_; }
  ~OverlayFile() {
    ::close(fd_);
    --count_;
  }
  OverlayFile(const OverlayFile&) = delete;
  OverlayFile& operator=(const OverlayFile&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
  std::atomic<int>& count_;
};

// The entries of a materialized directory, in memory.
struct FileSystem::DirState {
  OverlayDirHeader header;
  struct Entry {
    OverlayEntry rec;
    uint64_t cookie;
  };
  std::map<Bytes, Entry, std::less<>> entries;
  std::map<uint64_t, Bytes> byCookie;
  uint64_t nextCookie = 4;  // 3: .hg in the root

  Entry* find(ByteView name) {
    auto it = entries.find(name);
    return it == entries.end() ? nullptr : &it->second;
  }
  void insert(ByteView name, const OverlayEntry& rec) {
    uint64_t cookie = nextCookie++;
    entries[Bytes(name)] = Entry{rec, cookie};
    byCookie[cookie] = Bytes(name);
  }
  void insertWithCookie(ByteView name, const OverlayEntry& rec, uint64_t cookie) {
    entries[Bytes(name)] = Entry{rec, cookie};
    byCookie[cookie] = Bytes(name);
  }
  void erase(ByteView name) {
    auto it = entries.find(name);
    if (it == entries.end()) return;
    byCookie.erase(it->second.cookie);
    entries.erase(it);
  }
};

struct FileSystem::Materialized {
  uid_t uid = 0;
  gid_t gid = 0;
  std::shared_ptr<OverlayFile> file;  // files: the open overlay file, once opened
  std::unique_ptr<DirState> dir;      // directories: the entries, once loaded
};

}  // namespace hgvfs::fs
