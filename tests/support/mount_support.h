#pragma once
// Helpers for the tests that mount for real (tests/integration): running
// the hgvfs binary, reading files and trees back with raw syscalls,
// comparing a mount with a directory, and MountFixture, which gives each
// test its own $HGVFS_HOME and a MountGuard per mount so that every mount
// is unmounted (and its daemon ended) even when the test fails.

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "base/mountinfo.h"
#include "daemon/client_dir.h"
#include "tests/support/fixture_repos.h"
#include "tests/support/test_support.h"
#include "tests/support/tree_snapshot.h"

namespace hgvfs::test {

using namespace std::chrono_literals;

inline const std::string kHgvfs = HGVFS_BINARY;

// ---------------------------------------------------------------------------
// Small helpers

inline std::string printableBytes(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

inline std::string describe(const CommandResult& r) {
  return "exit " + std::to_string(r.exitCode) + "\n--- stdout:\n" + r.out + "\n--- stderr:\n" +
         r.err;
}

inline std::string errnoName(int e) {
  return std::string(strerrordesc_np(e)) + " (" + std::to_string(e) + ")";
}

inline CommandResult hgvfs(const std::vector<std::string>& args) {
  std::vector<std::string> argv{kHgvfs};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

inline CommandResult shell(const std::string& script) { return run({"bash", "-c", script}); }

// Quotes for bash (the temporary paths are plain, but be safe).
inline std::string q(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  return out + "'";
}

inline bool validUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    }
    i += n;
  }
  return true;
}

// The fs types mounted at `path`, bottom to top.
inline std::vector<std::string> mountsAt(const std::string& path) { return mountTypesAt(path); }

inline bool isMounted(const std::string& path) { return !mountsAt(path).empty(); }

inline std::optional<int> readPid(const std::string& pidFile) {
  std::ifstream in(pidFile);
  int pid = 0;
  if (!(in >> pid) || pid <= 0) return std::nullopt;
  return pid;
}

// Alive and not a zombie, and still an hgvfs process (pids get reused).
inline bool hgvfsProcessAlive(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  size_t close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size() || line[close + 2] == 'Z')
    return false;
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  return (comm >> name) && name.rfind("hgvfs", 0) == 0;
}

inline bool waitUntil(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return cond();
}

// Reads a whole file; nullopt and `err` set on failure.
inline std::optional<std::string> readWhole(const std::string& path, int* err = nullptr) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (err) *err = errno;
    return std::nullopt;
  }
  std::string data;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (err) *err = errno;
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

