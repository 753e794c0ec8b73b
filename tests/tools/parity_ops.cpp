#include "tests/tools/parity_ops.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <vector>

namespace hgvfs::parity {

Op opOpen(const std::string& name, const std::string& rel, int flags, mode_t mode) {
  std::string call =
      fmt("%s = open(%s, %s", name.c_str(), quoteBytes(rel).c_str(), flagsName(flags).c_str());
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
  return custom(fmt("write(%s, %s)", name.c_str(), quoteBytes(data).c_str()),
                [=](Side& s) { return fromRc(::write(s.fd(name), data.data(), data.size())); });
}

Op opPwrite(const std::string& name, const std::string& data, off_t off) {
  return custom(
      fmt("pwrite(%s, %s, @%lld)", name.c_str(), quoteBytes(data).c_str(),
          static_cast<long long>(off)),
      [=](Side& s) { return fromRc(::pwrite(s.fd(name), data.data(), data.size(), off)); });
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
  return custom(fmt("stat(%s)", quoteBytes(rel).c_str()), [=](Side& s) {
    struct stat st;
    if (::stat(s.p(rel).c_str(), &st) != 0) return failure(errno);
    return success(statInfo(st));
  });
}

Op opLstat(const std::string& rel) {
  return custom(fmt("lstat(%s)", quoteBytes(rel).c_str()), [=](Side& s) {
    struct stat st;
    if (::lstat(s.p(rel).c_str(), &st) != 0) return failure(errno);
    return success(statInfo(st));
  });
}

Op opReadFile(const std::string& rel) {
  return custom(fmt("read whole %s", quoteBytes(rel).c_str()), [=](Side& s) {
    int fd = ::open(s.p(rel).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return failure(errno);
    auto data = readAll(fd);
    int e = errno;
    ::close(fd);
    if (!data) return failure(e);
    return Outcome{static_cast<long>(data->size()), 0, *data};
  });
}

Op opWriteFile(const std::string& rel, const std::string& data, int flags, mode_t mode) {
  return custom(fmt("write whole %s = %s (%s)", quoteBytes(rel).c_str(), quoteBytes(data).c_str(),
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

Op opMkdir(const std::string& rel, mode_t mode) {
  return custom(fmt("mkdir(%s, 0%o)", quoteBytes(rel).c_str(), mode),
                [=](Side& s) { return fromRc(::mkdir(s.p(rel).c_str(), mode)); });
}

Op opRmdir(const std::string& rel) {
  return custom(fmt("rmdir(%s)", quoteBytes(rel).c_str()),
                [=](Side& s) { return fromRc(::rmdir(s.p(rel).c_str())); });
}

Op opUnlink(const std::string& rel) {
  return custom(fmt("unlink(%s)", quoteBytes(rel).c_str()),
                [=](Side& s) { return fromRc(::unlink(s.p(rel).c_str())); });
}

Op opRename(const std::string& from, const std::string& to) {
  return custom(fmt("rename(%s, %s)", quoteBytes(from).c_str(), quoteBytes(to).c_str()),
                [=](Side& s) { return fromRc(::rename(s.p(from).c_str(), s.p(to).c_str())); });
}

Op opRename2(const std::string& from, const std::string& to, unsigned flags) {
  std::string f = flags == RENAME_NOREPLACE  ? "RENAME_NOREPLACE"
                  : flags == RENAME_EXCHANGE ? "RENAME_EXCHANGE"
                                             : fmt("0x%x", flags);
  return custom(
      fmt("renameat2(%s, %s, %s)", quoteBytes(from).c_str(), quoteBytes(to).c_str(), f.c_str()),
      [=](Side& s) {
        return fromRc(::renameat2(AT_FDCWD, s.p(from).c_str(), AT_FDCWD, s.p(to).c_str(), flags));
      });
}

Op opSymlink(const std::string& target, const std::string& rel) {
  return custom(fmt("symlink(%s, %s)", quoteBytes(target).c_str(), quoteBytes(rel).c_str()),
                [=](Side& s) { return fromRc(::symlink(target.c_str(), s.p(rel).c_str())); });
}

Op opReadlink(const std::string& rel, size_t bufSize) {
  return custom(fmt("readlink(%s, %zu)", quoteBytes(rel).c_str(), bufSize), [=](Side& s) {
    std::string buf(bufSize, '\0');
    return bytesOutcome(::readlink(s.p(rel).c_str(), buf.data(), bufSize), buf);
  });
}

Op opTruncate(const std::string& rel, off_t len) {
  return custom(fmt("truncate(%s, %lld)", quoteBytes(rel).c_str(), static_cast<long long>(len)),
                [=](Side& s) { return fromRc(::truncate(s.p(rel).c_str(), len)); });
}

Op opFtruncate(const std::string& name, off_t len) {
  return custom(fmt("ftruncate(%s, %lld)", name.c_str(), static_cast<long long>(len)),
                [=](Side& s) { return fromRc(::ftruncate(s.fd(name), len)); });
}

Op opChmod(const std::string& rel, mode_t mode) {
  return custom(fmt("chmod(%s, 0%o)", quoteBytes(rel).c_str(), mode),
                [=](Side& s) { return fromRc(::chmod(s.p(rel).c_str(), mode)); });
}

Op opFchmod(const std::string& name, mode_t mode) {
  return custom(fmt("fchmod(%s, 0%o)", name.c_str(), mode),
                [=](Side& s) { return fromRc(::fchmod(s.fd(name), mode)); });
}

Op opChown(const std::string& rel, uid_t uid, gid_t gid, bool follow) {
  return custom(fmt("%s(%s, %d, %d)", follow ? "chown" : "lchown", quoteBytes(rel).c_str(),
                    static_cast<int>(uid), static_cast<int>(gid)),
                [=](Side& s) {
                  return fromRc(follow ? ::chown(s.p(rel).c_str(), uid, gid)
                                       : ::lchown(s.p(rel).c_str(), uid, gid));
                });
}

Op opOwner(const std::string& rel, bool follow) {
  return custom(
      fmt("%s(%s) owner", follow ? "stat" : "lstat", quoteBytes(rel).c_str()), [=](Side& s) {
        struct stat st;
        int rc = follow ? ::stat(s.p(rel).c_str(), &st) : ::lstat(s.p(rel).c_str(), &st);
        if (rc != 0) return failure(errno);
        return success(fmt("uid=%u gid=%u mode=%04o", st.st_uid, st.st_gid, st.st_mode & 07777));
      });
}

Op opLink(const std::string& from, const std::string& to) {
  return custom(fmt("link(%s, %s)", quoteBytes(from).c_str(), quoteBytes(to).c_str()),
                [=](Side& s) { return fromRc(::link(s.p(from).c_str(), s.p(to).c_str())); });
}

Op opMknod(const std::string& rel, mode_t mode, dev_t dev) {
  return custom(fmt("mknod(%s, %s|0%o, %u:%u)", quoteBytes(rel).c_str(), kindName(mode),
                    mode & 07777, major(dev), minor(dev)),
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

Op opFsync(const std::string& name, bool dataOnly) {
  return custom(fmt("%s(%s)", dataOnly ? "fdatasync" : "fsync", name.c_str()), [=](Side& s) {
    return fromRc(dataOnly ? ::fdatasync(s.fd(name)) : ::fsync(s.fd(name)));
  });
}

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
  return custom(fmt("readdir(%s)", quoteBytes(rel).c_str()),
                [=](Side& s) { return listing(s.p(rel)); });
}

Op opUtimens(const std::string& rel, struct timespec atime, struct timespec mtime, int flags) {
  auto t = [](const struct timespec& x) {
    return x.tv_nsec == UTIME_NOW    ? std::string("UTIME_NOW")
           : x.tv_nsec == UTIME_OMIT ? std::string("UTIME_OMIT")
                                     : timeText(x);
  };
  return custom(fmt("utimensat(%s, %s, %s%s)", quoteBytes(rel).c_str(), t(atime).c_str(),
                    t(mtime).c_str(), flags ? ", AT_SYMLINK_NOFOLLOW" : ""),
                [=](Side& s) {
                  struct timespec ts[2] = {atime, mtime};
                  return fromRc(::utimensat(AT_FDCWD, s.p(rel).c_str(), ts, flags));
                });
}

Op opTimes(const std::string& rel) {
  return custom(fmt("lstat(%s) times", quoteBytes(rel).c_str()), [=](Side& s) {
    struct stat st;
    if (::lstat(s.p(rel).c_str(), &st) != 0) return failure(errno);
    return success("atime=" + timeText(st.st_atim) + " mtime=" + timeText(st.st_mtim));
  });
}

Outcome inChild(const std::function<Outcome()>& fn, const std::function<void()>& meanwhile) {
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

}  // namespace hgvfs::parity
