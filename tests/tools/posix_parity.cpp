// posix_parity: runs the same system calls in two directories, DIR_A (an hgvfs
// mount) and DIR_B (a plain directory on a local disk file system), and
// reports every place where they behave differently: return values, errno,
// bytes read back, and afterwards the two resulting trees.
//
//   posix_parity DIR_A DIR_B [--seed N] [--steps N] [--scenario NAME...]
//   posix_parity --self-test DIR_A DIR_B     (two plain directories)
//   posix_parity --list
//
// Exit status: 0 no mismatch, 1 mismatches (or a failed self-test), 2 usage
// or setup error.
//
// Each scenario runs in a fresh DIR_A/<scenario> and DIR_B/<scenario>, removed
// again when the scenario passes and kept for inspection when it does not. A
// step runs one operation on A, then the same operation on B, and compares
// their Outcomes. B is the reference, so most steps also state what Linux
// answers on a local file system; a reference that answers otherwise is
// reported as HARNESS (a bug in the scenario, or DIR_B on an unusual file
// system) and fails the run too.
//
// Trees are compared by names, kinds, permission bits, sizes, contents,
// symlink targets, device numbers and (for non-directories) link counts. Inode
// numbers and atimes never; mtime and ctime only inside the steps that check
// them, as "changed or not" relations or as exact explicitly set values.
//
// Allowed, documented differences (printed as NOTE, not failures): A may
// refuse device nodes (mknod S_IFCHR/S_IFBLK) and hard links with EPERM, and
// may lack user.* extended attributes provided it answers EOPNOTSUPP to every
// xattr call.
//
// Threads: single-threaded except inside the race steps, which join their
// threads before returning; fork()ed children leave with _exit.

#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <barrier>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

// ---------------------------------------------------------------------------
// Formatting

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  va_list ap;
  va_start(ap, f);
  va_list ap2;
  va_copy(ap2, ap);
  int n = std::vsnprintf(nullptr, 0, f, ap);
  va_end(ap);
  std::string s(n > 0 ? static_cast<size_t>(n) : 0, '\0');
  if (n > 0) std::vsnprintf(s.data(), s.size() + 1, f, ap2);
  va_end(ap2);
  return s;
}

std::string errnoName(int e) {
  if (e == 0) return "ok";
  const char* n = strerrorname_np(e);
  return n ? n : fmt("errno %d", e);
}

// Bytes as readable text: escapes, runs of one byte as "\x00*4096".
std::string printable(std::string_view s, size_t max = 96) {
  std::string out;
  size_t i = 0;
  while (i < s.size() && out.size() < max) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t run = 1;
    while (i + run < s.size() && s[i + run] == s[i]) ++run;
    std::string one = c == '\\'                 ? "\\\\"
                      : c == '\n'               ? "\\n"
                      : (c >= 0x20 && c < 0x7f) ? std::string(1, static_cast<char>(c))
                                                : fmt("\\x%02x", c);
    if (run >= 8) {
      out += one + fmt("*%zu", run);
      i += run;
    } else {
      out += one;
      ++i;
    }
  }
  if (i < s.size()) out += fmt("...(%zu bytes)", s.size());
  return out;
}

std::string quoted(std::string_view s) { return "\"" + printable(s, 48) + "\""; }

const char* kindName(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "dir";
  if (S_ISLNK(m)) return "symlink";
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISCHR(m)) return "chardev";
  if (S_ISBLK(m)) return "blockdev";
  if (S_ISSOCK(m)) return "socket";
  return "unknown";
}

std::string flagsName(int f) {
  std::string s = (f & O_ACCMODE) == O_WRONLY ? "O_WRONLY"
                  : (f & O_ACCMODE) == O_RDWR ? "O_RDWR"
                                              : "O_RDONLY";
  static const std::pair<int, const char*> kBits[] = {
      {O_CREAT, "O_CREAT"},         {O_EXCL, "O_EXCL"},
      {O_TRUNC, "O_TRUNC"},         {O_APPEND, "O_APPEND"},
      {O_DIRECTORY, "O_DIRECTORY"}, {O_NOFOLLOW, "O_NOFOLLOW"},
      {O_NONBLOCK, "O_NONBLOCK"},   {O_PATH, "O_PATH"}};
  for (auto [bit, name] : kBits)
    if (f & bit) s += std::string("|") + name;
  return s;
}

// What a stat reports that must agree: kind, permission bits, and for
// non-directories size and link count (directory sizes and link counts are
// file-system specific).
std::string statInfo(const struct stat& st) {
  std::string s = fmt("%s %04o", kindName(st.st_mode), st.st_mode & 07777);
  if (!S_ISDIR(st.st_mode))
    s += fmt(" size=%lld nlink=%lu", static_cast<long long>(st.st_size),
             static_cast<unsigned long>(st.st_nlink));
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
    s += fmt(" rdev=%u:%u", major(st.st_rdev), minor(st.st_rdev));
  return s;
}

std::string timeText(const struct timespec& t) {
  return fmt("%lld.%09ld", static_cast<long long>(t.tv_sec), t.tv_nsec);
}

bool operator<(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec != b.tv_sec ? a.tv_sec < b.tv_sec : a.tv_nsec < b.tv_nsec;
}
bool sameTime(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

void sleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// ---------------------------------------------------------------------------
// Outcomes, sides, operations

// The result of one operation in one directory. Results that differ between
// directories by nature (descriptor numbers, addresses) are normalised to 0.
struct Outcome {
  long rc = 0;
  int err = 0;       // errno when rc == -1
  std::string info;  // what the operation observed: bytes read, stat fields
  bool operator==(const Outcome&) const = default;
};

Outcome success(std::string info = {}) { return Outcome{0, 0, std::move(info)}; }
Outcome failure(int e) { return Outcome{-1, e, {}}; }
Outcome fromRc(long rc) { return rc < 0 ? failure(errno) : Outcome{rc, 0, {}}; }
Outcome fromRc0(long rc) { return rc < 0 ? failure(errno) : success(); }

std::string describe(const Outcome& o) {
  std::string s = o.rc == -1 ? "-1 " + errnoName(o.err) : std::to_string(o.rc);
  if (!o.info.empty()) s += " [" + printable(o.info) + "]";
  return s;
}

// One of the two directories under test, with what the steps opened in it.
struct Side {
  char label = 'A';
  std::string dir;  // this scenario's directory
  std::map<std::string, int> fds;
  struct Mapping {
    void* addr;
    size_t len;
  };
  std::map<std::string, Mapping> maps;

  std::string p(std::string_view rel) const {
    return rel.empty() ? dir : dir + "/" + std::string(rel);
  }
  // -1 (so the call fails with EBADF on both sides) when the open failed.
  int fd(const std::string& name) const {
    auto it = fds.find(name);
    return it == fds.end() ? -1 : it->second;
  }
  void release() {
    for (auto& [name, m] : maps) ::munmap(m.addr, m.len);
    for (auto& [name, fd] : fds) ::close(fd);
    maps.clear();
    fds.clear();
  }
};

struct Op {
  std::string call;
  std::function<Outcome(Side&)> run;
};

Op custom(std::string call, std::function<Outcome(Side&)> run) {
  return Op{std::move(call), std::move(run)};
}

// What Linux answers on a local file system: checked against B only.
struct Expect {
  enum class Kind { kAny, kOk, kErr } kind = Kind::kAny;
  int err = 0;
  std::optional<std::string> info;
};
Expect wantOk() { return Expect{Expect::Kind::kOk, 0, std::nullopt}; }
Expect wantOk(std::string info) { return Expect{Expect::Kind::kOk, 0, std::move(info)}; }
Expect wantErr(int e) { return Expect{Expect::Kind::kErr, e, std::nullopt}; }

std::optional<std::string> readAll(int fd) {
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;
    }
    if (n == 0) return data;
    data.append(buf, static_cast<size_t>(n));
  }
}

bool writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Deterministic, position-dependent bytes.
std::string pattern(size_t len, unsigned salt) {
  std::string s(len, '\0');
  for (size_t i = 0; i < len; ++i) s[i] = static_cast<char>('a' + (i * 7 + salt) % 26);
  return s;
}

Op opOpen(const std::string& name, const std::string& rel, int flags, mode_t mode = 0644) {
  std::string call =
      fmt("%s = open(%s, %s", name.c_str(), quoted(rel).c_str(), flagsName(flags).c_str());
  if (flags & O_CREAT) call += fmt(", 0%o", mode);
  return custom(call + ")", [=](Side& s) {
    int fd = ::open(s.p(rel).c_str(), flags | O_CLOEXEC, mode);
    if (fd < 0) return failure(errno);
    if (auto it = s.fds.find(name); it != s.fds.end()) ::close(it->second);
    s.fds[name] = fd;
    return success();
  });
}

Op opClose(const std::string& name) {
  return custom(fmt("close(%s)", name.c_str()), [=](Side& s) {
    int fd = s.fd(name);
    s.fds.erase(name);
    return fromRc(::close(fd));
  });
}

Op opWrite(const std::string& name, const std::string& data) {
  return custom(fmt("write(%s, %s)", name.c_str(), quoted(data).c_str()),
                [=](Side& s) { return fromRc(::write(s.fd(name), data.data(), data.size())); });
}

Op opPwrite(const std::string& name, const std::string& data, off_t off) {
  return custom(
      fmt("pwrite(%s, %s, @%lld)", name.c_str(), quoted(data).c_str(), static_cast<long long>(off)),
      [=](Side& s) { return fromRc(::pwrite(s.fd(name), data.data(), data.size(), off)); });
}

Outcome bytesOutcome(ssize_t n, const std::string& buf) {
  if (n < 0) return failure(errno);
  return Outcome{n, 0, buf.substr(0, static_cast<size_t>(n))};
}

Op opRead(const std::string& name, size_t len) {
  return custom(fmt("read(%s, %zu)", name.c_str(), len), [=](Side& s) {
    std::string buf(len, '\0');
    return bytesOutcome(::read(s.fd(name), buf.data(), len), buf);
  });
}

Op opPread(const std::string& name, size_t len, off_t off) {
  return custom(fmt("pread(%s, %zu, @%lld)", name.c_str(), len, static_cast<long long>(off)),
                [=](Side& s) {
                  std::string buf(len, '\0');
                  return bytesOutcome(::pread(s.fd(name), buf.data(), len, off), buf);
                });
}

Op opLseek(const std::string& name, off_t off, int whence) {
  const char* w = whence == SEEK_SET ? "SEEK_SET" : whence == SEEK_CUR ? "SEEK_CUR" : "SEEK_END";
  return custom(fmt("lseek(%s, %lld, %s)", name.c_str(), static_cast<long long>(off), w),
                [=](Side& s) { return fromRc(::lseek(s.fd(name), off, whence)); });
}

Op opFstat(const std::string& name) {
  return custom(fmt("fstat(%s)", name.c_str()), [=](Side& s) {
    struct stat st;
    if (::fstat(s.fd(name), &st) != 0) return failure(errno);
    return success(statInfo(st));
  });
}

