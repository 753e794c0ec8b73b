// posix_parity scenarios on names: rename, unlink and rmdir, symlinks,
// directories and their listings (parity_scenarios.h).

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <string>
#include <vector>

#include "tests/tools/parity_ops.h"
#include "tests/tools/parity_scenarios.h"

namespace hgvfs::parity {

// ---------------------------------------------------------------------------
// Scenario: rename

void renameScenario(Scenario& s, const Options&) {
  s.step(opWriteFile("f1", "one"));
  s.step(opWriteFile("f2", "two"));
  s.step(opRename("f1", "f2"), wantOk());
  s.step(opReadFile("f2"), wantOk("one"));
  s.step(opStat("f1"), wantErr(ENOENT));
  // Directory over an empty directory.
  s.step(opMkdir("d1"));
  s.step(opMkdir("d2"));
  s.step(opWriteFile("d1/x", "x"));
  s.step(opRename("d1", "d2"), wantOk());
  s.step(opReadFile("d2/x"), wantOk("x"));
  s.step(opStat("d1"), wantErr(ENOENT));
  // Errors.
  s.step(opMkdir("d3"));
  s.step(opWriteFile("d3/y", "y"));
  s.step(opMkdir("d4"));
  s.step(opWriteFile("d4/z", "z"));
  s.step(opRename("d3", "d4"), wantErr(ENOTEMPTY));
  s.step(opWriteFile("f3", "three"));
  s.step(opRename("f3", "d4"), wantErr(EISDIR));
  s.step(opRename("d4", "f3"), wantErr(ENOTDIR));
  s.step(opRename("f3", "f3"), wantOk());
  s.step(opRename("d4", "d4"), wantOk());
  s.step(opReadFile("f3"), wantOk("three"));
  s.step(opMkdir("d4/sub"));
  s.step(opRename("d4", "d4/sub/inner"), wantErr(EINVAL));
  s.step(opRename("d4", "d4/sub"), wantErr(EINVAL));
  s.step(opRename("d4/sub", "d4"));
  s.step(opRename("missing", "x"), wantErr(ENOENT));
  s.step(opRename("f3", "missing/x"), wantErr(ENOENT));
  s.step(opRename("f3", "f2/x"), wantErr(ENOTDIR));
  s.step(opRename("f3", "d4/."));
  s.step(opRename("d4/sub/.", "elsewhere"));
  // renameat2.
  s.step(opRename2("f3", "f2", RENAME_NOREPLACE), wantErr(EEXIST));
  s.step(opRename2("f3", "f5", RENAME_NOREPLACE), wantOk());
  s.step(opWriteFile("ex_f", "file"));
  s.step(opMkdir("ex_d"));
  s.step(opWriteFile("ex_d/inner", "inner"));
  s.step(opRename2("ex_f", "ex_d", RENAME_EXCHANGE), wantOk());
  s.step(opLstat("ex_f"), wantOk("dir 0755"));
  s.step(opReadFile("ex_f/inner"), wantOk("inner"));
  s.step(opReadFile("ex_d"), wantOk("file"));
  s.step(opRename2("ex_d", "f5", RENAME_EXCHANGE), wantOk());
  s.step(opReadFile("f5"), wantOk("file"));
  s.step(opReadFile("ex_d"), wantOk("three"));
  s.step(opRename2("ex_d", "nothing", RENAME_EXCHANGE), wantErr(ENOENT));
  s.step(opRename2("ex_d", "f5", RENAME_EXCHANGE | RENAME_NOREPLACE), wantErr(EINVAL));
  // Whole trees across directories, read back after.
  s.step(opMkdir("src"));
  s.step(opMkdir("src/tree"));
  s.step(opMkdir("src/tree/a"));
  s.step(opMkdir("src/tree/a/b"));
  s.step(opMkdir("src/tree/a/b/c"));
  s.step(opMkdir("src/tree/a/empty"));
  s.step(opWriteFile("src/tree/a/b/c/deep.txt", "deep"));
  s.step(opWriteFile("src/tree/a/b/file", pattern(5000, 1)));
  s.step(opSymlink("b/file", "src/tree/a/link"));
  s.step(opMkdir("dst"));
  s.step(opRename("src/tree", "dst/moved"), wantOk());
  s.step(opStat("src/tree"), wantErr(ENOENT));
  s.step(opStat("src/tree/a/b/c/deep.txt"), wantErr(ENOENT));
  s.step(opReadFile("dst/moved/a/b/c/deep.txt"), wantOk("deep"));
  s.step(opReadFile("dst/moved/a/link"));
  s.step(opList("dst/moved/a"), wantOk("n=3: b empty link"));
  s.step(opList("src"), wantOk("n=0:"));
  s.step(opRename("dst/moved/a/b", "b-top"), wantOk());
  s.step(opReadFile("b-top/c/deep.txt"), wantOk("deep"));
  s.step(opStat("dst/moved/a/link"), wantErr(ENOENT));  // now dangling
  s.step(opRename("b-top", "dst/moved/a/b"), wantOk());
  s.step(opReadFile("dst/moved/a/link"));
  // An open descriptor follows its file through renames of its directory.
  s.step(opMkdir("kd"));
  s.step(opWriteFile("kd/keep", "kept"));
  s.step(opOpen("k", "kd/keep", O_RDWR | O_APPEND), wantOk());
  s.step(opRename("kd", "kd2"), wantOk());
  s.step(opWrite("k", "+via-fd"), wantOk());
  s.step(opReadFile("kd2/keep"), wantOk("kept+via-fd"));
  s.step(opFstat("k"), wantOk("file 0644 size=11 nlink=1"));
  s.step(opClose("k"));
  // Renaming over an open file: the descriptor keeps the old content.
  s.step(opWriteFile("victim", "old"));
  s.step(opOpen("v", "victim", O_RDONLY), wantOk());
  s.step(opWriteFile("newer", "new"));
  s.step(opRename("newer", "victim"), wantOk());
  s.step(opPread("v", 10, 0), wantOk("old"));
  s.step(opFstat("v"), wantOk("file 0644 size=3 nlink=0"));
  s.step(opReadFile("victim"), wantOk("new"));
  s.step(opClose("v"));
  // Symlinks move as links; chains of renames; reuse of the old name.
  s.step(opSymlink("target", "sl"));
  s.step(opRename("sl", "sl2"), wantOk());
  s.step(opReadlink("sl2"), wantOk("target"));
  s.step(opWriteFile("c1", "cycle"));
  s.step(opRename("c1", "c2"));
  s.step(opRename("c2", "c3"));
  s.step(opRename("c3", "c1"));
  s.step(opReadFile("c1"), wantOk("cycle"));
  s.step(opMkdir("old"));
  s.step(opRename("old", "new"), wantOk());
  s.step(opMkdir("old"), wantOk());
  s.step(opWriteFile("Case", "upper"));
  s.step(opWriteFile("case", "lower"));
  s.step(opRename("Case", "CASE"), wantOk());
  s.step(opReadFile("case"), wantOk("lower"));
  s.step(opList(""));
}

// ---------------------------------------------------------------------------
// Scenario: unlink and rmdir

void unlinkRmdir(Scenario& s, const Options&) {
  s.step(opMkdir("d"));
  s.step(opWriteFile("d/f", "f"));
  s.step(opRmdir("d"), wantErr(ENOTEMPTY));
  s.step(opUnlink("d"), wantErr(EISDIR));
  s.step(opUnlink("d/"), wantErr(EISDIR));
  s.step(opWriteFile("file", "file"));
  s.step(opRmdir("file"), wantErr(ENOTDIR));
  s.step(opRmdir("file/"), wantErr(ENOTDIR));
  s.step(opUnlink("file/"), wantErr(ENOTDIR));
  s.step(opUnlink("file/x"), wantErr(ENOTDIR));
  s.step(opRmdir("."), wantErr(EINVAL));
  s.step(opRmdir("d/."), wantErr(EINVAL));
  s.step(opRmdir("d/.."), wantErr(ENOTEMPTY));
  s.step(opUnlink("missing"), wantErr(ENOENT));
  s.step(opRmdir("missing"), wantErr(ENOENT));
  s.step(opUnlink("d/f"), wantOk());
  s.step(opRmdir("d/"), wantOk());
  s.step(opStat("d"), wantErr(ENOENT));
  // An unlinked file stays usable through the descriptors open on it.
  s.step(opOpen("o", "gone", O_CREAT | O_RDWR), wantOk());
  s.step(opOpen("o2", "gone", O_RDONLY), wantOk());
  s.step(opWrite("o", "hello"), wantOk());
  s.step(opUnlink("gone"), wantOk());
  s.step(opStat("gone"), wantErr(ENOENT));
  s.step(opFstat("o"), wantOk("file 0644 size=5 nlink=0"));
  s.step(opPwrite("o", "XY", 10), wantOk());
  s.step(opPread("o", 20, 0), wantOk("hello" + std::string(5, '\0') + "XY"));
  s.step(opPread("o2", 20, 0), wantOk("hello" + std::string(5, '\0') + "XY"));
  s.step(opFstat("o2"), wantOk("file 0644 size=12 nlink=0"));
  s.step(opFtruncate("o", 3), wantOk());
  s.step(opPread("o2", 10, 0), wantOk("hel"));
  s.step(opFchmod("o", 0600), wantOk());
  s.step(opFstat("o"), wantOk("file 0600 size=3 nlink=0"));
  s.step(opWriteFile("gone", "new"), wantOk());  // a new, independent file
  s.step(opPread("o", 10, 0), wantOk("hel"));
  s.step(opReadFile("gone"), wantOk("new"));
  s.step(opClose("o"));
  s.step(opPread("o2", 10, 0), wantOk("hel"));
  s.step(opClose("o2"));
  // A removed directory still open: no entries, nothing can be created in it.
  s.step(opMkdir("dd"));
  s.step(opOpen("dd", "dd", O_RDONLY | O_DIRECTORY), wantOk());
  s.step(opRmdir("dd"), wantOk());
  s.step(custom("openat(dd, \"new\", O_CREAT|O_WRONLY)",
                [](Side& x) {
                  int fd = ::openat(x.fd("dd"), "new", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
                  if (fd >= 0) ::close(fd);
                  return fromRc0(fd);
                }),
         wantErr(ENOENT));
  s.step(custom("mkdirat(dd, \"sub\")",
                [](Side& x) { return fromRc(::mkdirat(x.fd("dd"), "sub", 0755)); }),
         wantErr(ENOENT));
  s.step(custom("getdents64(dd)",
                [](Side& x) {
                  alignas(8) char buf[4096];
                  return fromRc(::syscall(SYS_getdents64, x.fd("dd"), buf, sizeof buf));
                }),
         wantErr(ENOENT));
  s.step(opClose("dd"));
  // A symlink to a directory: unlink removes the link only.
  s.step(opMkdir("target"));
  s.step(opWriteFile("target/keep", "keep"));
  s.step(opSymlink("target", "tl"));
  s.step(opRmdir("tl"), wantErr(ENOTDIR));
  s.step(opUnlink("tl"), wantOk());
  s.step(opReadFile("target/keep"), wantOk("keep"));
  // rm -rf order: deepest first.
  s.step(opMkdir("t"));
  s.step(opMkdir("t/a"));
  s.step(opMkdir("t/a/b"));
  s.step(opWriteFile("t/a/b/f", "f"));
  s.step(opWriteFile("t/a/g", "g"));
  s.step(opRmdir("t/a"), wantErr(ENOTEMPTY));
  s.step(opUnlink("t/a/b/f"), wantOk());
  s.step(opRmdir("t/a/b"), wantOk());
  s.step(opUnlink("t/a/g"), wantOk());
  s.step(opRmdir("t/a"), wantOk());
  s.step(opRmdir("t"), wantOk());
  s.step(opList(""));
}

// ---------------------------------------------------------------------------
// Scenario: symlinks

void symlinks(Scenario& s, const Options&) {
  s.step(opSymlink("target-file", "l1"), wantOk());
  s.step(opReadlink("l1"), wantOk("target-file"));
  s.step(opReadlink("l1", 3), wantOk("tar"));
  s.step(opLstat("l1"), wantOk("symlink 0777 size=11 nlink=1"));
  s.step(opStat("l1"), wantErr(ENOENT));
  s.step(opOpen("x", "l1", O_RDONLY), wantErr(ENOENT));
  s.step(opWriteFile("target-file", "through"));
  s.step(opStat("l1"), wantOk("file 0644 size=7 nlink=1"));
  s.step(opReadFile("l1"), wantOk("through"));
  s.step(opSymlink("other", "l1"), wantErr(EEXIST));
  s.step(opSymlink("x", "target-file"), wantErr(EEXIST));
  s.step(opSymlink("", "empty"), wantErr(ENOENT));
  s.step(opReadlink("target-file"), wantErr(EINVAL));
  s.step(opReadlink("missing"), wantErr(ENOENT));
  // Loops.
  s.step(opSymlink("loop2", "loop1"));
  s.step(opSymlink("loop1", "loop2"));
  s.step(opOpen("x", "loop1", O_RDONLY), wantErr(ELOOP));
  s.step(opStat("loop1"), wantErr(ELOOP));
  s.step(opLstat("loop1"), wantOk("symlink 0777 size=5 nlink=1"));
  s.step(opSymlink("self", "self"));
  s.step(opOpen("x", "self", O_CREAT | O_WRONLY), wantErr(ELOOP));
  for (int i = 45; i >= 1; --i) s.step(opSymlink(fmt("c%d", i - 1), fmt("c%d", i)));
  s.step(opWriteFile("c0", "end of chain"));
  s.step(opReadFile("c10"), wantOk("end of chain"));
  s.step(opReadFile("c45"), wantErr(ELOOP));
  // A symlink to a directory, traversed.
  s.step(opMkdir("d"));
  s.step(opWriteFile("d/x", "in d"));
  s.step(opSymlink("d", "ld"));
  s.step(opStat("ld"), wantOk("dir 0755"));
  s.step(opLstat("ld"), wantOk("symlink 0777 size=1 nlink=1"));
  s.step(opLstat("ld/"), wantOk("dir 0755"));
  s.step(opReadFile("ld/x"), wantOk("in d"));
  s.step(opWriteFile("ld/y", "made via link"));
  s.step(opReadFile("d/y"), wantOk("made via link"));
  s.step(opList("ld"), wantOk("n=2: x y"));
  s.step(opSymlink("../d/x", "d/up"));
  s.step(opReadFile("ld/up"), wantOk("in d"));
  s.step(opMkdir("ld/sub"), wantOk());
  s.step(opStat("d/sub"), wantOk("dir 0755"));
  s.step(opMkdir("ld"), wantErr(EEXIST));
  // Absolute, long and odd targets are stored as given.
  s.step(opSymlink("/nonexistent/absolute", "abs"));
  s.step(opReadlink("abs"), wantOk("/nonexistent/absolute"));
  s.step(opSymlink(std::string(1000, 'x') + "/y", "long"));
  s.step(opReadlink("long"));
  s.step(opLstat("long"), wantOk("symlink 0777 size=1002 nlink=1"));
  s.step(opSymlink("with space/and\ttab", "odd"));
  s.step(opReadlink("odd"), wantOk("with space/and\ttab"));
  // Through a symlink, chmod and truncate act on the target.
  s.step(opChmod("l1", 0600), wantOk());
  s.step(opStat("target-file"), wantOk("file 0600 size=7 nlink=1"));
  s.step(opLstat("l1"), wantOk("symlink 0777 size=11 nlink=1"));
  s.step(opTruncate("l1", 3), wantOk());
  s.step(opReadFile("target-file"), wantOk("thr"));
  s.step(opUnlink("l1"), wantOk());
  s.step(opReadFile("target-file"), wantOk("thr"));
}

// ---------------------------------------------------------------------------
// Scenario: directories

namespace {

// Reads a directory once, then checks telldir/seekdir at every position and
// rewinddir: positions must lead back to the same entries.
Outcome seekdirCheck(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (!d) return failure(errno);
  std::vector<std::string> names;
  std::vector<long> positions;  // telldir before each entry
  for (;;) {
    long pos = ::telldir(d);
    struct dirent* e = ::readdir(d);
    if (!e) break;
    positions.push_back(pos);
    names.push_back(e->d_name);
  }
  int bad = 0;
  for (size_t i = positions.size(); i-- > 0;) {  // backwards: every seek goes somewhere new
    ::seekdir(d, positions[i]);
    struct dirent* e = ::readdir(d);
    if (!e || names[i] != e->d_name) ++bad;
  }
  size_t mid = names.size() / 2;
  ::seekdir(d, positions.empty() ? 0 : positions[mid]);
  std::vector<std::string> rest;
  while (struct dirent* e = ::readdir(d)) rest.push_back(e->d_name);
  bool restOk =
      rest == std::vector<std::string>(names.begin() + static_cast<long>(mid), names.end());
  ::rewinddir(d);
  std::vector<std::string> again;
  while (struct dirent* e = ::readdir(d)) again.push_back(e->d_name);
  ::closedir(d);
  return success(fmt("entries=%zu seek_to_each_bad=%d seek_to_middle_ok=%d rewind_ok=%d",
                     names.size(), bad, restOk, again == names));
}

// Reads a directory with getdents64 in small chunks while creating, deleting
// and renaming entries between the calls. Untouched entries must show up
// exactly once; touched ones at most once. The same changes are applied in
// full afterwards whatever the number of calls, so both sides end equal.
Outcome getdentsWhileModifying(const std::string& dir, int originals, int chunks) {
  auto change = [&](int c) {
    int fd = ::open(fmt("%s/n%02d", dir.c_str(), c).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0) ::close(fd);
    ::unlink(fmt("%s/g%03d", dir.c_str(), c * 10).c_str());
    if (c > 0)
      ::rename(fmt("%s/n%02d", dir.c_str(), c - 1).c_str(),
               fmt("%s/r%02d", dir.c_str(), c - 1).c_str());
  };
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return failure(errno);
  std::map<std::string, int> seen;
  int calls = 0;
  alignas(8) char buf[1024];
  for (;;) {
    long n = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return failure(e);
    }
    if (n == 0) break;
    for (long off = 0; off < n;) {
      auto* e = reinterpret_cast<struct dirent64*>(buf + off);
      ++seen[e->d_name];
      off += e->d_reclen;
    }
    if (calls < chunks) change(calls);
    ++calls;
  }
  ::close(fd);
  for (int c = calls; c < chunks; ++c) change(c);
  int missing = 0, dups = 0;
  for (int i = 0; i < originals; ++i) {
    bool touched = i % 10 == 0 && i / 10 < chunks;
    int count = seen.count(fmt("g%03d", i)) ? seen[fmt("g%03d", i)] : 0;
    if (!touched && count != 1) ++missing;
  }
  for (const auto& [name, count] : seen) dups += count > 1;
  return success(fmt("untouched_not_seen_once=%d duplicated=%d dot=%d dotdot=%d", missing, dups,
                     seen["."], seen[".."]));
}

}  // namespace

void directories(Scenario& s, const Options&) {
  s.step(opMkdir("d"));
  for (int i = 0; i < 50; ++i) s.step(opWriteFile(fmt("d/f%02d", i), fmt("%d", i)));
  for (int i = 0; i < 5; ++i) s.step(opMkdir(fmt("d/sub%d", i)));
  s.step(opList("d"));
  for (int i = 0; i < 50; i += 3) s.step(opUnlink(fmt("d/f%02d", i)), wantOk());
  s.step(opList("d"));
  for (int i = 1; i < 50; i += 7) s.step(opRename(fmt("d/f%02d", i), fmt("d/renamed%02d", i)));
  s.step(opRename("d/sub0", "d/sub-renamed"));
  s.step(opRename("d/f02", "d/sub1/moved-in"));
  s.step(opRmdir("d/sub4"));
  s.step(opList("d"));
  s.step(opList("d/sub1"), wantOk("n=1: moved-in"));
  s.step(custom("seekdir/telldir/rewinddir on d", [](Side& x) { return seekdirCheck(x.p("d")); }));
  // A bigger directory: listings span many getdents calls.
  s.step(opMkdir("big"));
  for (int i = 0; i < 1000; ++i)
    s.step(opWriteFile(fmt("big/entry-with-a-longer-name-%04d", i), ""));
  s.step(opList("big"));
  s.step(
      custom("seekdir/telldir/rewinddir on big", [](Side& x) { return seekdirCheck(x.p("big")); }));
  for (int i = 0; i < 1000; i += 2) s.step(opUnlink(fmt("big/entry-with-a-longer-name-%04d", i)));
  s.step(opList("big"));
  // Changing a directory while it is being read.
  s.step(opMkdir("live"));
  for (int i = 0; i < 300; ++i) s.step(opWriteFile(fmt("live/g%03d", i), ""));
  s.step(custom("getdents64 in 1 KiB calls while creating/unlinking/renaming",
                [](Side& x) { return getdentsWhileModifying(x.p("live"), 300, 30); }),
         wantOk("untouched_not_seen_once=0 duplicated=0 dot=1 dotdot=1"));
  s.step(opList("live"));
  // Odd cases.
  s.step(opOpen("x", "d/f04", O_RDONLY | O_DIRECTORY), wantErr(ENOTDIR));
  s.step(opList("d/f04"), wantErr(ENOTDIR));
  s.step(opList("missing"), wantErr(ENOENT));
  s.step(opMkdir("d"), wantErr(EEXIST));
  s.step(opMkdir("d/f04"), wantErr(EEXIST));
  s.step(opMkdir("trailing/"), wantOk());
  s.step(opMkdir("d/missing/x"), wantErr(ENOENT));
  s.step(opRmdir("."), wantErr(EINVAL));
  s.step(opList("."));
  s.step(opList("d/sub1/.."));
}

}  // namespace hgvfs::parity
