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

#include "fs/client_dir.h"
#include "tests/support/fixture_repos.h"
#include "tests/support/test_support.h"

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

bool validUtf8(const std::string& s) {
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
inline std::vector<std::string> mountsAt(const std::string& path) { return fs::mountTypesAt(path); }

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
// Recursive comparison of the mount with an archive: names (bytes), kinds,
// permission bits of files, sizes, contents, symlink targets (all by lstat).

struct TreeComparison {
  std::vector<std::string> problems;
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

inline const char* kindName(mode_t m) {
  return S_ISREG(m) ? "file" : S_ISDIR(m) ? "dir" : S_ISLNK(m) ? "symlink" : "other";
}

inline void compareDirs(const std::string& mount, const std::string& archive,
                        const std::string& rel, TreeComparison& c) {
  int errM = 0, errA = 0;
  auto namesM = listDir(mount + rel, &errM);
  auto namesA = listDir(archive + rel, &errA);
  std::string shown = rel.empty() ? "/" : printableBytes(rel);
  if (!namesM) return c.problem(shown + ": cannot list in the mount: " + errnoName(errM));
  if (!namesA) return c.problem(shown + ": cannot list in the archive: " + errnoName(errA));
  // The working copy's .hg (the mount's is a symlink to the client's own)
  // is not part of the tree being compared, as in hg archive.
  if (rel.empty()) {
    std::erase(*namesM, ".hg");
    std::erase(*namesA, ".hg");
  }
  std::set<std::string> setM(namesM->begin(), namesM->end()), setA(namesA->begin(), namesA->end());
  for (const auto& n : setM) {
    if (!setA.count(n)) c.problem(printableBytes(rel + "/" + n) + ": only in the mount");
  }
  for (const auto& n : setA) {
    if (!setM.count(n)) c.problem(printableBytes(rel + "/" + n) + ": missing from the mount");
  }
  for (const auto& n : *namesA) {
    if (!setM.count(n)) continue;
    std::string r = rel + "/" + n;
    std::string shownR = printableBytes(r);
    if (!validUtf8(n)) ++c.nonUtf8Names;
    struct stat sm {
    }, sa{};
    if (::lstat((mount + r).c_str(), &sm) != 0) {
      c.problem(shownR + ": lstat in the mount: " + errnoName(errno));
      continue;
    }
    if (::lstat((archive + r).c_str(), &sa) != 0) {
      c.problem(shownR + ": lstat in the archive: " + errnoName(errno));
      continue;
    }
    if ((sm.st_mode & S_IFMT) != (sa.st_mode & S_IFMT)) {
      c.problem(shownR + ": kind " + kindName(sm.st_mode) + " in the mount, " +
                kindName(sa.st_mode) + " in the archive");
      continue;
    }
    if (S_ISDIR(sa.st_mode)) {
      ++c.dirs;
      compareDirs(mount, archive, r, c);
    } else if (S_ISLNK(sa.st_mode)) {
      ++c.symlinks;
      int e = 0;
      auto tm = readLink(mount + r, &e);
      auto ta = readLink(archive + r);
      if (!tm) {
        c.problem(shownR + ": readlink in the mount: " + errnoName(e));
      } else if (*tm != *ta) {
        c.problem(shownR + ": symlink target '" + printableBytes(*tm) + "' in the mount, '" +
                  printableBytes(ta ? *ta : "") + "' in the archive");
      }
      if (sm.st_size != sa.st_size) {
        c.problem(shownR + ": symlink size " + std::to_string(sm.st_size) + " vs " +
                  std::to_string(sa.st_size));
      }
    } else if (S_ISREG(sa.st_mode)) {
      ++c.files;
      if ((sm.st_mode & 07777) != (sa.st_mode & 07777)) {
        char buf[64];
        std::snprintf(buf, sizeof buf, ": mode %04o in the mount, %04o in the archive",
                      sm.st_mode & 07777, sa.st_mode & 07777);
        c.problem(shownR + buf);
      }
      if (sm.st_size != sa.st_size) {
        c.problem(shownR + ": size " + std::to_string(sm.st_size) + " in the mount, " +
                  std::to_string(sa.st_size) + " in the archive");
      }
      int e = 0;
      auto dm = readWhole(mount + r, &e);
      auto da = readWhole(archive + r);
      if (!dm) {
        c.problem(shownR + ": read in the mount: " + errnoName(e));
      } else if (!da || *dm != *da) {
        c.problem(shownR + ": content differs (" + std::to_string(dm->size()) + " bytes read)");
      } else {
        c.bytes += dm->size();
      }
    } else {
      c.problem(shownR + ": unexpected kind in the archive");
    }
  }
}

inline TreeComparison compareTrees(const std::string& mount, const std::string& archive) {
  TreeComparison c;
  compareDirs(mount, archive, "", c);
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
  return readPid(fs::pidFile(fs::clientDirectoryFor(mountPoint)));
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
    std::string file = fs::logFile(fs::clientDirectoryFor(mountPoint));
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