Op opStat(const std::string& rel) {
  return custom(fmt("stat(%s)", quoted(rel).c_str()), [=](Side& s) {
    struct stat st;
    if (::stat(s.p(rel).c_str(), &st) != 0) return failure(errno);
    return success(statInfo(st));
  });
}

Op opLstat(const std::string& rel) {
  return custom(fmt("lstat(%s)", quoted(rel).c_str()), [=](Side& s) {
    struct stat st;
    if (::lstat(s.p(rel).c_str(), &st) != 0) return failure(errno);
    return success(statInfo(st));
  });
}

// open + read everything + close; rc is the size read.
Op opReadFile(const std::string& rel) {
  return custom(fmt("read whole %s", quoted(rel).c_str()), [=](Side& s) {
    int fd = ::open(s.p(rel).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return failure(errno);
    auto data = readAll(fd);
    int e = errno;
    ::close(fd);
    if (!data) return failure(e);
    return Outcome{static_cast<long>(data->size()), 0, *data};
  });
}

Op opWriteFile(const std::string& rel, const std::string& data,
               int flags = O_WRONLY | O_CREAT | O_TRUNC, mode_t mode = 0644) {
  return custom(fmt("write whole %s = %s (%s)", quoted(rel).c_str(), quoted(data).c_str(),
                    flagsName(flags).c_str()),
                [=](Side& s) {
                  int fd = ::open(s.p(rel).c_str(), flags | O_CLOEXEC, mode);
                  if (fd < 0) return failure(errno);
                  bool ok = writeAll(fd, data);
                  int e = errno;
                  if (::close(fd) != 0 && ok) return failure(errno);
                  return ok ? success() : failure(e);
                });
}

Op opMkdir(const std::string& rel, mode_t mode = 0755) {
  return custom(fmt("mkdir(%s, 0%o)", quoted(rel).c_str(), mode),
                [=](Side& s) { return fromRc(::mkdir(s.p(rel).c_str(), mode)); });
}

Op opRmdir(const std::string& rel) {
  return custom(fmt("rmdir(%s)", quoted(rel).c_str()),
                [=](Side& s) { return fromRc(::rmdir(s.p(rel).c_str())); });
}

Op opUnlink(const std::string& rel) {
  return custom(fmt("unlink(%s)", quoted(rel).c_str()),
                [=](Side& s) { return fromRc(::unlink(s.p(rel).c_str())); });
}

Op opRename(const std::string& from, const std::string& to) {
  return custom(fmt("rename(%s, %s)", quoted(from).c_str(), quoted(to).c_str()),
                [=](Side& s) { return fromRc(::rename(s.p(from).c_str(), s.p(to).c_str())); });
}

Op opRename2(const std::string& from, const std::string& to, unsigned flags) {
  std::string f = flags == RENAME_NOREPLACE  ? "RENAME_NOREPLACE"
                  : flags == RENAME_EXCHANGE ? "RENAME_EXCHANGE"
                                             : fmt("0x%x", flags);
  return custom(
      fmt("renameat2(%s, %s, %s)", quoted(from).c_str(), quoted(to).c_str(), f.c_str()),
      [=](Side& s) {
        return fromRc(::renameat2(AT_FDCWD, s.p(from).c_str(), AT_FDCWD, s.p(to).c_str(), flags));
      });
}

Op opSymlink(const std::string& target, const std::string& rel) {
  return custom(fmt("symlink(%s, %s)", quoted(target).c_str(), quoted(rel).c_str()),
                [=](Side& s) { return fromRc(::symlink(target.c_str(), s.p(rel).c_str())); });
}

Op opReadlink(const std::string& rel, size_t bufSize = 8192) {
  return custom(fmt("readlink(%s, %zu)", quoted(rel).c_str(), bufSize), [=](Side& s) {
    std::string buf(bufSize, '\0');
    return bytesOutcome(::readlink(s.p(rel).c_str(), buf.data(), bufSize), buf);
  });
}

Op opTruncate(const std::string& rel, off_t len) {
  return custom(fmt("truncate(%s, %lld)", quoted(rel).c_str(), static_cast<long long>(len)),
                [=](Side& s) { return fromRc(::truncate(s.p(rel).c_str(), len)); });
}

Op opFtruncate(const std::string& name, off_t len) {
  return custom(fmt("ftruncate(%s, %lld)", name.c_str(), static_cast<long long>(len)),
                [=](Side& s) { return fromRc(::ftruncate(s.fd(name), len)); });
}

Op opChmod(const std::string& rel, mode_t mode) {
  return custom(fmt("chmod(%s, 0%o)", quoted(rel).c_str(), mode),
                [=](Side& s) { return fromRc(::chmod(s.p(rel).c_str(), mode)); });
}

Op opFchmod(const std::string& name, mode_t mode) {
  return custom(fmt("fchmod(%s, 0%o)", name.c_str(), mode),
                [=](Side& s) { return fromRc(::fchmod(s.fd(name), mode)); });
}

Op opChown(const std::string& rel, uid_t uid, gid_t gid, bool follow = true) {
  return custom(fmt("%s(%s, %d, %d)", follow ? "chown" : "lchown", quoted(rel).c_str(),
                    static_cast<int>(uid), static_cast<int>(gid)),
                [=](Side& s) {
                  return fromRc(follow ? ::chown(s.p(rel).c_str(), uid, gid)
                                       : ::lchown(s.p(rel).c_str(), uid, gid));
                });
}

// Owner, group and mode, as lstat (follow=false) or stat sees them.
Op opOwner(const std::string& rel, bool follow = true) {
  return custom(fmt("%s(%s) owner", follow ? "stat" : "lstat", quoted(rel).c_str()), [=](Side& s) {
    struct stat st;
    int rc = follow ? ::stat(s.p(rel).c_str(), &st) : ::lstat(s.p(rel).c_str(), &st);
    if (rc != 0) return failure(errno);
    return success(fmt("uid=%u gid=%u mode=%04o", st.st_uid, st.st_gid, st.st_mode & 07777));
  });
}

Op opLink(const std::string& from, const std::string& to) {
  return custom(fmt("link(%s, %s)", quoted(from).c_str(), quoted(to).c_str()),
                [=](Side& s) { return fromRc(::link(s.p(from).c_str(), s.p(to).c_str())); });
}

Op opMknod(const std::string& rel, mode_t mode, dev_t dev) {
  return custom(fmt("mknod(%s, %s|0%o, %u:%u)", quoted(rel).c_str(), kindName(mode), mode & 07777,
                    major(dev), minor(dev)),
                [=](Side& s) { return fromRc(::mknod(s.p(rel).c_str(), mode, dev)); });
}

Op opFallocate(const std::string& name, int mode, off_t off, off_t len) {
  std::string m = mode == 0                     ? "0"
                  : mode == FALLOC_FL_KEEP_SIZE ? "FALLOC_FL_KEEP_SIZE"
                                                : fmt("0x%x", mode);
  return custom(fmt("fallocate(%s, %s, %lld, %lld)", name.c_str(), m.c_str(),
                    static_cast<long long>(off), static_cast<long long>(len)),
                [=](Side& s) { return fromRc(::fallocate(s.fd(name), mode, off, len)); });
}

Op opFsync(const std::string& name, bool dataOnly = false) {
  return custom(fmt("%s(%s)", dataOnly ? "fdatasync" : "fsync", name.c_str()), [=](Side& s) {
    return fromRc(dataOnly ? ::fdatasync(s.fd(name)) : ::fsync(s.fd(name)));
  });
}

// The sorted names of a directory (without . and ..), and whether . and ..
// were listed and every d_type agreed with lstat.
Outcome listing(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (!d) return failure(errno);
  std::vector<std::string> names;
  bool dot = false, dotdot = false;
  int badTypes = 0;
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == ".") {
      dot = true;
    } else if (n == "..") {
      dotdot = true;
    } else {
      names.push_back(n);
      struct stat st;
      if (e->d_type != DT_UNKNOWN && ::lstat((path + "/" + n).c_str(), &st) == 0 &&
          IFTODT(st.st_mode) != e->d_type)
        ++badTypes;
    }
    errno = 0;
  }
  int e = errno;
  ::closedir(d);
  if (e != 0) return failure(e);
  std::sort(names.begin(), names.end());
  std::string info =
      fmt("n=%zu%s%s%s:", names.size(), dot ? "" : " NO-DOT", dotdot ? "" : " NO-DOTDOT",
          badTypes ? fmt(" d_type-wrong=%d", badTypes).c_str() : "");
  for (const auto& n : names) info += " " + n;
  return Outcome{static_cast<long>(names.size()), 0, info};
}

Op opList(const std::string& rel) {
  return custom(fmt("readdir(%s)", quoted(rel).c_str()),
                [=](Side& s) { return listing(s.p(rel)); });
}

Op opUtimens(const std::string& rel, struct timespec atime, struct timespec mtime, int flags = 0) {
  auto t = [](const struct timespec& x) {
    return x.tv_nsec == UTIME_NOW    ? std::string("UTIME_NOW")
           : x.tv_nsec == UTIME_OMIT ? std::string("UTIME_OMIT")
                                     : timeText(x);
  };
  return custom(fmt("utimensat(%s, %s, %s%s)", quoted(rel).c_str(), t(atime).c_str(),
                    t(mtime).c_str(), flags ? ", AT_SYMLINK_NOFOLLOW" : ""),
                [=](Side& s) {
                  struct timespec ts[2] = {atime, mtime};
                  return fromRc(::utimensat(AT_FDCWD, s.p(rel).c_str(), ts, flags));
                });
}

// Exact atime and mtime (lstat).
Op opTimes(const std::string& rel) {
  return custom(fmt("lstat(%s) times", quoted(rel).c_str()), [=](Side& s) {
    struct stat st;
    if (::lstat(s.p(rel).c_str(), &st) != 0) return failure(errno);
    return success("atime=" + timeText(st.st_atim) + " mtime=" + timeText(st.st_mtim));
  });
}

