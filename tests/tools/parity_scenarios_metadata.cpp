// posix_parity scenarios on metadata: modes, owners and umask, times,
// extended attributes (parity_scenarios.h).

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <string>
#include <vector>

#include "tests/tools/parity_ops.h"
#include "tests/tools/parity_scenarios.h"

namespace hgvfs::parity {

// ---------------------------------------------------------------------------
// Scenario: modes, owners, umask

namespace {

Op withUmask(mode_t mask, Op op) {
  return custom(fmt("umask 0%03o; ", mask) + op.call, [=](Side& s) {
    mode_t old = ::umask(mask);
    Outcome o = op.run(s);
    ::umask(old);
    return o;
  });
}

}  // namespace

void metadata(Scenario& s, const Options&) {
  s.step(withUmask(022, opWriteFile("m", "meta", O_CREAT | O_WRONLY, 0666)), wantOk());
  s.step(opStat("m"), wantOk("file 0644 size=4 nlink=1"));
  for (mode_t mode : {0600, 0755, 0640, 04755, 02755, 01755, 0, 0644}) {
    s.step(opChmod("m", mode), wantOk());
    s.step(opStat("m"), wantOk(fmt("file %04o size=4 nlink=1", mode)));
  }
  s.step(opChmod("missing", 0644), wantErr(ENOENT));
  s.step(opOpen("m", "m", O_RDONLY), wantOk());
  s.step(opFchmod("m", 0604), wantOk());
  s.step(opFstat("m"), wantOk("file 0604 size=4 nlink=1"));
  s.step(opClose("m"));
  // umask applies to mkdir and open(O_CREAT); mkdir keeps the sticky bit.
  s.step(withUmask(022, opMkdir("u022", 0777)), wantOk());
  s.step(opStat("u022"), wantOk("dir 0755"));
  s.step(withUmask(077, opMkdir("u077", 0777)), wantOk());
  s.step(opStat("u077"), wantOk("dir 0700"));
  s.step(withUmask(0, opMkdir("u000", 01777)), wantOk());
  s.step(opStat("u000"), wantOk("dir 1777"));
  s.step(withUmask(027, opWriteFile("f027", "", O_CREAT | O_WRONLY, 0777)), wantOk());
  s.step(opStat("f027"), wantOk("file 0750 size=0 nlink=1"));
  s.step(withUmask(0, opWriteFile("f000", "", O_CREAT | O_WRONLY, 0666)), wantOk());
  s.step(opStat("f000"), wantOk("file 0666 size=0 nlink=1"));
  // Owners.
  uid_t uid = ::getuid();
  gid_t gid = ::getgid();
  std::string self = fmt("uid=%u gid=%u", uid, gid);
  s.step(opChown("m", uid, gid), wantOk());
  s.step(opOwner("m"), wantOk(self + " mode=0604"));
  s.step(opChown("m", static_cast<uid_t>(-1), static_cast<gid_t>(-1)), wantOk());
  if (!isRoot()) {
    s.note("not running as root: chown to other owners skipped");
    return;
  }
  s.step(opChown("m", 4242, 4343), wantOk());
  s.step(opOwner("m"), wantOk("uid=4242 gid=4343 mode=0604"));
  s.step(opChown("m", static_cast<uid_t>(-1), 4444), wantOk());
  s.step(opOwner("m"), wantOk("uid=4242 gid=4444 mode=0604"));
  // chown clears set-user-ID (and set-group-ID when group-executable).
  s.step(opChmod("m", 06755), wantOk());
  s.step(opChown("m", 4243, static_cast<gid_t>(-1)), wantOk());
  s.step(opOwner("m"), wantOk("uid=4243 gid=4444 mode=0755"));
  s.step(opSymlink("m", "ml"));
  s.step(opChown("ml", 4300, 4301, false), wantOk());
  s.step(opOwner("ml", false), wantOk("uid=4300 gid=4301 mode=0777"));
  s.step(opOwner("m"), wantOk("uid=4243 gid=4444 mode=0755"));
  s.step(opChown("ml", 4302, 4303), wantOk());
  s.step(opOwner("m"), wantOk("uid=4302 gid=4303 mode=0755"));
  // A set-group-ID directory hands its group (and the bit, to directories) down.
  s.step(opMkdir("sg", 0755));
  s.step(opChown("sg", static_cast<uid_t>(-1), 4343), wantOk());
  s.step(opChmod("sg", 02775), wantOk());
  s.step(opMkdir("sg/sub", 0755), wantOk());
  s.step(opOwner("sg/sub"), wantOk(fmt("uid=%u gid=4343 mode=2755", uid)));
  s.step(opWriteFile("sg/file", "g"), wantOk());
  s.step(opOwner("sg/file"), wantOk(fmt("uid=%u gid=4343 mode=0644", uid)));
  s.step(opChown("sg/file", uid, gid), wantOk());
  s.step(opChown("sg/sub", uid, gid), wantOk());
  s.step(opChown("m", uid, gid), wantOk());
  s.step(opChown("ml", uid, gid, false), wantOk());
  s.step(opChown("sg", uid, gid), wantOk());
}

// ---------------------------------------------------------------------------
// Scenario: times

namespace {

bool operator<(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec != b.tv_sec ? a.tv_sec < b.tv_sec : a.tv_nsec < b.tv_nsec;
}
bool sameTime(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

const struct timespec kOld = {1200000000, 123456789};

// Sets `rel`'s times to kOld, waits long enough for a new ctime to be
// distinguishable, runs `action` and reports which of mtime and ctime moved
// (and that a moved mtime is the current time).
Op timesAfter(const std::string& what, const std::string& rel, std::function<int(Side&)> action) {
  return custom(what + ": " + quoteBytes(rel) + " mtime/ctime", [=](Side& s) {
    std::string path = s.p(rel);
    struct timespec ts[2] = {kOld, kOld};
    if (::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) return failure(errno);
    struct stat before, after;
    if (::lstat(path.c_str(), &before) != 0) return failure(errno);
    sleepMs(20);
    struct timespec t0;
    ::clock_gettime(CLOCK_REALTIME, &t0);
    if (action(s) != 0) return failure(errno);
    if (::lstat(path.c_str(), &after) != 0) return failure(errno);
    bool mtimeMoved = !sameTime(after.st_mtim, before.st_mtim);
    bool recent = after.st_mtim.tv_sec >= t0.tv_sec - 2 && after.st_mtim.tv_sec <= t0.tv_sec + 5;
    bool ctimeMoved = before.st_ctim < after.st_ctim;
    return success(fmt("mtime %s%s, ctime %s", mtimeMoved ? "changed" : "same",
                       mtimeMoved ? (recent ? " (now)" : " (not now!)") : "",
                       ctimeMoved ? "changed" : "same"));
  });
}

int writeTo(const std::string& path, int flags, std::string_view data) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  bool ok = writeAll(fd, data);
  int e = errno;
  ::close(fd);
  errno = e;
  return ok ? 0 : -1;
}

}  // namespace

void timesScenario(Scenario& s, const Options&) {
  const char* kMC = "mtime changed (now), ctime changed";
  const char* kC = "mtime same, ctime changed";
  const char* kNone = "mtime same, ctime same";
  const struct timespec omit = {0, UTIME_OMIT}, now = {0, UTIME_NOW};
  s.step(opWriteFile("t", "x"));
  s.step(opUtimens("t", {1000000000, 111}, {1200000000, 123456789}), wantOk());
  s.step(opTimes("t"), wantOk("atime=1000000000.000000111 mtime=1200000000.123456789"));
  s.step(opUtimens("t", omit, {1300000000, 5}), wantOk());
  s.step(opTimes("t"), wantOk("atime=1000000000.000000111 mtime=1300000000.000000005"));
  s.step(opUtimens("t", {1100000000, 0}, omit), wantOk());
  s.step(opTimes("t"), wantOk("atime=1100000000.000000000 mtime=1300000000.000000005"));
  s.step(opUtimens("t", {-1, 0}, {4102444800, 999999999}), wantOk());  // before 1970, 2100
  s.step(opTimes("t"), wantOk("atime=-1.000000000 mtime=4102444800.999999999"));
  s.step(opUtimens("t", {0, 1000000000}, omit), wantErr(EINVAL));
  s.step(opUtimens("missing", now, now), wantErr(ENOENT));
  s.step(timesAfter("utimensat(UTIME_NOW, UTIME_NOW)", "t",
                    [](Side& x) {
                      struct timespec ts[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
                      return ::utimensat(AT_FDCWD, x.p("t").c_str(), ts, 0);
                    }),
         wantOk(kMC));
  s.step(timesAfter("utimensat(NULL)", "t",
                    [](Side& x) { return ::utimensat(AT_FDCWD, x.p("t").c_str(), nullptr, 0); }),
         wantOk(kMC));
  s.step(timesAfter("futimens(UTIME_OMIT, explicit)", "t", [](Side& x) {
    int fd = ::open(x.p("t").c_str(), O_RDONLY | O_CLOEXEC);
    struct timespec ts[2] = {{0, UTIME_OMIT}, {1234567890, 42}};
    int rc = ::futimens(fd, ts);
    ::close(fd);
    return rc;
  }));
  s.step(opTimes("t"));
  // What changes which time.
  s.step(
      timesAfter("write", "t", [](Side& x) { return writeTo(x.p("t"), O_WRONLY | O_APPEND, "y"); }),
      wantOk(kMC));
  s.step(timesAfter("truncate", "t", [](Side& x) { return ::truncate(x.p("t").c_str(), 100); }),
         wantOk(kMC));
  s.step(timesAfter("ftruncate", "t",
                    [](Side& x) {
                      int fd = ::open(x.p("t").c_str(), O_WRONLY | O_CLOEXEC);
                      int rc = ::ftruncate(fd, 50);
                      ::close(fd);
                      return rc;
                    }),
         wantOk(kMC));
  s.step(timesAfter("open(O_TRUNC)", "t",
                    [](Side& x) { return writeTo(x.p("t"), O_WRONLY | O_TRUNC, ""); }),
         wantOk(kMC));
  s.step(timesAfter("chmod", "t", [](Side& x) { return ::chmod(x.p("t").c_str(), 0600); }),
         wantOk(kC));
  s.step(timesAfter("chown (same owner)", "t",
                    [](Side& x) { return ::chown(x.p("t").c_str(), ::getuid(), ::getgid()); }),
         wantOk(kC));
  s.step(timesAfter("read", "t",
                    [](Side& x) {
                      int fd = ::open(x.p("t").c_str(), O_RDONLY | O_CLOEXEC);
                      auto d = readAll(fd);
                      ::close(fd);
                      return d ? 0 : -1;
                    }),
         wantOk(kNone));
  s.step(timesAfter("open(O_WRONLY) without writing", "t",
                    [](Side& x) { return writeTo(x.p("t"), O_WRONLY, ""); }),
         wantOk(kNone));
  s.step(opWriteFile("t", "0123456789"));
  s.step(timesAfter("mmap store + msync", "t",
                    [](Side& x) {
                      int fd = ::open(x.p("t").c_str(), O_RDWR | O_CLOEXEC);
                      void* m = ::mmap(nullptr, 10, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                      ::close(fd);
                      if (m == MAP_FAILED) return -1;
                      static_cast<char*>(m)[0] = 'M';
                      int rc = ::msync(m, 10, MS_SYNC);
                      ::munmap(m, 10);
                      return rc;
                    }),
         wantOk(kMC));
  // Directory times move with their entries.
  s.step(opMkdir("d"));
  s.step(opMkdir("d2"));
  s.step(timesAfter("create in dir", "d",
                    [](Side& x) { return writeTo(x.p("d/new"), O_WRONLY | O_CREAT, "n"); }),
         wantOk(kMC));
  s.step(timesAfter("overwrite a file in dir", "d",
                    [](Side& x) { return writeTo(x.p("d/new"), O_WRONLY, "m"); }),
         wantOk(kNone));
  s.step(
      timesAfter("mkdir in dir", "d", [](Side& x) { return ::mkdir(x.p("d/sub").c_str(), 0755); }),
      wantOk(kMC));
  s.step(timesAfter("rename out of dir", "d",
                    [](Side& x) { return ::rename(x.p("d/new").c_str(), x.p("d2/new").c_str()); }),
         wantOk(kMC));
  s.step(timesAfter("rename into dir", "d",
                    [](Side& x) { return ::rename(x.p("d2/new").c_str(), x.p("d/back").c_str()); }),
         wantOk(kMC));
  s.step(timesAfter("symlink in dir", "d",
                    [](Side& x) { return ::symlink("back", x.p("d/sl").c_str()); }),
         wantOk(kMC));
  s.step(timesAfter("unlink in dir", "d", [](Side& x) { return ::unlink(x.p("d/back").c_str()); }),
         wantOk(kMC));
  s.step(timesAfter("rmdir in dir", "d", [](Side& x) { return ::rmdir(x.p("d/sub").c_str()); }),
         wantOk(kMC));
  // A hard link changes the file's ctime and its new directory's times;
  // removing one of two names changes the other's ctime.
  s.step(opWriteFile("d/sl-target", "l"));
  s.step(timesAfter(
             "link: the file", "d/sl-target",
             [](Side& x) { return ::link(x.p("d/sl-target").c_str(), x.p("d2/hard").c_str()); }),
         wantOk(kC));
  s.step(
      timesAfter("link: its new directory", "d2",
                 [](Side& x) { return ::link(x.p("d2/hard").c_str(), x.p("d2/hard2").c_str()); }),
      wantOk(kMC));
  s.step(timesAfter("unlink one name: another name", "d2/hard",
                    [](Side& x) { return ::unlink(x.p("d2/hard2").c_str()); }),
         wantOk(kC));
  s.step(timesAfter("rename a linked name: the file", "d2/hard",
                    [](Side& x) {
                      return ::rename(x.p("d/sl-target").c_str(), x.p("d/renamed").c_str());
                    }),
         wantOk(kC));
  // A symlink's own times.
  s.step(opUtimens("d/sl", {1000000000, 7}, {1000000001, 8}, AT_SYMLINK_NOFOLLOW), wantOk());
  s.step(opTimes("d/sl"), wantOk("atime=1000000000.000000007 mtime=1000000001.000000008"));
}

// ---------------------------------------------------------------------------
// Scenario: extended attributes

namespace {

Op opSetxattr(const std::string& rel, const std::string& name, const std::string& value,
              int flags = 0, bool follow = true) {
  const char* f = flags == XATTR_CREATE    ? ", XATTR_CREATE"
                  : flags == XATTR_REPLACE ? ", XATTR_REPLACE"
                                           : "";
  return custom(
      fmt("%ssetxattr(%s, %s, %s%s)", follow ? "" : "l", quoteBytes(rel).c_str(), name.c_str(),
          quoteBytes(value).c_str(), f),
      [=](Side& s) {
        std::string p = s.p(rel);
        return fromRc(
            follow ? ::setxattr(p.c_str(), name.c_str(), value.data(), value.size(), flags)
                   : ::lsetxattr(p.c_str(), name.c_str(), value.data(), value.size(), flags));
      });
}

Op opGetxattr(const std::string& rel, const std::string& name, size_t size = 4096) {
  return custom(
      fmt("getxattr(%s, %s, %zu)", quoteBytes(rel).c_str(), name.c_str(), size), [=](Side& s) {
        std::string buf(size, '\0');
        return bytesOutcome(
            ::getxattr(s.p(rel).c_str(), name.c_str(), size ? buf.data() : nullptr, size), buf);
      });
}

Op opRemovexattr(const std::string& rel, const std::string& name) {
  return custom(fmt("removexattr(%s, %s)", quoteBytes(rel).c_str(), name.c_str()),
                [=](Side& s) { return fromRc(::removexattr(s.p(rel).c_str(), name.c_str())); });
}

// The user.* names only (`all`: every name), sorted: other namespaces
// (security.*) are the business of the kernel's security modules.
Op opListxattr(const std::string& rel, bool all = false) {
  return custom(fmt("listxattr(%s)%s", quoteBytes(rel).c_str(), all ? "" : " user.*"),
                [=](Side& s) {
                  char buf[65536];
                  ssize_t n = ::listxattr(s.p(rel).c_str(), buf, sizeof buf);
                  if (n < 0) return failure(errno);
                  std::vector<std::string> names;
                  for (ssize_t i = 0; i < n;) {
                    std::string name(buf + i);
                    i += static_cast<ssize_t>(name.size()) + 1;
                    if (all || name.rfind("user.", 0) == 0) names.push_back(name);
                  }
                  std::sort(names.begin(), names.end());
                  std::string info;
                  for (const auto& name : names) info += (info.empty() ? "" : " ") + name;
                  return success(info);
                });
}

}  // namespace

void xattrs(Scenario& s, const Options&) {
  s.step(opWriteFile("x", "data"));
  s.step(opMkdir("d"));
  s.step(opSymlink("x", "sl"));
  std::string binary = std::string("\0\x01\xff", 3) + pattern(300, 5);
  // kind: 0 plain step, 1 xattr call (EOPNOTSUPP when A has none), 2 listxattr.
  struct Item {
    Op op;
    Expect want;
    int kind;
  };
  std::vector<Item> items = {
      {opGetxattr("x", "user.x"), wantOk("v1"), 1},
      {opGetxattr("x", "user.x", 0), wantOk(), 1},
      {opGetxattr("x", "user.x", 1), wantErr(ERANGE), 1},
      {opGetxattr("x", "user.none"), wantErr(ENODATA), 1},
      {opSetxattr("x", "user.x", "v2", XATTR_CREATE), wantErr(EEXIST), 1},
      {opSetxattr("x", "user.y", "yy", XATTR_REPLACE), wantErr(ENODATA), 1},
      {opSetxattr("x", "user.x", "value-two", XATTR_REPLACE), wantOk(), 1},
      {opGetxattr("x", "user.x"), wantOk("value-two"), 1},
      {opSetxattr("x", "user.y", ""), wantOk(), 1},
      {opGetxattr("x", "user.y"), wantOk(""), 1},
      {opSetxattr("x", "user.bin", binary), wantOk(), 1},
      {opGetxattr("x", "user.bin"), wantOk(binary), 1},
      {opListxattr("x"), wantOk("user.bin user.x user.y"), 2},
      {opRemovexattr("x", "user.y"), wantOk(), 1},
      {opGetxattr("x", "user.y"), wantErr(ENODATA), 1},
      {opRemovexattr("x", "user.y"), wantErr(ENODATA), 1},
      {opListxattr("x"), wantOk("user.bin user.x"), 2},
      {opSetxattr("d", "user.dir", "on a dir"), wantOk(), 1},
      {opGetxattr("d", "user.dir"), wantOk("on a dir"), 1},
      {opSetxattr("sl", "user.l", "no", 0, false), wantErr(EPERM), 0},
      {opGetxattr("sl", "user.x"), wantOk("value-two"), 1},
      {opSetxattr("missing", "user.x", "v"), wantErr(ENOENT), 0},
      {opRename("x", "x2"), wantOk(), 0},
      {opGetxattr("x2", "user.x"), wantOk("value-two"), 1},
      {opOpen("f", "x2", O_RDONLY), wantOk(), 0},
      {custom("fgetxattr(f, user.bin)",
              [](Side& x) {
                std::string buf(4096, '\0');
                return bytesOutcome(::fgetxattr(x.fd("f"), "user.bin", buf.data(), buf.size()),
                                    buf);
              }),
       wantOk(binary), 1},
      {custom("fsetxattr(f, user.viafd, \"fd\")",
              [](Side& x) { return fromRc(::fsetxattr(x.fd("f"), "user.viafd", "fd", 2, 0)); }),
       wantOk(), 1},
      {opClose("f"), wantOk(), 0},
      {opGetxattr("x2", "user.viafd"), wantOk("fd"), 1},
      // Other namespaces (the tool runs as root, which may use them).
      {opSetxattr("x2", "trusted.t", "tv"), wantOk(), 1},
      {opGetxattr("x2", "trusted.t"), wantOk("tv"), 1},
      {opSetxattr("x2", "security.s", "sv"), wantOk(), 1},
      {opGetxattr("x2", "security.s"), wantOk("sv"), 1},
      {opListxattr("x2", true), wantOk("security.s trusted.t user.bin user.viafd user.x"), 2},
      {opRemovexattr("x2", "trusted.t"), wantOk(), 1},
      {opSetxattr("sl", "trusted.onlink", "ok", 0, false), wantOk(), 1},
      // Limits: a name above 255 bytes (prefix included) is ERANGE, a value above 64 KiB
      // E2BIG (both the kernel's); what passes one ext4 block, ENOSPC.
      {opSetxattr("x2", "user." + std::string(250, 'n'), "v"), wantOk(), 1},
      {opSetxattr("x2", "user." + std::string(250, 'n'), "v", XATTR_CREATE), wantErr(EEXIST), 1},
      {opSetxattr("x2", "user." + std::string(300, 'n'), "v"), wantErr(ERANGE), 1},
      {opGetxattr("x2", "user." + std::string(300, 'n')), wantErr(ERANGE), 1},
      {opSetxattr("d", "user.huge", std::string(70000, 'h')), wantErr(E2BIG), 1},
      {opSetxattr("d", "user.big", std::string(5000, 'b')), wantErr(ENOSPC), 1},
      {opSetxattr("d", "user.fits", std::string(3800, 'f')), wantOk(), 1},
      {opSetxattr("d", "user.more", std::string(300, 'm')), wantErr(ENOSPC), 1},
      {opRemovexattr("d", "user.fits"), wantOk(), 1},
      {opSetxattr("d", "user.more", std::string(300, 'm')), wantOk(), 1},
      {opSetxattr("x2", "bogus.ns", "v"), wantErr(EOPNOTSUPP), 1},
      // What an attribute change does to the times.
      {timesAfter("setxattr", "x2",
                  [](Side& x) { return ::setxattr(x.p("x2").c_str(), "user.t", "1", 1, 0); }),
       wantOk("mtime same, ctime changed"), 1},
      {timesAfter("removexattr", "x2",
                  [](Side& x) { return ::removexattr(x.p("x2").c_str(), "user.t"); }),
       wantOk("mtime same, ctime changed"), 1},
      {timesAfter("setxattr on a directory", "d",
                  [](Side& x) { return ::setxattr(x.p("d").c_str(), "user.t", "1", 1, 0); }),
       wantOk("mtime same, ctime changed"), 1},
      {timesAfter("failed setxattr(XATTR_CREATE)", "x2",
                  [](Side& x) {
                    int rc = ::setxattr(x.p("x2").c_str(), "user.x", "1", 1, XATTR_CREATE);
                    return rc == -1 && errno == EEXIST ? 0 : -1;
                  }),
       wantOk("mtime same, ctime same"), 1},
  };
  // The mount keeps extended attributes: the first set must work there.
  StepResult first = s.step(opSetxattr("x", "user.x", "v1"), wantOk());
  if (first == StepResult::kSame && s.lastB().rc == -1) {
    s.note("DIR_B has no user.* xattrs (" + errnoSymbol(s.lastB().err) +
           "): xattr checks skipped; put DIR_B on ext4/xfs/btrfs");
    return;
  }
  for (auto& item : items) s.step(item.op, item.want);
}

}  // namespace hgvfs::parity