// The same with O_DIRECT: every read reaches the daemon (no page cache).
inline std::optional<std::string> readWholeDirect(const std::string& path, int* err = nullptr) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
  if (fd < 0) {
    if (err) *err = errno;
    return std::nullopt;
  }
  constexpr size_t kChunk = size_t{128} << 10;
  void* raw = nullptr;
  if (posix_memalign(&raw, 4096, kChunk) != 0) {
    ::close(fd);
    if (err) *err = ENOMEM;
    return std::nullopt;
  }
  std::unique_ptr<void, decltype(&std::free)> buf(raw, &std::free);
  std::string data;
  while (true) {
    ssize_t n = ::read(fd, buf.get(), kChunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (err) *err = errno;
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    data.append(static_cast<const char*>(buf.get()), static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

inline std::optional<std::string> readLink(const std::string& path, int* err = nullptr) {
  std::string buf(PATH_MAX + 1, '\0');
  ssize_t n = ::readlink(path.c_str(), buf.data(), buf.size());
  if (n < 0) {
    if (err) *err = errno;
    return std::nullopt;
  }
  buf.resize(static_cast<size_t>(n));
  return buf;
}

// Directory entries except . and .., sorted by bytes; nullopt on error.
inline std::optional<std::vector<std::string>> listDir(const std::string& path,
                                                       int* err = nullptr) {
  DIR* d = ::opendir(path.c_str());
  if (!d) {
    if (err) *err = errno;
    return std::nullopt;
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      names.emplace_back(e->d_name);
    }
    errno = 0;
  }
  int readErr = errno;
  ::closedir(d);
  if (readErr != 0) {
    if (err) *err = readErr;
    return std::nullopt;
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The same for a working copy's root: without its .hg.
inline std::optional<std::vector<std::string>> listWorkingDir(const std::string& path,
                                                              int* err = nullptr) {
  auto names = listDir(path, err);
  if (names) std::erase(*names, ".hg");
  return names;
}

// ---------------------------------------------------------------------------
// Recursive comparison of the mount with an archive (tree_snapshot.h): names
// (bytes), kinds, permission bits of non-directories, sizes, contents,
// symlink targets (all by lstat). The working copy's .hg (the mount's is a
// symlink to the client's own) is not part of the tree, as in hg archive.
// The problems are worded for the mount and the archive, one line each.

struct TreeComparison {
  std::vector<std::string> problems;
  // What both trees hold alike in kind (dirs below the root).
  size_t files = 0, symlinks = 0, dirs = 0, nonUtf8Names = 0, bytes = 0;

  void problem(const std::string& p) {
    if (problems.size() < 40) problems.push_back(p);
  }
  std::string report() const {
    std::string out;
    for (const auto& p : problems) out += "  " + p + "\n";
    return out;
  }
};

// One difference (mount = A, archive = B) as a problem line.
inline std::string mountProblem(const TreeDifference& d) {
  using Field = TreeDifference::Field;
  std::string path = d.path();
  // A listing failure's entry is "dir/" ("/" for the root).
  if (path.size() > 1 && path.back() == '/') path.pop_back();
  std::string shown = path == "/" ? path : printableBytes("/" + path);
  auto failed = [&](const TreeEntry& e, const char* side) {
    std::string call = std::string_view(e.failedCall) == "list" ? "cannot list" : e.failedCall;
    return shown + ": " + call + " in " + side + ": " + errnoName(e.err);
  };
  switch (d.field) {
    case Field::kOnlyInA:
      return d.a->err ? failed(*d.a, "the mount") : shown + ": only in the mount";
    case Field::kOnlyInB:
      return d.b->err ? failed(*d.b, "the archive") : shown + ": missing from the mount";
    case Field::kUnreadable:
      return d.a->err ? failed(*d.a, "the mount") : failed(*d.b, "the archive");
    case Field::kKind:
      return shown + ": kind " + kindName(d.a->mode) + " in the mount, " + kindName(d.b->mode) +
             " in the archive";
    case Field::kMode: {
      char buf[64];
      std::snprintf(buf, sizeof buf, ": mode %04o in the mount, %04o in the archive",
                    d.a->permissions(), d.b->permissions());
      return shown + buf;
    }
    case Field::kSize:
      if (d.a->isSymlink())
        return shown + ": symlink size " + std::to_string(d.a->size) + " vs " +
               std::to_string(d.b->size);
      return shown + ": size " + std::to_string(d.a->size) + " in the mount, " +
             std::to_string(d.b->size) + " in the archive";
    case Field::kData:
      if (d.a->isSymlink())
        return shown + ": symlink target '" + printableBytes(d.a->data) + "' in the mount, '" +
               printableBytes(d.b->data) + "' in the archive";
      return shown + ": content differs (" + std::to_string(d.a->data.size()) + " bytes read)";
    case Field::kNlink:
    case Field::kRdev:
      break;
  }
  return shown + ": differs";
}

inline TreeComparison compareTrees(const std::string& mount, const std::string& archive) {
  SnapshotOptions snap;
  snap.skipAtRoot = {".hg"};
  TreeSnapshot m = snapshotTree(mount, snap);
  TreeSnapshot a = snapshotTree(archive, snap);
  CompareOptions options;
  options.dirModes = false;
  options.nlink = false;
  options.rdev = false;
  options.belowMismatch = false;
  options.sameErrorIsEqual = false;
  TreeComparison c;
  for (const auto& d : compareSnapshots(m, a, options)) c.problem(mountProblem(d));
  for (const TreeEntry& e : a.entries) {
    const TreeEntry* other = m.find(e.path);
    if (!other || e.err || other->err || (e.mode & S_IFMT) != (other->mode & S_IFMT)) continue;
    if (!validUtf8(e.path.substr(e.path.rfind('/') + 1))) ++c.nonUtf8Names;
    if (e.isDir()) {
      ++c.dirs;
    } else if (e.isSymlink()) {
      ++c.symlinks;
    } else if (e.isFile()) {
      ++c.files;
      if (e.data == other->data) c.bytes += e.data.size();
    } else {
      c.problem(printableBytes("/" + e.path) + ": unexpected kind in the archive");
    }
  }
  return c;
}

// Every non-directory below `root`, relative ("/a/b"), sorted by bytes.
inline void collectPaths(const std::string& root, const std::string& rel,
                         std::vector<std::string>& out, bool filesOnly) {
  auto names = listDir(root + rel);
  if (!names) throw std::runtime_error("cannot list " + root + rel);
  for (const auto& n : *names) {
    std::string r = rel + "/" + n;
    struct stat st {};
    if (::lstat((root + r).c_str(), &st) != 0) throw std::runtime_error("cannot lstat " + root + r);
    if (S_ISDIR(st.st_mode)) {
      collectPaths(root, r, out, filesOnly);
    } else if (!filesOnly || S_ISREG(st.st_mode)) {
      out.push_back(r);
    }
  }
}

// Runs `body` on its own thread; if it has not finished within `limit`,
// calls `onTimeout` (which must unblock it, e.g. by killing the daemon),
// waits for it, and returns false.
inline bool finishesWithin(std::chrono::milliseconds limit, const std::function<void()>& body,
                           const std::function<void()>& onTimeout) {
  std::promise<void> done;
  auto finished = done.get_future();
  std::thread worker([&] {
    body();
    done.set_value();
  });
  bool inTime = finished.wait_for(limit) == std::future_status::ready;
  if (!inTime) onTimeout();
  worker.join();
  return inTime;
}

// ---------------------------------------------------------------------------
// Mount ownership

// The daemon pid recorded for the client of `mountPoint` (under the current
// $HGVFS_HOME), if its pid file names one.
inline std::optional<int> daemonPidFor(const std::string& mountPoint) {
  return readPid(daemon::pidFile(daemon::clientDirectoryFor(mountPoint)));
}

// Unmounts `mountPoint` when it goes out of scope: `hgvfs unmount`, then
// `umount -l` if that did not do it; then makes sure the daemon is gone.
class MountGuard {
 public:
  explicit MountGuard(std::string mountPoint) : mountPoint_(std::move(mountPoint)) {}
  MountGuard(const MountGuard&) = delete;
  MountGuard& operator=(const MountGuard&) = delete;
  ~MountGuard() { release(); }

  const std::string& mountPoint() const { return mountPoint_; }

  void release() {
    std::optional<int> pid = daemonPidFor(mountPoint_);
    if (isMounted(mountPoint_)) {
      CommandResult r = hgvfs({"unmount", mountPoint_});
      if (isMounted(mountPoint_)) {
        ADD_FAILURE() << "hgvfs unmount left " << mountPoint_ << " mounted: " << describe(r);
        run({"umount", "-l", mountPoint_});
      }
    }
    if (pid && !waitUntil([&] { return !hgvfsProcessAlive(*pid); }, 10s)) {
      ADD_FAILURE() << "daemon " << *pid << " of " << mountPoint_
                    << " still runs 10 s after unmounting; killing it";
      ::kill(*pid, SIGKILL);
    }
  }

 private:
  std::string mountPoint_;
};

// ---------------------------------------------------------------------------
// The fixture

class MountFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = tmp_.path() + "/home";
    ::setenv("HGVFS_HOME", home_.c_str(), 1);
    ::setenv("LC_ALL", "C", 1);
    ::setenv("TZ", "UTC", 1);
  }

  void TearDown() override {
    guards_.clear();
    // A mount the guards missed would outlive the test: report and detach it.
    {
      std::ifstream mounts("/proc/self/mountinfo");
      for (std::string line; std::getline(mounts, line);) {
        std::istringstream fields(line);
        std::string id, parent, dev, root, point;
        fields >> id >> parent >> dev >> root >> point;
        if (point.rfind(tmp_.path() + "/", 0) == 0 &&
            line.find("fuse.hgvfs") != std::string::npos) {
          ADD_FAILURE() << "a mount outlived its guard: " << point;
          run({"umount", "-l", point});
        }
      }
    }
    // Nothing of ours may outlive the test.
    std::error_code ec;
    if (std::filesystem::exists(home_ + "/clients", ec)) {
      for (const auto& e : std::filesystem::directory_iterator(home_ + "/clients", ec)) {
        auto pid = readPid(e.path().string() + "/daemon.pid");
        if (pid && hgvfsProcessAlive(*pid)) {
          ADD_FAILURE() << "daemon " << *pid << " (" << e.path() << ") still running";
          ::kill(*pid, SIGKILL);
        }
      }
    }
  }

  static const FixtureRepos& fixtures() { return FixtureRepos::get(FixtureSet::kFull); }
  static std::string fixture(const std::string& name) { return fixtures().path(name); }

  std::string path(const std::string& rel) const { return tmp_.path() + "/" + rel; }

  std::string makeDir(const std::string& rel) {
    std::string p = path(rel);
    std::filesystem::create_directories(p);
    return p;
  }

  // `hg archive -t files -r REV` of `repo` (without .hg_archival.txt).
  std::string archive(const std::string& repo, const std::string& rev) {
    std::string dest = path("archive-" + std::to_string(++archives_));
    CommandResult r = hg({"-R", repo, "archive", "-t", "files", "-r", rev, dest});
    if (r.exitCode != 0) throw std::runtime_error("hg archive failed: " + describe(r));
    ::unlink((dest + "/.hg_archival.txt").c_str());
    // An archive of a revision without files makes no directory.
    std::filesystem::create_directories(dest);
    return dest;
  }

  // Registers a guard for `mountPoint` (created if missing), then mounts.
  // Throws if hgvfs mount fails; the guard cleans up whatever it left.
  std::string mount(const std::string& repo, const std::string& mountPoint,
                    const std::string& rev = {}, const std::vector<std::string>& extra = {}) {
    std::filesystem::create_directories(mountPoint);
    guard(mountPoint);
    std::vector<std::string> args{"mount"};
    if (!rev.empty()) args.insert(args.end(), {"--rev", rev});
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {repo, mountPoint});
    CommandResult r = hgvfs(args);
    if (r.exitCode != 0) throw std::runtime_error("hgvfs mount failed: " + describe(r));
    if (mountsAt(mountPoint) != std::vector<std::string>{"fuse.hgvfs"}) {
      throw std::runtime_error("after hgvfs mount, " + mountPoint + " is not one fuse.hgvfs mount");
    }
    return mountPoint;
  }

  void guard(const std::string& mountPoint) {
    for (const auto& g : guards_) {
      if (g->mountPoint() == mountPoint) return;
    }
    guards_.push_back(std::make_unique<MountGuard>(mountPoint));
  }

  // hgvfs unmount that must succeed: gone from mountinfo, daemon ended.
  void unmount(const std::string& mountPoint) {
    auto pid = daemonPidFor(mountPoint);
    CommandResult r = hgvfs({"unmount", mountPoint});
    EXPECT_EQ(r.exitCode, 0) << describe(r);
    EXPECT_FALSE(isMounted(mountPoint)) << mountPoint;
    if (pid) {
      EXPECT_TRUE(waitUntil([&] { return !hgvfsProcessAlive(*pid); }, 10s))
          << "daemon " << *pid << " still runs after unmount";
    }
  }

  // The state column of `hgvfs list` for `mountPoint`, "" if not listed.
  std::string listedState(const std::string& mountPoint) {
    CommandResult r = hgvfs({"list"});
    EXPECT_EQ(r.exitCode, 0) << describe(r);
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(mountPoint + "\t", 0) != 0) continue;
      std::string rest = line.substr(mountPoint.size() + 1);
      return rest.substr(0, rest.find('\t'));
    }
    return "";
  }

  std::string logOf(const std::string& mountPoint) {
    std::string file = daemon::logFile(daemon::clientDirectoryFor(mountPoint));
    try {
      return readFile(file);
    } catch (...) {
      return "";
    }
  }

  void expectSameTree(const std::string& mount, const std::string& archive,
                      const std::string& what) {
    TreeComparison c = compareTrees(mount, archive);
    EXPECT_TRUE(c.problems.empty()) << what << ": the mount differs from hg archive:\n"
                                    << c.report();
  }

  std::string hgNode(const std::string& repo, const std::string& rev) {
    CommandResult r = hg({"-R", repo, "log", "-r", rev, "-T", "{node}"});
    if (r.exitCode != 0) throw std::runtime_error("hg log failed: " + describe(r));
    return r.out;
  }

  // The temporary directory is declared first so it is removed last, after
  // every guard has unmounted.
  TempDir tmp_;
  std::string home_;
  std::vector<std::unique_ptr<MountGuard>> guards_;
  int archives_ = 0;
};

}  // namespace hgvfs::test