// Runs `fn` in a forked child and returns what it returned. `meanwhile`
// runs in the parent while the child is alive.
Outcome inChild(const std::function<Outcome()>& fn, const std::function<void()>& meanwhile = {}) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return failure(errno);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(p[0]);
    ::close(p[1]);
    return failure(e);
  }
  if (pid == 0) {
    ::close(p[0]);
    ::alarm(10);  // a child stuck on a lock ends instead of hanging the run
    Outcome o = fn();
    _exit(writeAll(p[1], fmt("%ld %d ", o.rc, o.err) + o.info) ? 0 : 3);
  }
  ::close(p[1]);
  if (meanwhile) meanwhile();
  auto msg = readAll(p[0]);
  ::close(p[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!msg || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return Outcome{-1, 0, fmt("child failed: wait status 0x%x", status)};
  Outcome o;
  int used = 0;
  if (std::sscanf(msg->c_str(), "%ld %d %n", &o.rc, &o.err, &used) < 2)
    return Outcome{-1, 0, "child sent garbage"};
  o.info = msg->substr(static_cast<size_t>(used));
  return o;
}

// ---------------------------------------------------------------------------
// Trees

struct Node {
  std::string kind;
  mode_t perm = 0;
  long long size = 0;
  unsigned long nlink = 0;
  dev_t rdev = 0;
  std::string data;  // file content or symlink target
  int err = 0;       // errno when the node could not be read
};
using Tree = std::map<std::string, Node>;

void scan(const std::string& root, const std::string& rel, Tree& out) {
  std::string dirPath = rel.empty() ? root : root + "/" + rel;
  DIR* d = ::opendir(dirPath.c_str());
  if (!d) {
    out[rel + "/"].err = errno;
    return;
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) {
    std::string r = rel.empty() ? n : rel + "/" + n;
    std::string path = root + "/" + r;
    Node& node = out[r];
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
      node.err = errno;
      continue;
    }
    node.kind = kindName(st.st_mode);
    node.perm = st.st_mode & 07777;
    node.size = st.st_size;
    node.nlink = st.st_nlink;
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) node.rdev = st.st_rdev;
    if (S_ISDIR(st.st_mode)) {
      scan(root, r, out);
    } else if (S_ISLNK(st.st_mode)) {
      char buf[PATH_MAX + 1];
      ssize_t len = ::readlink(path.c_str(), buf, sizeof buf);
      if (len < 0)
        node.err = errno;
      else
        node.data.assign(buf, static_cast<size_t>(len));
    } else if (S_ISREG(st.st_mode)) {
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      auto data = fd >= 0 ? readAll(fd) : std::nullopt;
      if (!data)
        node.err = errno;
      else
        node.data = std::move(*data);
      if (fd >= 0) ::close(fd);
    }
  }
}

size_t firstDifference(std::string_view a, std::string_view b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return i;
}

// Problems found comparing two trees, one line each.
std::vector<std::string> compareTrees(const Tree& a, const Tree& b) {
  std::vector<std::string> out;
  std::set<std::string> names;
  for (const auto& [n, node] : a) names.insert(n);
  for (const auto& [n, node] : b) names.insert(n);
  auto brief = [](const Node& x) {
    return x.err ? "unreadable (" + errnoName(x.err) + ")" : fmt("%s %04o", x.kind.c_str(), x.perm);
  };
  for (const auto& n : names) {
    auto ia = a.find(n), ib = b.find(n);
    std::string shown = quoted(n);
    if (ib == b.end()) {
      out.push_back(shown + " only in A (" + brief(ia->second) + ")");
      continue;
    }
    if (ia == a.end()) {
      out.push_back(shown + " only in B (" + brief(ib->second) + ")");
      continue;
    }
    const Node& x = ia->second;
    const Node& y = ib->second;
    if (x.err || y.err) {
      if (x.err != y.err) out.push_back(shown + ": A " + brief(x) + ", B " + brief(y));
      continue;
    }
    if (x.kind != y.kind) {
      out.push_back(shown + ": kind " + x.kind + " in A, " + y.kind + " in B");
      continue;
    }
    if (x.perm != y.perm) out.push_back(shown + fmt(": mode %04o in A, %04o in B", x.perm, y.perm));
    if (x.kind == "dir") continue;
    if (x.size != y.size) out.push_back(shown + fmt(": size %lld in A, %lld in B", x.size, y.size));
    if (x.nlink != y.nlink)
      out.push_back(shown + fmt(": nlink %lu in A, %lu in B", x.nlink, y.nlink));
    if (x.rdev != y.rdev) out.push_back(shown + ": device numbers differ");
    if (x.data != y.data) {
      size_t at = firstDifference(x.data, y.data);
      out.push_back(
          shown +
          fmt(": %s differs at byte %zu (A has %zu bytes, B %zu)",
              x.kind == "symlink" ? "target" : "content", at, x.data.size(), y.data.size()) +
          " A: " + quoted(x.data.substr(at, 24)) + " B: " + quoted(y.data.substr(at, 24)));
    }
  }
  return out;
}

// Removes a tree; returns 0 or the first errno.
int removeTree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT ? 0 : errno;
  if (!S_ISDIR(st.st_mode)) return ::unlink(path.c_str()) == 0 ? 0 : errno;
  ::chmod(path.c_str(), 0700);
  if (DIR* d = ::opendir(path.c_str())) {
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
    for (const auto& n : names) removeTree(path + "/" + n);
  }
  return ::rmdir(path.c_str()) == 0 ? 0 : errno;
}

// ---------------------------------------------------------------------------
// Scenario: runs steps on both sides and reports

struct Options {
  uint64_t seed = 1;
  int steps = 2000;
};

struct Totals {
  int failures = 0;  // mismatches + harness problems
  int notes = 0;
  std::string tag;  // prefixed to every printed line (self-test)
};

enum class StepResult { kSame, kDiffer, kAllowed };

// Self-test perturbations of B.
struct Perturbation {
  int corruptStep = 0;  // B's outcome at this step is altered
  int hookStep = 0;     // hookB runs on B before this step
  std::function<void(Side&)> hookB;
  std::function<void(const std::string&)> beforeTreeCompare;  // gets B's scenario dir
};

class Scenario {
 public:
  static constexpr int kMaxPrinted = 30;

  Scenario(std::string name, Side& a, Side& b, Totals& totals, const Perturbation& perturb)
      : name_(std::move(name)), a_(a), b_(b), totals_(totals), perturb_(perturb) {}

  Side& a() { return a_; }
  Side& b() { return b_; }
  int failures() const { return failures_; }
  int stepNo() const { return step_; }
  const Outcome& lastB() const { return lastB_; }
  void setContext(std::string context) { context_ = std::move(context); }

  StepResult step(const Op& op, const Expect& want = {}) {
    Outcome ra, rb;
    runPair(op, ra, rb);
    checkReference(op, rb, want);
    if (ra == rb) return StepResult::kSame;
    reportMismatch(op.call, ra, rb);
    return StepResult::kDiffer;
  }

  // Like step, but A failing with one of `allowedOnA` where B succeeds is an
  // allowed difference: printed as a note, and the caller skips what depends
  // on it (and undoes B's side with onlyB).
  StepResult stepAllowing(const Op& op, std::vector<int> allowedOnA, const std::string& why,
                          const Expect& want = {}) {
    Outcome ra, rb;
    runPair(op, ra, rb);
    checkReference(op, rb, want);
    if (ra == rb) return StepResult::kSame;
    if (ra.rc == -1 && rb.rc != -1 &&
        std::find(allowedOnA.begin(), allowedOnA.end(), ra.err) != allowedOnA.end()) {
      note(
          fmt("step %d %s: A gives %s, B succeeds: %s (allowed difference; dependent checks "
              "skipped)",
              step_, op.call.c_str(), errnoName(ra.err).c_str(), why.c_str()));
      return StepResult::kAllowed;
    }
    reportMismatch(op.call, ra, rb);
    return StepResult::kDiffer;
  }

  // Runs `op` on A alone and requires `accept` of its outcome.
  void checkA(const Op& op, const std::function<bool(const Outcome&)>& accept,
              const std::string& requirement) {
    ++step_;
    Outcome ra = op.run(a_);
    if (!accept(ra))
      fail(fmt("step %d %s: A gives %s, but %s", step_, op.call.c_str(), describe(ra).c_str(),
               requirement.c_str()));
  }

  // Brings B in line with A after an allowed difference.
  void onlyB(const Op& op) {
    Outcome rb = op.run(b_);
    if (rb.rc == -1) harness(op.call + " on B alone failed: " + describe(rb));
  }

  void compareTrees() {
    if (perturb_.beforeTreeCompare) perturb_.beforeTreeCompare(b_.dir);
    Tree ta, tb;
    scan(a_.dir, "", ta);
    scan(b_.dir, "", tb);
    for (const auto& problem : ::compareTrees(ta, tb)) fail("tree: " + problem);
  }

  void note(const std::string& text) {
    ++totals_.notes;
    std::printf("%sNOTE [%s] %s\n", totals_.tag.c_str(), name_.c_str(), text.c_str());
  }

  void harness(const std::string& text) {
    fail("HARNESS (the reference B did not do what Linux does on a local disk): " + text);
  }

 private:
  void runPair(const Op& op, Outcome& ra, Outcome& rb) {
    ++step_;
    if (perturb_.hookB && perturb_.hookStep == step_) perturb_.hookB(b_);
    ra = op.run(a_);
    rb = op.run(b_);
    if (perturb_.corruptStep == step_)
      rb = rb.rc == -1 ? failure(rb.err == EIO ? EPERM : EIO) : failure(EIO);
    lastB_ = rb;
  }

  void checkReference(const Op& op, const Outcome& rb, const Expect& want) {
    bool ok = true;
    if (want.kind == Expect::Kind::kOk)
      ok = rb.rc != -1 && (!want.info || *want.info == rb.info);
    else if (want.kind == Expect::Kind::kErr)
      ok = rb.rc == -1 && rb.err == want.err;
    if (ok) return;
    std::string expected = want.kind == Expect::Kind::kErr ? "-1 " + errnoName(want.err)
                           : want.info ? "success [" + printable(*want.info) + "]"
                                       : "success";
    harness(fmt("step %d %s: B gives %s, expected %s", step_, op.call.c_str(), describe(rb).c_str(),
                expected.c_str()));
  }

  void reportMismatch(const std::string& call, const Outcome& ra, const Outcome& rb) {
    std::string da = describe(ra), db = describe(rb);
    std::string text = fmt("step %d %s:", step_, call.c_str());
    if (da.size() + db.size() < 120) {
      text += " A: " + da + " | B: " + db;
    } else {
      text += "\n      A: " + da + "\n      B: " + db;
      if (ra.info != rb.info)
        text += fmt("\n      (observations first differ at byte %zu)",
                    firstDifference(ra.info, rb.info));
    }
    fail(text);
  }

  void fail(const std::string& text) {
    ++failures_;
    ++totals_.failures;
    if (failures_ <= kMaxPrinted)
      std::printf("%sMISMATCH [%s%s] %s\n", totals_.tag.c_str(), name_.c_str(),
                  context_.empty() ? "" : (", " + context_).c_str(), text.c_str());
    else if (failures_ == kMaxPrinted + 1)
      std::printf("%sMISMATCH [%s] (further mismatches counted, not shown)\n", totals_.tag.c_str(),
                  name_.c_str());
  }

  std::string name_;
  std::string context_;
  Side& a_;
  Side& b_;
  Totals& totals_;
  const Perturbation& perturb_;
  int step_ = 0;
  int failures_ = 0;
  Outcome lastB_;
};

bool isRoot() { return ::geteuid() == 0; }

// ---------------------------------------------------------------------------
// Scenario: open flags

