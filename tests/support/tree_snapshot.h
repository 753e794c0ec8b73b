#pragma once
// Snapshots of directory trees and their comparison: the one tree comparison
// of the tests. posix_parity (tests/tools) compares the tree its steps left
// in an hgvfs mount with the one left in a plain directory; the mount tests
// (mount_support.h) compare a mount with `hg archive`.
//
// A snapshot reads a whole tree by lstat (symlinks are never followed):
// every entry's kind, permission bits, size, link count, device number,
// and the bytes of files and symlink targets, held in memory. A comparison
// lists the differences as TreeDifference records that point into the two
// snapshots; describeDifference words one of them, calling the sides A and B.
// Inode numbers and times are never read.
//
// Ownership: a TreeSnapshot owns its entries; a TreeDifference borrows from
// the snapshots it came from and must not outlive them.
// Threads: no shared state; any number of threads may snapshot and compare
// at once. No gtest here: posix_parity links this without it.

#include <sys/types.h>

#include <cstdarg>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hgvfs::test {

// One entry below the root. `path` is relative ("dir/file", bytes as the
// file system gave them). A directory that cannot be listed (or whose listing
// breaks off) adds an entry "dir/" ("/" for the root itself) that carries
// only the error.
struct TreeEntry {
  std::string path;
  mode_t mode = 0;  // st_mode: kind and permission bits; 0 when lstat failed
  long long size = 0;
  unsigned long nlink = 0;
  dev_t rdev = 0;    // device nodes only, 0 for every other kind
  std::string data;  // file content or symlink target
  int err = 0;       // errno of the call that failed, 0 if none did
  // That call: "list", "lstat", "readlink" or "read"; nullptr when err == 0.
  const char* failedCall = nullptr;

  bool isDir() const;
  bool isSymlink() const;
  bool isFile() const;
  mode_t permissions() const { return mode & 07777; }
};

struct TreeSnapshot {
  std::vector<TreeEntry> entries;  // sorted by path, bytewise

  // The entry at `path`, or nullptr.
  const TreeEntry* find(std::string_view path) const;
};

struct SnapshotOptions {
  // Names left out at the top of the tree, with everything below them (the
  // .hg of a working copy).
  std::vector<std::string> skipAtRoot;
};

// Reads the tree under `root`. Never fails as a whole: what cannot be read
// is recorded in the entries' err.
TreeSnapshot snapshotTree(const std::string& root, const SnapshotOptions& options = {});

// Which fields a comparison looks at. Names, kinds and errors always count.
struct CompareOptions {
  bool dirModes = true;  // permission bits of directories
  bool modes = true;     // permission bits of everything else
  bool sizes = true;     // sizes of non-directories
  bool nlink = true;     // link counts of non-directories
  bool rdev = true;      // device numbers
  bool data = true;      // file contents and symlink targets
  // Whether entries that fail with the same errno on both sides are equal
  // (otherwise every failure is a difference).
  bool sameErrorIsEqual = true;
  // Whether to list the entries below a directory that is only on one side,
  // or is something else (or unreadable) on the other side.
  bool belowMismatch = true;
};

struct TreeDifference {
  enum class Field { kOnlyInA, kOnlyInB, kUnreadable, kKind, kMode, kSize, kNlink, kRdev, kData };
  Field field;
  const TreeEntry* a;  // nullptr for kOnlyInB
  const TreeEntry* b;  // nullptr for kOnlyInA

  const std::string& path() const { return a ? a->path : b->path; }
};

// The differences between two snapshots, ordered by path; for one path, in
// the order of Field. An entry that failed gives kUnreadable and nothing
// else, unless it failed alike on both sides (see sameErrorIsEqual).
std::vector<TreeDifference> compareSnapshots(const TreeSnapshot& a, const TreeSnapshot& b,
                                             const CompareOptions& options = {});

// One line for a difference, calling the sides A and B, e.g.
//   "dir/f": mode 0644 in A, 0600 in B
std::string describeDifference(const TreeDifference& difference);

// compareSnapshots, each difference described.
std::vector<std::string> describeDifferences(const TreeSnapshot& a, const TreeSnapshot& b,
                                             const CompareOptions& options = {});

// ---------------------------------------------------------------------------
// The wording the descriptions use, for messages that sit beside them.

// "file", "dir", "symlink", "fifo", "chardev", "blockdev", "socket" or
// "unknown".
const char* kindName(mode_t mode);

// Everything left to read from `fd`; nullopt on a read error.
std::optional<std::string> readFd(int fd);

// printf into a std::string (the va_list form, for other variadic helpers).
std::string vformatString(const char* f, va_list ap);

// Bytes as readable text: C escapes, \xNN, runs of 8 or more equal bytes as
// "\x00*4096"; at most about `max` characters, then "...(N bytes)".
std::string escapeBytes(std::string_view bytes, size_t max = 96);

// escapeBytes of at most 48 characters, in double quotes.
std::string quoteBytes(std::string_view bytes);

// The offset of the first byte where `a` and `b` differ (the length of the
// shorter one when it is a prefix of the other).
size_t firstDifferingByte(std::string_view a, std::string_view b);

// "ENOENT" for ENOENT, "ok" for 0, "errno N" for numbers without a name.
std::string errnoSymbol(int err);

}  // namespace hgvfs::test