void openFlags(Scenario& s, const Options&) {
  s.step(opOpen("f", "f", O_CREAT | O_WRONLY, 0644), wantOk());
  s.step(opWrite("f", "hello world"), wantOk());
  s.step(opClose("f"), wantOk());
  s.step(opStat("f"), wantOk("file 0644 size=11 nlink=1"));
  s.step(opOpen("x", "f", O_CREAT | O_EXCL | O_WRONLY), wantErr(EEXIST));
  s.step(opOpen("x", "f", O_CREAT | O_WRONLY, 0600), wantOk());  // existing: mode kept
  s.step(opClose("x"));
  s.step(opStat("f"), wantOk("file 0644 size=11 nlink=1"));
  s.step(opOpen("t", "f", O_WRONLY | O_TRUNC), wantOk());
  s.step(opFstat("t"), wantOk("file 0644 size=0 nlink=1"));
  s.step(opWrite("t", "abc"));
  s.step(opClose("t"));
  // O_APPEND: every write (and on Linux every pwrite) lands at the end.
  s.step(opOpen("ap", "f", O_WRONLY | O_APPEND), wantOk());
  s.step(opLseek("ap", 0, SEEK_SET), wantOk());
  s.step(opWrite("ap", "XYZ"), wantOk());
  s.step(opPwrite("ap", "pw", 0), wantOk());
  s.step(opLseek("ap", 0, SEEK_CUR));
  s.step(opClose("ap"));
  s.step(opReadFile("f"), wantOk("abcXYZpw"));
  s.step(opOpen("rap", "f", O_RDWR | O_APPEND), wantOk());
  s.step(opRead("rap", 3), wantOk("abc"));
  s.step(opWrite("rap", "!"));
  s.step(opLseek("rap", 0, SEEK_CUR));
  s.step(opClose("rap"));
  // Access modes.
  s.step(opOpen("ro", "f", O_RDONLY), wantOk());
  s.step(opWrite("ro", "no"), wantErr(EBADF));
  s.step(opPwrite("ro", "no", 0), wantErr(EBADF));
  s.step(opOpen("wo", "f", O_WRONLY), wantOk());
  s.step(opRead("wo", 10), wantErr(EBADF));
  s.step(opClose("ro"));
  s.step(opClose("wo"));
  s.step(opReadFile("f"), wantOk("abcXYZpw!"));
  // Directories.
  s.step(opOpen("fd", "f", O_RDONLY | O_DIRECTORY), wantErr(ENOTDIR));
  s.step(opMkdir("d"), wantOk());
  s.step(opOpen("dd", "d", O_RDONLY | O_DIRECTORY), wantOk());
  s.step(opRead("dd", 10), wantErr(EISDIR));
  s.step(opClose("dd"));
  s.step(opOpen("dw", "d", O_WRONLY), wantErr(EISDIR));
  s.step(opOpen("dw", "d", O_RDWR), wantErr(EISDIR));
  s.step(opOpen("dw", "d", O_CREAT | O_RDONLY), wantErr(EISDIR));
  s.step(opOpen("dw", "d", O_CREAT | O_EXCL | O_WRONLY), wantErr(EEXIST));
  // Symlinks and O_NOFOLLOW.
  s.step(opSymlink("f", "lf"), wantOk());
  s.step(opOpen("nf", "lf", O_RDONLY | O_NOFOLLOW), wantErr(ELOOP));
  s.step(opOpen("nf", "lf", O_WRONLY | O_CREAT | O_NOFOLLOW), wantErr(ELOOP));
  s.step(opOpen("nf", "lf", O_RDONLY), wantOk());
  s.step(opRead("nf", 100), wantOk("abcXYZpw!"));
  s.step(opClose("nf"));
  s.step(opSymlink("d", "ld"), wantOk());
  s.step(opOpen("nd", "ld", O_RDONLY | O_DIRECTORY | O_NOFOLLOW), wantErr(ENOTDIR));
  s.step(opOpen("nd", "ld", O_RDONLY | O_DIRECTORY), wantOk());
  s.step(opClose("nd"));
  // Creating through a dangling symlink creates its target.
  s.step(opSymlink("newtarget", "dangling"), wantOk());
  s.step(opOpen("dl", "dangling", O_CREAT | O_EXCL | O_WRONLY), wantErr(EEXIST));
  s.step(opOpen("dl", "dangling", O_CREAT | O_WRONLY, 0640), wantOk());
  s.step(opClose("dl"));
  s.step(opStat("newtarget"), wantOk("file 0640 size=0 nlink=1"));
  // Missing and non-directory parents.
  s.step(opOpen("m", "missing/x", O_RDONLY), wantErr(ENOENT));
  s.step(opOpen("m", "missing/x", O_CREAT | O_WRONLY), wantErr(ENOENT));
  s.step(opOpen("m", "f/x", O_CREAT | O_WRONLY), wantErr(ENOTDIR));
  s.step(opOpen("m", "f/x", O_RDONLY), wantErr(ENOTDIR));
  s.step(opMkdir("f/x"), wantErr(ENOTDIR));
  s.step(opStat("f/x"), wantErr(ENOTDIR));
  s.step(opOpen("m", "f/", O_RDONLY), wantErr(ENOTDIR));
  s.step(opOpen("m", "f/", O_CREAT | O_WRONLY), wantErr(EISDIR));
  s.step(opOpen("m", "newfile/", O_CREAT | O_WRONLY), wantErr(EISDIR));
  // Names: the longest allowed and one byte more.
  s.step(opOpen("long", std::string(255, 'n'), O_CREAT | O_WRONLY), wantOk());
  s.step(opClose("long"));
  s.step(opOpen("long", std::string(256, 'n'), O_CREAT | O_WRONLY), wantErr(ENAMETOOLONG));
  s.step(opStat(std::string(256, 'n')), wantErr(ENAMETOOLONG));
  s.step(opMkdir(std::string(256, 'd')), wantErr(ENAMETOOLONG));
  // O_TRUNC with O_RDONLY truncates on Linux (POSIX leaves it unspecified).
  s.step(opWriteFile("rt", "content"));
  s.step(opOpen("rt", "rt", O_RDONLY | O_TRUNC));
  s.step(opClose("rt"));
  s.step(opStat("rt"));
  // Created with mode 0: the owner (root or not) may still write through
  // the descriptor that created it.
  s.step(opOpen("z", "zero-mode", O_CREAT | O_RDWR, 0), wantOk());
  s.step(opWrite("z", "still writable"), wantOk());
  s.step(opClose("z"));
  s.step(opStat("zero-mode"), wantOk("file 0000 size=14 nlink=1"));
}

// ---------------------------------------------------------------------------
// Scenario: write and read

void writeRead(Scenario& s, const Options&) {
  s.step(opOpen("f", "f", O_CREAT | O_RDWR), wantOk());
  s.step(opPwrite("f", "end", 100000), wantOk());
  s.step(opFstat("f"), wantOk("file 0644 size=100003 nlink=1"));
  s.step(opPread("f", 64, 0), wantOk(std::string(64, '\0')));
  s.step(opPread("f", 16, 99995), wantOk(std::string(5, '\0') + "end"));
  s.step(opReadFile("f"));
  s.step(opPwrite("f", "hello", 10));
  s.step(opPwrite("f", "ELL", 11));
  s.step(opPread("f", 9, 8), wantOk(std::string(2, '\0') + "hELLo" + std::string(2, '\0')));
  s.step(opPread("f", 10, 200000), wantOk(""));
  s.step(opLseek("f", 0, SEEK_END), wantOk());
  s.step(opWrite("f", "tail"));
  s.step(opLseek("f", -1, SEEK_SET), wantErr(EINVAL));
  s.step(opLseek("f", -4, SEEK_CUR));
  s.step(opRead("f", 100), wantOk("tail"));
  s.step(opFstat("f"), wantOk("file 0644 size=100007 nlink=1"));
  // A second and a third descriptor on the same path see the writes at once.
  s.step(opOpen("g", "f", O_RDONLY), wantOk());
  s.step(opRead("g", 16));
  s.step(opPwrite("f", "fresh", 0));
  s.step(opPread("g", 5, 0), wantOk("fresh"));
  s.step(opOpen("h", "f", O_WRONLY), wantOk());
  s.step(opPwrite("h", "third", 20));
  s.step(opClose("h"));
  s.step(opPread("g", 5, 20), wantOk("third"));
  s.step(opPwrite("f", pattern(10000, 3), 4000));  // across page boundaries
  s.step(opPread("g", 10050, 3990));
  s.step(opFsync("f"), wantOk());
  s.step(opFsync("f", true), wantOk());
  // Grow and shrink; bytes cut off must not come back when the file regrows.
  s.step(opTruncate("f", 200000), wantOk());
  s.step(opFstat("g"), wantOk("file 0644 size=200000 nlink=1"));
  s.step(opPread("g", 8, 199992), wantOk(std::string(8, '\0')));
  s.step(opPwrite("f", "XXXX", 30));
  s.step(opTruncate("f", 25), wantOk());
  s.step(opFstat("f"), wantOk("file 0644 size=25 nlink=1"));
  s.step(opTruncate("f", 40), wantOk());
  s.step(opPread("g", 40, 0));
  s.step(opFtruncate("f", 5), wantOk());
  s.step(opReadFile("f"), wantOk("fresh"));
  s.step(opFtruncate("f", 12000), wantOk());
  s.step(opReadFile("f"));
  s.step(opFtruncate("g", 10), wantErr(EINVAL));
  s.step(opTruncate("f", -1), wantErr(EINVAL));
  s.step(opMkdir("d"));
  s.step(opTruncate("d", 0), wantErr(EISDIR));
  s.step(opTruncate("missing", 0), wantErr(ENOENT));
  s.step(opClose("g"));
  s.step(opClose("f"));
  // One big write, read back whole.
  s.step(opWriteFile("big", pattern(1 << 20, 11)), wantOk());
  s.step(opReadFile("big"));
  s.step(opStat("big"), wantOk("file 0644 size=1048576 nlink=1"));
  // fallocate: mode 0 extends, KEEP_SIZE does not.
  s.step(opOpen("fa", "fa", O_CREAT | O_RDWR), wantOk());
  s.step(opWrite("fa", "0123456789"));
  s.step(opFallocate("fa", 0, 0, 65536), wantOk());
  s.step(opFstat("fa"), wantOk("file 0644 size=65536 nlink=1"));
  s.step(opPread("fa", 16, 0), wantOk("0123456789" + std::string(6, '\0')));
  s.step(opFallocate("fa", FALLOC_FL_KEEP_SIZE, 0, 1 << 20), wantOk());
  s.step(opFstat("fa"), wantOk("file 0644 size=65536 nlink=1"));
  s.step(opFallocate("fa", 0, 70000, 100), wantOk());
  s.step(opFstat("fa"), wantOk("file 0644 size=70100 nlink=1"));
  s.step(opFallocate("fa", FALLOC_FL_KEEP_SIZE, 80000, 100), wantOk());
  s.step(opFstat("fa"), wantOk("file 0644 size=70100 nlink=1"));
  s.step(opPwrite("fa", "after", 70100));
  s.step(opFallocate("fa", 0, -1, 10), wantErr(EINVAL));
  s.step(opFallocate("fa", 0, 0, 0), wantErr(EINVAL));
  s.step(opOpen("far", "fa", O_RDONLY), wantOk());
  s.step(opFallocate("far", 0, 0, 10), wantErr(EBADF));
  s.step(opClose("far"));
  s.step(opClose("fa"));
  s.step(opReadFile("fa"));
}

// ---------------------------------------------------------------------------
// Scenario: mmap

Op opMmap(const std::string& name, const std::string& fdName, size_t len, int prot, int flags) {
  return custom(fmt("%s = mmap(%s, %zu, %s, %s)", name.c_str(), fdName.c_str(), len,
                    prot == PROT_READ ? "PROT_READ" : "PROT_READ|PROT_WRITE",
                    flags == MAP_SHARED ? "MAP_SHARED" : "MAP_PRIVATE"),
                [=](Side& s) {
                  void* addr = ::mmap(nullptr, len, prot, flags, s.fd(fdName), 0);
                  if (addr == MAP_FAILED) return failure(errno);
                  s.maps[name] = Side::Mapping{addr, len};
                  return success();
                });
}

// memcpy into a mapping; EFAULT when the mapping is missing or too short.
Op opPoke(const std::string& name, size_t off, const std::string& data) {
  return custom(fmt("memcpy(%s + %zu, %s)", name.c_str(), off, quoted(data).c_str()), [=](Side& s) {
    auto it = s.maps.find(name);
    if (it == s.maps.end() || off + data.size() > it->second.len) return failure(EFAULT);
    std::memcpy(static_cast<char*>(it->second.addr) + off, data.data(), data.size());
    return success();
  });
}

Op opPeek(const std::string& name, size_t off, size_t len) {
  return custom(fmt("bytes %s[%zu..%zu)", name.c_str(), off, off + len), [=](Side& s) {
    auto it = s.maps.find(name);
    if (it == s.maps.end() || off + len > it->second.len) return failure(EFAULT);
    return success(std::string(static_cast<const char*>(it->second.addr) + off, len));
  });
}

Op opMsync(const std::string& name) {
  return custom(fmt("msync(%s, MS_SYNC)", name.c_str()), [=](Side& s) {
    auto it = s.maps.find(name);
    if (it == s.maps.end()) return failure(EFAULT);
    return fromRc(::msync(it->second.addr, it->second.len, MS_SYNC));
  });
}

Op opMunmap(const std::string& name) {
  return custom(fmt("munmap(%s)", name.c_str()), [=](Side& s) {
    auto it = s.maps.find(name);
    if (it == s.maps.end()) return failure(EFAULT);
    int rc = ::munmap(it->second.addr, it->second.len);
    s.maps.erase(it);
    return fromRc(rc);
  });
}

void mmapScenario(Scenario& s, const Options&) {
  const size_t len = 3 * 4096 + 100;
  s.step(opOpen("m", "m", O_CREAT | O_RDWR), wantOk());
  s.step(opFtruncate("m", static_cast<off_t>(len)), wantOk());
  s.step(opMmap("m1", "m", len, PROT_READ | PROT_WRITE, MAP_SHARED), wantOk());
  s.step(opPoke("m1", 0, "head"), wantOk());
  s.step(opPoke("m1", 4090, "span-pages"), wantOk());
  s.step(opPoke("m1", len - 4, "tail"), wantOk());
  s.step(opMsync("m1"), wantOk());
  s.step(opOpen("r", "m", O_RDONLY), wantOk());
  s.step(opPread("r", 8, 0), wantOk(std::string("head") + std::string(4, '\0')));
  s.step(opPread("r", 14, 4088),
         wantOk(std::string(2, '\0') + "span-pages" + std::string(2, '\0')));
  s.step(opPread("r", 4, static_cast<off_t>(len - 4)), wantOk("tail"));
  s.step(opReadFile("m"));
  s.step(opMmap("m2", "r", len, PROT_READ, MAP_SHARED), wantOk());
  s.step(opPeek("m2", 4090, 10), wantOk("span-pages"));
  s.step(opPeek("m2", len - 4, 4), wantOk("tail"));
  // write() shows through both mappings; a store through one mapping shows
  // through read() and the other mapping without msync.
  s.step(opPwrite("m", "WRITE", 100), wantOk());
  s.step(opPeek("m1", 100, 5), wantOk("WRITE"));
  s.step(opPeek("m2", 100, 5), wantOk("WRITE"));
  s.step(opPoke("m1", 200, "again"), wantOk());
  s.step(opPread("r", 5, 200), wantOk("again"));
  s.step(opPeek("m2", 200, 5), wantOk("again"));
  // A private mapping's stores stay private.
  s.step(opMmap("p", "m", len, PROT_READ | PROT_WRITE, MAP_PRIVATE), wantOk());
  s.step(opPoke("p", 0, "private"), wantOk());
  s.step(opPeek("p", 0, 7), wantOk("private"));
  s.step(opPread("r", 7, 0), wantOk(std::string("head") + std::string(3, '\0')));
  s.step(opMunmap("p"), wantOk());
  // A writable shared mapping needs a descriptor open for writing.
  s.step(opMmap("bad", "r", len, PROT_READ | PROT_WRITE, MAP_SHARED), wantErr(EACCES));
  s.step(opMmap("bad", "m", 0, PROT_READ, MAP_SHARED), wantErr(EINVAL));
  s.step(opMsync("m1"), wantOk());
  s.step(opMunmap("m1"), wantOk());
  s.step(opMunmap("m2"), wantOk());
  // Grow, map again, store into the new part.
  s.step(opFtruncate("m", 5 * 4096), wantOk());
  s.step(opMmap("m3", "m", 5 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED), wantOk());
  s.step(opPoke("m3", 4 * 4096 + 1, "grown"), wantOk());
  s.step(opMsync("m3"), wantOk());
  s.step(opMunmap("m3"), wantOk());
  s.step(opClose("r"));
  s.step(opClose("m"));
  s.step(opReadFile("m"));
  s.step(opStat("m"), wantOk("file 0644 size=20480 nlink=1"));
}

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
// Scenario: O_CREAT|O_EXCL (and mkdir, RENAME_NOREPLACE) races

std::string tally(const std::vector<int>& errs) {
  std::map<int, int> count;
  for (int e : errs) ++count[e];
  std::string s;
  for (auto [e, n] : count) s += fmt("%s%s=%d", s.empty() ? "" : " ", errnoName(e).c_str(), n);
  return s;
}

// `threads` threads run `call` (returning 0 or an errno) at the same moment.
Outcome raceThreads(int threads, const std::function<int(int)>& call) {
  std::barrier<> start(threads);
  std::vector<int> errs(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i)
    pool.emplace_back([&, i] {
      start.arrive_and_wait();
      errs[static_cast<size_t>(i)] = call(i);
    });
  for (auto& t : pool) t.join();
  return success(tally(errs));
}

int excl(const std::string& path) {
  int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

// `procs` processes, released together through a pipe, O_CREAT|O_EXCL one path.
Outcome raceProcesses(int procs, const std::string& path) {
  int gate[2];
  if (::pipe(gate) != 0) return failure(errno);
  std::fflush(nullptr);
  std::vector<pid_t> kids;
  for (int i = 0; i < procs; ++i) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(gate[1]);
      char c;
      [[maybe_unused]] ssize_t n = ::read(gate[0], &c, 1);  // returns at EOF
      int e = excl(path);
      _exit(e == 0 ? 0 : e == EEXIST ? 1 : 2);
    }
    if (pid > 0) kids.push_back(pid);
  }
  ::close(gate[0]);
  sleepMs(50);
  ::close(gate[1]);
  std::vector<int> errs;
  for (pid_t pid : kids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 3;
    errs.push_back(code == 0 ? 0 : code == 1 ? EEXIST : EIO);
  }
  return success(tally(errs));
}

void exclRace(Scenario& s, const Options&) {
  const int kThreads = 8;
  const std::string oneWinner = fmt("ok=1 EEXIST=%d", kThreads - 1);
  for (int round = 0; round < 20; ++round) {
    std::string name = fmt("t%02d", round);
    s.step(custom(fmt("%d threads open(%s, O_CREAT|O_EXCL)", kThreads, name.c_str()),
                  [=](Side& x) {
                    std::string path = x.p(name);
                    return raceThreads(kThreads, [&](int) { return excl(path); });
                  }),
           wantOk(oneWinner));
  }
  for (int round = 0; round < 5; ++round) {
    std::string name = fmt("p%02d", round);
    s.step(custom(fmt("%d processes open(%s, O_CREAT|O_EXCL)", kThreads, name.c_str()),
                  [=](Side& x) { return raceProcesses(kThreads, x.p(name)); }),
           wantOk(oneWinner));
  }
  for (int round = 0; round < 5; ++round) {
    std::string name = fmt("m%02d", round);
    s.step(custom(fmt("%d threads mkdir(%s)", kThreads, name.c_str()),
                  [=](Side& x) {
                    std::string path = x.p(name);
                    return raceThreads(kThreads, [&](int) {
                      return ::mkdir(path.c_str(), 0755) == 0 ? 0 : errno;
                    });
                  }),
           wantOk(oneWinner));
  }
  // Each thread moves its own file onto one name with RENAME_NOREPLACE.
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < kThreads; ++i)
      s.step(opWriteFile(fmt("r%02d-src%d", round, i), fmt("from %d", i)));
    std::string target = fmt("r%02d", round);
    s.step(custom(fmt("%d threads renameat2(r%02d-srcN, %s, RENAME_NOREPLACE)", kThreads, round,
                      target.c_str()),
                  [=](Side& x) {
                    return raceThreads(kThreads, [&](int i) {
                      std::string from = x.p(fmt("r%02d-src%d", round, i));
                      return ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, x.p(target).c_str(),
                                         RENAME_NOREPLACE) == 0
                                 ? 0
                                 : errno;
                    });
                  }),
           wantOk(oneWinner));
    // Which one won differs by nature: keep the trees comparable.
    s.step(opUnlink(target));
    for (int i = 0; i < kThreads; ++i) {
      std::string src = fmt("r%02d-src%d", round, i);
      s.step(custom("unlink(" + quoted(src) + ") if present", [=](Side& x) {
        return ::unlink(x.p(src).c_str()) == 0 || errno == ENOENT ? success() : failure(errno);
      }));
    }
  }
  s.step(opList(""));
}

// ---------------------------------------------------------------------------
// Scenario: modes, owners, umask

Op withUmask(mode_t mask, Op op) {
  return custom(fmt("umask 0%03o; ", mask) + op.call, [=](Side& s) {
    mode_t old = ::umask(mask);
    Outcome o = op.run(s);
    ::umask(old);
    return o;
  });
}

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

const struct timespec kOld = {1200000000, 123456789};

// Sets `rel`'s times to kOld, waits long enough for a new ctime to be
// distinguishable, runs `action` and reports which of mtime and ctime moved
// (and that a moved mtime is the current time).
Op timesAfter(const std::string& what, const std::string& rel, std::function<int(Side&)> action) {
  return custom(what + ": " + quoted(rel) + " mtime/ctime", [=](Side& s) {
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
  // A symlink's own times.
  s.step(opUtimens("d/sl", {1000000000, 7}, {1000000001, 8}, AT_SYMLINK_NOFOLLOW), wantOk());
  s.step(opTimes("d/sl"), wantOk("atime=1000000000.000000007 mtime=1000000001.000000008"));
}

// ---------------------------------------------------------------------------
// Scenario: FIFOs, device nodes, sockets

Op opUnixSocket(const std::string& rel) {
  return custom(fmt("bind+connect unix socket %s", quoted(rel).c_str()), [=](Side& s) {
    // Relative to the scenario directory: sun_path is short.
    int cwd = ::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cwd < 0 || ::chdir(s.dir.c_str()) != 0) return failure(errno);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", rel.c_str());
    auto sa = reinterpret_cast<const struct sockaddr*>(&addr);
    int srv = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int cli = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    Outcome o;
    if (::bind(srv, sa, sizeof addr) != 0 || ::listen(srv, 1) != 0 ||
        ::connect(cli, sa, sizeof addr) != 0) {
      o = failure(errno);
    } else {
      int conn = ::accept4(srv, nullptr, nullptr, SOCK_CLOEXEC);
      char buf[8] = {};
      bool sent = ::send(cli, "hi", 2, 0) == 2;
      ssize_t got = conn >= 0 ? ::recv(conn, buf, sizeof buf, 0) : -1;
      o = sent && got == 2 ? success(std::string(buf, 2)) : failure(errno);
      if (conn >= 0) ::close(conn);
    }
    ::close(cli);
    ::close(srv);
    if (::fchdir(cwd) != 0) o = failure(errno);
    ::close(cwd);
    return o;
  });
}

void specialFiles(Scenario& s, const Options&) {
  s.step(opMknod("fifo", S_IFIFO | 0640, 0), wantOk());
  s.step(opLstat("fifo"), wantOk("fifo 0640 size=0 nlink=1"));
  s.step(custom("mkfifo(\"fifo2\", 0600)",
                [](Side& x) { return fromRc(::mkfifo(x.p("fifo2").c_str(), 0600)); }),
         wantOk());
  s.step(opLstat("fifo2"), wantOk("fifo 0600 size=0 nlink=1"));
  s.step(opMknod("fifo", S_IFIFO | 0640, 0), wantErr(EEXIST));
  s.step(opOpen("ff", "fifo", O_RDWR | O_NONBLOCK), wantOk());
  s.step(opWrite("ff", "ping"), wantOk());
  s.step(opRead("ff", 16), wantOk("ping"));
  s.step(opRead("ff", 16), wantErr(EAGAIN));
  s.step(opClose("ff"));
  s.step(opRename("fifo2", "fifo3"), wantOk());
  s.step(opUnlink("fifo3"), wantOk());
  s.step(opMknod("reg", S_IFREG | 0600, 0), wantOk());
  s.step(opLstat("reg"), wantOk("file 0600 size=0 nlink=1"));
  s.step(opUnixSocket("sock"), wantOk("hi"));
  s.step(opLstat("sock"));
  s.step(opUnlink("sock"), wantOk());
  const std::pair<const char*, mode_t> kDevices[] = {{"chr", S_IFCHR | 0600},
                                                     {"blk", S_IFBLK | 0600}};
  for (auto [name, mode] : kDevices) {
    Op make = opMknod(name, mode, makedev(1, 3));
    if (s.stepAllowing(make, {EPERM}, "device nodes may be refused by the mount") ==
        StepResult::kAllowed) {
      s.onlyB(opUnlink(name));
      continue;
    }
    s.step(opLstat(name));
    s.step(opRename(name, std::string(name) + "2"));
    s.step(opLstat(std::string(name) + "2"));
  }
}

// ---------------------------------------------------------------------------
// Scenario: hard links

void hardlinks(Scenario& s, const Options&) {
  s.step(opWriteFile("orig", "shared"));
  if (s.stepAllowing(opLink("orig", "hl"), {EPERM}, "hard links may be refused by the mount",
                     wantOk()) == StepResult::kAllowed) {
    s.onlyB(opUnlink("hl"));
    s.step(opStat("orig"), wantOk("file 0644 size=6 nlink=1"));
    return;
  }
  s.step(opStat("orig"), wantOk("file 0644 size=6 nlink=2"));
  s.step(opStat("hl"), wantOk("file 0644 size=6 nlink=2"));
  s.step(opWriteFile("hl", "+more", O_WRONLY | O_APPEND), wantOk());
  s.step(opReadFile("orig"), wantOk("shared+more"));
  s.step(opLink("orig", "hl"), wantErr(EEXIST));
  s.step(opLink("missing", "z"), wantErr(ENOENT));
  s.step(opMkdir("d"));
  s.step(opLink("d", "dlink"), wantErr(EPERM));
  s.step(opLink("orig", "d/hl2"), wantOk());
  s.step(opStat("hl"), wantOk("file 0644 size=11 nlink=3"));
  s.step(opRename("orig", "d/orig-moved"), wantOk());
  s.step(opStat("hl"), wantOk("file 0644 size=11 nlink=3"));
  // Renaming one link onto another link of the same file does nothing.
  s.step(opRename("hl", "d/hl2"), wantOk());
  s.step(opStat("hl"), wantOk("file 0644 size=11 nlink=3"));
  s.step(opStat("d/hl2"), wantOk("file 0644 size=11 nlink=3"));
  s.step(opChmod("hl", 0600), wantOk());
  s.step(opStat("d/orig-moved"), wantOk("file 0600 size=11 nlink=3"));
  s.step(opUnlink("d/orig-moved"), wantOk());
  s.step(opStat("hl"), wantOk("file 0600 size=11 nlink=2"));
  s.step(opOpen("h", "hl", O_RDWR), wantOk());
  s.step(opUnlink("hl"), wantOk());
  s.step(opUnlink("d/hl2"), wantOk());
  s.step(opFstat("h"), wantOk("file 0600 size=11 nlink=0"));
  s.step(opPread("h", 20, 0), wantOk("shared+more"));
  s.step(opClose("h"));
  // link() does not follow a symlink: the new name is the symlink itself.
  s.step(opWriteFile("t", "t"));
  s.step(opSymlink("t", "sl"));
  s.step(opLink("sl", "sl-hard"), wantOk());
  s.step(opLstat("sl-hard"), wantOk("symlink 0777 size=1 nlink=2"));
  s.step(opStat("t"), wantOk("file 0644 size=1 nlink=1"));
  // A link made through an open descriptor (linkat AT_EMPTY_PATH needs
  // CAP_DAC_READ_SEARCH; /proc/self/fd works for everyone).
  s.step(opOpen("keep", "t", O_RDONLY), wantOk());
  s.step(custom("linkat(/proc/self/fd/keep, \"t2\", AT_SYMLINK_FOLLOW)",
                [](Side& x) {
                  std::string proc = fmt("/proc/self/fd/%d", x.fd("keep"));
                  return fromRc(::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, x.p("t2").c_str(),
                                         AT_SYMLINK_FOLLOW));
                }),
         wantOk());
  s.step(opClose("keep"));
  s.step(opStat("t2"), wantOk("file 0644 size=1 nlink=2"));
}

// ---------------------------------------------------------------------------
// Scenario: extended attributes

Op opSetxattr(const std::string& rel, const std::string& name, const std::string& value,
              int flags = 0, bool follow = true) {
  const char* f = flags == XATTR_CREATE    ? ", XATTR_CREATE"
                  : flags == XATTR_REPLACE ? ", XATTR_REPLACE"
                                           : "";
  return custom(
      fmt("%ssetxattr(%s, %s, %s%s)", follow ? "" : "l", quoted(rel).c_str(), name.c_str(),
          quoted(value).c_str(), f),
      [=](Side& s) {
        std::string p = s.p(rel);
        return fromRc(
            follow ? ::setxattr(p.c_str(), name.c_str(), value.data(), value.size(), flags)
                   : ::lsetxattr(p.c_str(), name.c_str(), value.data(), value.size(), flags));
      });
}

Op opGetxattr(const std::string& rel, const std::string& name, size_t size = 4096) {
  return custom(
      fmt("getxattr(%s, %s, %zu)", quoted(rel).c_str(), name.c_str(), size), [=](Side& s) {
        std::string buf(size, '\0');
        return bytesOutcome(
            ::getxattr(s.p(rel).c_str(), name.c_str(), size ? buf.data() : nullptr, size), buf);
      });
}

Op opRemovexattr(const std::string& rel, const std::string& name) {
  return custom(fmt("removexattr(%s, %s)", quoted(rel).c_str(), name.c_str()),
                [=](Side& s) { return fromRc(::removexattr(s.p(rel).c_str(), name.c_str())); });
}

// The user.* names only, sorted: other namespaces (security.*) are the
// business of the kernel's security modules.
Op opListxattr(const std::string& rel) {
  return custom(fmt("listxattr(%s) user.*", quoted(rel).c_str()), [=](Side& s) {
    char buf[65536];
    ssize_t n = ::listxattr(s.p(rel).c_str(), buf, sizeof buf);
    if (n < 0) return failure(errno);
    std::vector<std::string> names;
    for (ssize_t i = 0; i < n;) {
      std::string name(buf + i);
      i += static_cast<ssize_t>(name.size()) + 1;
      if (name.rfind("user.", 0) == 0) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    std::string info;
    for (const auto& name : names) info += (info.empty() ? "" : " ") + name;
    return success(info);
  });
}

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
  };
  StepResult first = s.stepAllowing(opSetxattr("x", "user.x", "v1"), {EOPNOTSUPP},
                                    "user.* xattrs may be unsupported by the mount");
  if (first == StepResult::kSame && s.lastB().rc == -1) {
    s.note("DIR_B has no user.* xattrs (" + errnoName(s.lastB().err) +
           "): xattr checks skipped; put DIR_B on ext4/xfs/btrfs");
    return;
  }
  if (first == StepResult::kAllowed) {
    // Then every xattr call on A must say so.
    for (auto& item : items) {
      if (item.kind == 0) {
        s.step(item.op, item.want);
      } else {
        s.checkA(
            item.op,
            [&](const Outcome& o) {
              return (o.rc == -1 && o.err == EOPNOTSUPP) ||
                     (item.kind == 2 && o.rc == 0 && o.info.empty());
            },
            "without user xattrs every xattr call must give EOPNOTSUPP");
      }
    }
    return;
  }
  for (auto& item : items) s.step(item.op, item.want);
}

// ---------------------------------------------------------------------------
// Scenario: flock and fcntl locks

Op opFlock(const std::string& name, int op) {
  std::string o = (op & ~LOCK_NB) == LOCK_EX   ? "LOCK_EX"
                  : (op & ~LOCK_NB) == LOCK_SH ? "LOCK_SH"
                                               : "LOCK_UN";
  if (op & LOCK_NB) o += "|LOCK_NB";
  return custom(fmt("flock(%s, %s)", name.c_str(), o.c_str()),
                [=](Side& s) { return fromRc(::flock(s.fd(name), op)); });
}

struct flock lockSpec(short type, off_t start, off_t len) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  return fl;
}

const char* lockName(int type) {
  return type == F_WRLCK ? "F_WRLCK" : type == F_RDLCK ? "F_RDLCK" : "F_UNLCK";
}

const char* cmdName(int cmd) {
  return cmd == F_SETLK       ? "F_SETLK"
         : cmd == F_SETLKW    ? "F_SETLKW"
         : cmd == F_GETLK     ? "F_GETLK"
         : cmd == F_OFD_SETLK ? "F_OFD_SETLK"
         : cmd == F_OFD_GETLK ? "F_OFD_GETLK"
                              : "?";
}

// F_GETLK results with the holder's pid as a relation to `holder`.
std::string lockInfo(const struct flock& fl, pid_t holder) {
  if (fl.l_type == F_UNLCK) return "unlocked";
  std::string who = fl.l_pid == holder ? "holder" : fl.l_pid == -1 ? "-1 (OFD)" : "another pid";
  return fmt("%s start=%lld len=%lld pid=%s", lockName(fl.l_type),
             static_cast<long long>(fl.l_start), static_cast<long long>(fl.l_len), who.c_str());
}

Outcome fcntlLock(int fd, int cmd, short type, off_t start, off_t len, pid_t holder) {
  struct flock fl = lockSpec(type, start, len);
  if (::fcntl(fd, cmd, &fl) != 0) return failure(errno);
  return cmd == F_GETLK || cmd == F_OFD_GETLK ? success(lockInfo(fl, holder)) : success();
}

Op opLock(const std::string& name, int cmd, short type, off_t start, off_t len) {
  return custom(fmt("fcntl(%s, %s, %s %lld+%lld)", name.c_str(), cmdName(cmd), lockName(type),
                    static_cast<long long>(start), static_cast<long long>(len)),
                [=](Side& s) { return fcntlLock(s.fd(name), cmd, type, start, len, ::getpid()); });
}

// The same request from a child process, on its own descriptor.
Op opChildLock(const std::string& rel, int cmd, short type, off_t start, off_t len) {
  return custom(
      fmt("child: fcntl(own fd on %s, %s, %s %lld+%lld)", quoted(rel).c_str(), cmdName(cmd),
          lockName(type), static_cast<long long>(start), static_cast<long long>(len)),
      [=](Side& s) {
        pid_t parent = ::getpid();
        std::string path = s.p(rel);
        return inChild([=] {
          int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
          if (fd < 0) return failure(errno);
          return fcntlLock(fd, cmd, type, start, len, parent);
        });
      });
}

void locks(Scenario& s, const Options&) {
  s.step(opWriteFile("lk", pattern(100, 0)));
  s.step(opOpen("l1", "lk", O_RDWR), wantOk());
  s.step(opOpen("l2", "lk", O_RDWR), wantOk());
  // flock: per open file description.
  s.step(opFlock("l1", LOCK_EX | LOCK_NB), wantOk());
  s.step(opFlock("l2", LOCK_EX | LOCK_NB), wantErr(EWOULDBLOCK));
  s.step(opFlock("l2", LOCK_SH | LOCK_NB), wantErr(EWOULDBLOCK));
  s.step(custom("child: flock(own fd, LOCK_EX|LOCK_NB)",
                [](Side& x) {
                  std::string path = x.p("lk");
                  return inChild([=] {
                    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
                    return fromRc(::flock(fd, LOCK_EX | LOCK_NB));
                  });
                }),
         wantErr(EWOULDBLOCK));
  s.step(opFlock("l1", LOCK_UN), wantOk());
  s.step(opFlock("l2", LOCK_SH | LOCK_NB), wantOk());
  s.step(opFlock("l1", LOCK_SH | LOCK_NB), wantOk());
  s.step(opFlock("l1", LOCK_EX | LOCK_NB), wantErr(EWOULDBLOCK));
  s.step(opFlock("l2", LOCK_UN), wantOk());
  s.step(opFlock("l1", LOCK_EX | LOCK_NB), wantOk());
  s.step(opFlock("l1", LOCK_UN), wantOk());
  // POSIX record locks: per process.
  s.step(opLock("l1", F_SETLK, F_WRLCK, 0, 10), wantOk());
  s.step(opChildLock("lk", F_SETLK, F_WRLCK, 5, 10), wantErr(EAGAIN));
  s.step(opChildLock("lk", F_SETLK, F_RDLCK, 0, 5), wantErr(EAGAIN));
  s.step(opChildLock("lk", F_GETLK, F_WRLCK, 5, 10), wantOk("F_WRLCK start=0 len=10 pid=holder"));
  s.step(opChildLock("lk", F_SETLK, F_WRLCK, 10, 10), wantOk());
  s.step(opLock("l2", F_SETLK, F_WRLCK, 5, 10), wantOk());  // same process: no conflict
  s.step(opChildLock("lk", F_GETLK, F_RDLCK, 12, 1), wantOk("F_WRLCK start=0 len=15 pid=holder"));
  s.step(opClose("l2"));  // closing any descriptor drops all the process's locks
  s.step(opChildLock("lk", F_SETLK, F_WRLCK, 0, 10), wantOk());
  s.step(opLock("l1", F_SETLK, F_RDLCK, 0, 0), wantOk());
  s.step(opChildLock("lk", F_SETLK, F_RDLCK, 0, 0), wantOk());
  s.step(opChildLock("lk", F_SETLK, F_WRLCK, 50, 1), wantErr(EAGAIN));
  s.step(opLock("l1", F_SETLK, F_UNLCK, 0, 0), wantOk());
  s.step(opChildLock("lk", F_GETLK, F_WRLCK, 0, 0), wantOk("unlocked"));
  // F_SETLKW waits until the holder lets go.
  s.step(opLock("l1", F_SETLK, F_WRLCK, 0, 1), wantOk());
  s.step(custom("child: F_SETLKW waits while parent holds the lock 150 ms",
                [](Side& x) {
                  std::string path = x.p("lk");
                  int held = x.fd("l1");
                  return inChild(
                      [=] {
                        int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
                        struct flock fl = lockSpec(F_WRLCK, 0, 1);
                        auto t0 = std::chrono::steady_clock::now();
                        if (::fcntl(fd, F_SETLKW, &fl) != 0) return failure(errno);
                        auto waited = std::chrono::steady_clock::now() - t0;
                        return success(waited >= std::chrono::milliseconds(75) ? "waited"
                                                                               : "did not wait");
                      },
                      [=] {
                        sleepMs(150);
                        struct flock fl = lockSpec(F_UNLCK, 0, 1);
                        ::fcntl(held, F_SETLK, &fl);
                      });
                }),
         wantOk("waited"));
  // Open file description locks: per descriptor, even within one process.
  s.step(opOpen("l3", "lk", O_RDWR), wantOk());
  s.step(opLock("l1", F_OFD_SETLK, F_WRLCK, 0, 0), wantOk());
  s.step(opLock("l3", F_OFD_SETLK, F_WRLCK, 0, 0), wantErr(EAGAIN));
  s.step(opLock("l3", F_OFD_GETLK, F_RDLCK, 0, 0), wantOk("F_WRLCK start=0 len=0 pid=-1 (OFD)"));
  s.step(opClose("l1"));
  s.step(opLock("l3", F_OFD_SETLK, F_WRLCK, 0, 0), wantOk());
  s.step(opClose("l3"));
}

// ---------------------------------------------------------------------------
// Scenario: directories

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

// ---------------------------------------------------------------------------
// Scenario: randomized

// splitmix64: the same sequence on every platform.
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }
};

// A small namespace, so collisions and errors are frequent. It lives two
// levels down (kRandomRoot) so that no symlink target, "../../a" included,
// reaches outside the scenario's directory.
const std::string kRandomRoot = "w/ns/";
const std::vector<std::string> kRandomPaths = {
    "a", "b", "c", "d1", "d2", "d1/a", "d1/b", "d1/d3", "d1/d3/a", "d2/a", "d2/d1", "d1/d3/d4"};
const std::vector<std::string> kRandomTargets = {"a",    "b",       "../a",    "d1",
                                                 "d2/a", "nowhere", "../../a", "d3"};
const std::vector<mode_t> kRandomModes = {0600, 0644, 0640, 0755, 0700, 0711, 0666, 0604};

Op randomOp(Rng& r, int stepNo) {
  const std::string p = kRandomRoot + r.pick(kRandomPaths);
  const std::string q = kRandomRoot + r.pick(kRandomPaths);
  switch (r.below(16)) {
    case 0:
    case 1: {
      int flags =
          O_CREAT | O_WRONLY | (r.below(3) == 0 ? O_EXCL : 0) | (r.below(4) == 0 ? O_TRUNC : 0);
      return custom(fmt("open+close(%s, %s)", quoted(p).c_str(), flagsName(flags).c_str()),
                    [=](Side& s) {
                      int fd = ::open(s.p(p).c_str(), flags | O_CLOEXEC, 0644);
                      if (fd < 0) return failure(errno);
                      return fromRc0(::close(fd));
                    });
    }
    case 2:
    case 3:
    case 4: {
      off_t off = static_cast<off_t>(r.below(20000));
      size_t len = 1 + r.below(5000);
      bool append = r.below(5) == 0;
      return custom(fmt("open(%s)+%s %zu bytes%s", quoted(p).c_str(), append ? "append" : "pwrite",
                        len, append ? "" : fmt(" @%lld", static_cast<long long>(off)).c_str()),
                    [=](Side& s) {
                      int fd =
                          ::open(s.p(p).c_str(), O_WRONLY | O_CLOEXEC | (append ? O_APPEND : 0));
                      if (fd < 0) return failure(errno);
                      std::string data = pattern(len, static_cast<unsigned>(stepNo));
                      ssize_t n = append ? ::write(fd, data.data(), len)
                                         : ::pwrite(fd, data.data(), len, off);
                      Outcome o = fromRc(n);
                      ::close(fd);
                      return o;
                    });
    }
    case 5:
      return opTruncate(p, static_cast<off_t>(r.below(30000)));
    case 6:
    case 7: {
      size_t kind = r.below(8);
      if (kind == 0) return opRename2(p, q, RENAME_NOREPLACE);
      if (kind == 1) return opRename2(p, q, RENAME_EXCHANGE);
      return opRename(p, q);
    }
    case 8:
      return opUnlink(p);
    case 9:
      return opMkdir(p, r.below(4) == 0 ? 0700 : 0755);
    case 10:
      return opRmdir(p);
    case 11:
      return opSymlink(r.pick(kRandomTargets), p);
    case 12:
      return opChmod(p, r.pick(kRandomModes));
    case 13: {
      struct timespec t = {static_cast<time_t>(1000000000 + r.below(100000000)),
                           static_cast<long>(r.below(1000000000))};
      Op set = opUtimens(p, t, t);
      return custom(set.call + " + lstat times", [=](Side& s) {
        Outcome o = set.run(s);
        if (o.rc == -1) return o;
        struct stat st;
        if (::stat(s.p(p).c_str(), &st) != 0) return failure(errno);
        return success("mtime=" + timeText(st.st_mtim));
      });
    }
    case 14:
      return r.below(2) ? opReadFile(p) : opList(p);
    default:
      return opLstat(p);
  }
}

void randomized(Scenario& s, const Options& opt) {
  s.setContext(fmt("seed %llu", static_cast<unsigned long long>(opt.seed)));
  Rng r{opt.seed};
  s.step(opMkdir("w"), wantOk());
  s.step(opMkdir(kRandomRoot), wantOk());
  for (int i = 0; i < opt.steps; ++i) {
    s.step(randomOp(r, s.stepNo() + 1));
    if (s.failures() >= 10) {
      std::printf(
          "  random: stopping at step %d after %d mismatches (states have diverged); "
          "reproduce with --scenario random --seed %llu --steps %d\n",
          s.stepNo(), s.failures(), static_cast<unsigned long long>(opt.seed), i + 1);
      return;
    }
  }
  if (s.failures() > 0)
    std::printf("  random: reproduce with --scenario random --seed %llu --steps %d\n",
                static_cast<unsigned long long>(opt.seed), opt.steps);
}

// ---------------------------------------------------------------------------
// Driver

struct ScenarioDef {
  const char* name;
  void (*run)(Scenario&, const Options&);
  const char* summary;
};

const ScenarioDef kScenarios[] = {
    {"open-flags", openFlags,
     "O_CREAT/O_EXCL/O_TRUNC/O_APPEND/O_DIRECTORY/O_NOFOLLOW, EBADF, ENOTDIR"},
    {"write-read", writeRead, "holes, pread/pwrite, other fds, truncate grow/shrink, fallocate"},
    {"mmap", mmapScenario, "MAP_SHARED stores seen by read() and another mapping, msync"},
    {"rename", renameScenario, "rename corner cases, renameat2, trees across directories"},
    {"unlink-rmdir", unlinkRmdir, "ENOTEMPTY/EISDIR/ENOTDIR/EINVAL, open unlinked files"},
    {"symlinks", symlinks, "readlink, dangling, loops, traversal, lstat vs stat"},
    {"excl-race", exclRace, "threads and processes racing O_CREAT|O_EXCL, mkdir, NOREPLACE"},
    {"metadata", metadata, "chmod, umask, chown (other owners as root), set-group-ID dirs"},
    {"times", timesScenario, "utimensat exact/NOW/OMIT, what moves mtime and ctime"},
    {"special-files", specialFiles, "FIFOs, mknod, unix sockets, device nodes (may be EPERM)"},
    {"hardlinks", hardlinks, "link(), nlink, rename between links (may be EPERM)"},
    {"xattrs", xattrs, "user.* set/get/list/remove (may be EOPNOTSUPP throughout)"},
    {"locks", locks, "flock, fcntl F_SETLK/F_GETLK/F_SETLKW across processes, OFD locks"},
    {"directories", directories, "readdir after changes, seekdir/telldir, getdents while changing"},
    {"random", randomized, "seeded random operations on a small namespace (--seed, --steps)"},
};

const ScenarioDef* findScenario(const std::string& name) {
  for (const auto& def : kScenarios)
    if (name == def.name) return &def;
  return nullptr;
}

// Runs one scenario in rootA/<name> and rootB/<name>; returns its failures,
// or -1 when B could not be set up.
int runScenario(const ScenarioDef& def, const std::string& rootA, const std::string& rootB,
                const Options& opt, Totals& totals, const Perturbation& perturb = {}) {
  Side a, b;
  a.label = 'A';
  b.label = 'B';
  a.dir = rootA + "/" + def.name;
  b.dir = rootB + "/" + def.name;
  Scenario s(def.name, a, b, totals, perturb);
  if (int e = removeTree(b.dir); e != 0 || ::mkdir(b.dir.c_str(), 0755) != 0) {
    std::fprintf(stderr, "posix_parity: cannot make %s: %s\n", b.dir.c_str(),
                 std::strerror(e ? e : errno));
    return -1;
  }
  int ea = removeTree(a.dir);
  if (ea != 0 || ::mkdir(a.dir.c_str(), 0755) != 0) {
    Outcome o = failure(ea ? ea : errno);
    s.step(
        custom("setup: mkdir " + a.dir, [&](Side& x) { return x.label == 'A' ? o : success(); }));
    std::printf("%s%-14s SKIPPED: cannot make its directory in A\n", totals.tag.c_str(), def.name);
    return s.failures();
  }
  auto t0 = std::chrono::steady_clock::now();
  def.run(s, opt);
  a.release();
  b.release();
  s.compareTrees();
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  if (s.failures() == 0) {
    removeTree(a.dir);
    removeTree(b.dir);
    std::printf("%s%-14s ok (%d steps, %lld ms)\n", totals.tag.c_str(), def.name, s.stepNo(),
                static_cast<long long>(ms.count()));
  } else {
    std::printf("%s%-14s FAILED: %d mismatches (%d steps); trees kept in %s and %s\n",
                totals.tag.c_str(), def.name, s.failures(), s.stepNo(), a.dir.c_str(),
                b.dir.c_str());
  }
  std::fflush(stdout);
  return s.failures();
}

// Runs scenarios with B perturbed on purpose; each perturbation must be
// reported, and the unperturbed baseline must be clean.
int selfTest(const std::string& rootA, const std::string& rootB, const Options& opt) {
  struct Case {
    const char* what;
    const char* scenario;
    Perturbation perturb;
    bool mustFail;
  };
  auto writeInto = [](const std::string& path, const char* data) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      [[maybe_unused]] bool ok = writeAll(fd, data);
      ::close(fd);
    }
  };
  std::vector<Case> cases;
  cases.push_back({"baseline, unperturbed", "open-flags", {}, false});
  cases.push_back({"baseline, unperturbed", "random", {}, false});
  Perturbation extra;
  extra.beforeTreeCompare = [=](const std::string& dir) { writeInto(dir + "/stray", "x"); };
  cases.push_back({"an extra file in B", "open-flags", extra, true});
  Perturbation content;
  content.beforeTreeCompare = [=](const std::string& dir) { writeInto(dir + "/f2", "!"); };
  cases.push_back({"one byte more in a file of B", "rename", content, true});
  Perturbation mode;
  mode.beforeTreeCompare = [](const std::string& dir) { ::chmod((dir + "/m").c_str(), 0640); };
  cases.push_back({"a mode changed in B", "metadata", mode, true});
  Perturbation link;
  link.beforeTreeCompare = [](const std::string& dir) {
    ::unlink((dir + "/abs").c_str());
    ::symlink("/elsewhere", (dir + "/abs").c_str());
  };
  cases.push_back({"a symlink target changed in B", "symlinks", link, true});
  Perturbation result;
  result.corruptStep = 5;
  cases.push_back({"B's result of step 5 altered", "unlink-rmdir", result, true});
  Perturbation diverge;
  diverge.hookStep = 150;
  diverge.hookB = [](Side& b) {
    std::string d1 = b.p(kRandomRoot + "d1");
    if (::mkdir(d1.c_str(), 0755) != 0) ::rename(d1.c_str(), b.p("moved").c_str());
  };
  cases.push_back({"B's tree changed behind its back at random step 150", "random", diverge, true});

  Options small = opt;
  small.steps = std::min(opt.steps, 500);
  int bad = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    std::string subA = fmt("%s/self-test-%zu", rootA.c_str(), i);
    std::string subB = fmt("%s/self-test-%zu", rootB.c_str(), i);
    removeTree(subA);
    removeTree(subB);
    ::mkdir(subA.c_str(), 0755);
    ::mkdir(subB.c_str(), 0755);
    Totals totals;
    totals.tag = "    | ";
    std::printf("self-test %zu: %s (%s), expecting %s\n", i, c.what, c.scenario,
                c.mustFail ? "mismatches" : "none");
    std::fflush(stdout);
    int failures = runScenario(*findScenario(c.scenario), subA, subB, small, totals, c.perturb);
    bool good = c.mustFail ? failures > 0 : failures == 0;
    std::printf("self-test %zu: %s\n", i, good ? "PASS" : "FAIL");
    bad += !good;
  }
  std::printf("self-test: %s (%d of %zu cases wrong)\n", bad ? "FAILED" : "passed", bad,
              cases.size());
  return bad ? 1 : 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: posix_parity DIR_A DIR_B [--seed N] [--steps N] [--scenario NAME...]\n"
               "       posix_parity --self-test DIR_A DIR_B\n"
               "       posix_parity --list\n");
  return 2;
}

std::optional<uint64_t> parseNumber(const char* s) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 0);
  if (errno || !end || *end || end == s) return std::nullopt;
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  std::vector<std::string> roots, names;
  bool selfTestMode = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--list") {
      for (const auto& def : kScenarios) std::printf("%-14s %s\n", def.name, def.summary);
      return 0;
    } else if (arg == "--self-test") {
      selfTestMode = true;
    } else if (arg == "--seed" || arg == "--steps") {
      auto v = i + 1 < argc ? parseNumber(argv[++i]) : std::nullopt;
      if (!v || (arg == "--steps" && *v > 10000000)) return usage();
      if (arg == "--seed")
        opt.seed = *v;
      else
        opt.steps = static_cast<int>(*v);
    } else if (arg == "--scenario") {
      while (i + 1 < argc && argv[i + 1][0] != '-') names.push_back(argv[++i]);
    } else if (!arg.empty() && arg[0] == '-') {
      return usage();
    } else {
      roots.push_back(arg);
    }
  }
  if (roots.size() != 2) return usage();
  char* ra = ::realpath(roots[0].c_str(), nullptr);
  char* rb = ::realpath(roots[1].c_str(), nullptr);
  if (!ra || !rb) {
    std::fprintf(stderr, "posix_parity: %s: %s\n", (!ra ? roots[0] : roots[1]).c_str(),
                 std::strerror(errno));
    return 2;
  }
  std::string rootA = ra, rootB = rb;
  std::free(ra);
  std::free(rb);
  if (rootA == rootB || rootA.rfind(rootB + "/", 0) == 0 || rootB.rfind(rootA + "/", 0) == 0) {
    std::fprintf(stderr, "posix_parity: DIR_A and DIR_B must be distinct, not nested\n");
    return 2;
  }
  ::umask(022);
  ::signal(SIGPIPE, SIG_IGN);
  if (selfTestMode) return selfTest(rootA, rootB, opt);

  std::vector<const ScenarioDef*> chosen;
  for (const auto& name : names) {
    const ScenarioDef* def = findScenario(name);
    if (!def) {
      std::fprintf(stderr, "posix_parity: no scenario '%s' (see --list)\n", name.c_str());
      return 2;
    }
    chosen.push_back(def);
  }
  if (chosen.empty())
    for (const auto& def : kScenarios) chosen.push_back(&def);

  std::printf("posix_parity: A=%s B=%s seed=%llu steps=%d\n", rootA.c_str(), rootB.c_str(),
              static_cast<unsigned long long>(opt.seed), opt.steps);
  Totals totals;
  int failedScenarios = 0;
  for (const ScenarioDef* def : chosen) {
    int f = runScenario(*def, rootA, rootB, opt, totals);
    if (f < 0) return 2;
    failedScenarios += f > 0;
  }
  std::printf("posix_parity: %s: %d mismatches in %d of %zu scenarios, %d notes\n",
              totals.failures ? "FAILED" : "passed", totals.failures, failedScenarios,
              chosen.size(), totals.notes);
  return totals.failures ? 1 : 0;
}
