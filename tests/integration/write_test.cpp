// Integration tests of the writable working copy: changes made through the
// mount behave as on a local disk (the same operations on a plain copy of
// the revision give the same tree), survive unmount and a killed daemon,
// stay visible to every process at once, and a full overlay disk gives
// ENOSPC without losing earlier data.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <thread>

#include "tests/support/mount_support.h"

namespace hgvfs::test {
namespace {

class WriteTest : public MountFixture {
 protected:
  // A plain directory holding `hg archive` of `rev`: the reference.
  std::string plainCopy(const std::string& repo, const std::string& rev) {
    return archive(repo, rev);
  }

  // SIGKILLs the daemon of `mnt`, waits for it to be gone, and mounts
  // `repo` there again.
  void killAndRemount(const std::string& repo, const std::string& mnt) {
    auto pid = daemonPidFor(mnt);
    ASSERT_TRUE(pid);
    ::kill(*pid, SIGKILL);
    ASSERT_TRUE(waitUntil([&] { return !hgvfsProcessAlive(*pid); }, 10s));
    CommandResult again = hgvfs({"mount", repo, mnt});
    ASSERT_EQ(again.exitCode, 0) << describe(again);
  }

  // Runs the same shell script in both roots; both must succeed.
  void inBoth(const std::string& mnt, const std::string& ref, const std::string& script) {
    for (const auto& root : {mnt, ref}) {
      CommandResult r = shell("set -e; cd " + q(root) + "; " + script);
      ASSERT_EQ(r.exitCode, 0) << "in " << root << ": " << script << "\n" << describe(r);
    }
  }

  std::map<std::string, ino_t> inodes(const std::string& root,
                                      const std::vector<std::string>& paths) {
    std::map<std::string, ino_t> out;
    for (const auto& p : paths) {
      struct stat st {};
      if (::lstat((root + "/" + p).c_str(), &st) == 0) out[p] = st.st_ino;
    }
    return out;
  }
};

const char* kEdits =
    "echo appended >> README; "
    "printf 'new file\\n' > created.txt; "
    "mkdir -p newdir/deeper; printf 'x' > newdir/deeper/leaf; "
    "mv src newdir/moved-src; "
    "chmod +x created.txt; "
    "ln -s created.txt link-to-created; "
    "truncate -s 3 newdir/deeper/leaf; truncate -s 10000 created.txt; "
    "cp -a newdir copied; "
    "mkdir emptydir; rmdir emptydir; "
    "printf 'replaced' > tmpfile; mv tmpfile README";

TEST_F(WriteTest, EditsMatchAPlainCopyAndSurviveRemount) {
  std::string repo = fixture("basic");
  std::string ref = plainCopy(repo, "tip");
  std::string mnt = mount(repo, path("mnt"));
  inBoth(mnt, ref, kEdits);
  expectSameTree(mnt, ref, "after the edits");
  std::vector<std::string> changed = {
      "README",           "created.txt", "newdir",         "newdir/deeper/leaf",
      "newdir/moved-src", "copied",      "link-to-created"};
  auto before = inodes(mnt, changed);
  ASSERT_EQ(before.size(), changed.size());

  unmount(mnt);
  mount(repo, mnt);
  expectSameTree(mnt, ref, "after unmount and mount");
  EXPECT_EQ(inodes(mnt, changed), before) << "inode numbers of changed entries moved";

  // More changes on the remounted tree, including undoing earlier ones.
  inBoth(mnt, ref,
         "rm -r copied; mv newdir/moved-src src; rm link-to-created; echo again >> README; "
         "mkdir -p src/sub2 && printf 'y' > src/sub2/f");
  expectSameTree(mnt, ref, "after more edits on the remounted tree");
  unmount(mnt);
  mount(repo, mnt);
  expectSameTree(mnt, ref, "after a second remount");
}

TEST_F(WriteTest, UnchangedFilesTakeNoOverlaySpace) {
  std::string repo = fixture("basic");
  std::string mnt = mount(repo, path("mnt"));
  CommandResult r = shell("cd " + q(mnt) +
                          " && cat $(find . -type f) > /dev/null && "
                          "echo x >> README");
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  std::string files = daemon::overlayDirectory(daemon::clientDirectoryFor(mnt)) + "/files";
  size_t count = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(files)) {
    if (e.is_regular_file()) ++count;
  }
  EXPECT_EQ(count, 1u) << "only README was changed, so only it has an overlay file";
}

TEST_F(WriteTest, ChangesAreVisibleToOtherProcessesAtOnce) {
  std::string repo = fixture("basic");
  std::string mnt = mount(repo, path("mnt"));
  // Warm the kernel caches first.
  ASSERT_EQ(shell("cd " + q(mnt) + " && ls -lR > /dev/null && cat README > /dev/null").exitCode, 0);
  struct stat before {};
  ASSERT_EQ(::stat((mnt + "/README").c_str(), &before), 0);
  int fd = ::open((mnt + "/README").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  ASSERT_GE(fd, 0) << errnoName(errno);
  ASSERT_EQ(::write(fd, "more\n", 5), 5);
  // Another process, while the writer keeps the file open.
  CommandResult tail =
      shell("tail -c 5 " + q(mnt + "/README") + "; stat -c %s " + q(mnt + "/README"));
  EXPECT_EQ(tail.out, "more\n" + std::to_string(before.st_size + 5) + "\n") << describe(tail);
  ::close(fd);
  struct stat after {};
  ASSERT_EQ(::stat((mnt + "/README").c_str(), &after), 0);
  EXPECT_EQ(after.st_size, before.st_size + 5);
  EXPECT_TRUE(after.st_mtim.tv_sec > before.st_mtim.tv_sec ||
              (after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
               after.st_mtim.tv_nsec > before.st_mtim.tv_nsec))
      << "mtime did not move on write";
  // New and renamed names show in another process's listing at once.
  ASSERT_EQ(shell("cd " + q(mnt) + " && touch fresh && mv src src2").exitCode, 0);
  CommandResult ls = shell("ls " + q(mnt));
  EXPECT_NE(ls.out.find("fresh\n"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("src2\n"), std::string::npos) << ls.out;
  EXPECT_EQ(ls.out.find("src\n"), std::string::npos) << ls.out;
}

TEST_F(WriteTest, UnlinkedOpenFileStaysUsableUntilClosed) {
  std::string repo = fixture("basic");
  std::string mnt = mount(repo, path("mnt"));
  std::string file = mnt + "/README";
  auto original = readWhole(file);
  ASSERT_TRUE(original);
  int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::unlink(file.c_str()), 0);
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(st.st_nlink, 0u);
  std::string got(original->size(), '\0');
  ASSERT_EQ(::pread(fd, got.data(), got.size(), 0), static_cast<ssize_t>(got.size()));
  EXPECT_EQ(got, *original);
  ASSERT_EQ(::pwrite(fd, "Z", 1, 0), 1);
  char c = 0;
  ASSERT_EQ(::pread(fd, &c, 1, 0), 1);
  EXPECT_EQ(c, 'Z');
  EXPECT_NE(::access(file.c_str(), F_OK), 0);
  ::close(fd);
  // The name is free again.
  ASSERT_EQ(shell("echo new > " + q(file)).exitCode, 0);
  EXPECT_EQ(readWhole(file).value_or(""), "new\n");
}

TEST_F(WriteTest, PermissionsAreCheckedByTheKernel) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  std::string repo = fixture("basic");
  std::string mnt = mount(repo, path("mnt"));
  ::chmod(tmp_.path().c_str(), 0755);
  // Without --allow-other, another user cannot even enter the mount.
  CommandResult other =
      run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cat", mnt + "/README"});
  EXPECT_NE(other.exitCode, 0) << describe(other);
  // The mounting user is subject to the modes (root bypasses them, so only
  // check that chmod is recorded).
  ASSERT_EQ(::chmod((mnt + "/README").c_str(), 0600), 0);
  struct stat st {};
  ASSERT_EQ(::stat((mnt + "/README").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(WriteTest, AnotherUserWorksUnderAllowOtherWithModesEnforced) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  std::string repo = fixture("basic");
  std::string mnt = mount(repo, path("mnt"), {}, {"--allow-other"});
  ::chmod(tmp_.path().c_str(), 0755);
  auto as = [&](const std::string& script) {
    return run(
        {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", "-c", script});
  };
  EXPECT_EQ(as("cat " + q(mnt + "/README") + " > /dev/null").exitCode, 0);
  CommandResult w = as("echo x >> " + q(mnt + "/README"));
  EXPECT_NE(w.exitCode, 0) << "a file owned by root, mode 0644, was writable by nobody";
  EXPECT_NE(w.err.find("Permission denied"), std::string::npos) << describe(w);
  EXPECT_NE(as("touch " + q(mnt + "/newfile")).exitCode, 0);
  ASSERT_EQ(::mkdir((mnt + "/shared").c_str(), 0777), 0);
  ASSERT_EQ(::chmod((mnt + "/shared").c_str(), 0777), 0);
  CommandResult mine =
      as("echo hi > " + q(mnt + "/shared/mine") + " && stat -c %u " + q(mnt + "/shared/mine"));
  EXPECT_EQ(mine.exitCode, 0) << describe(mine);
  EXPECT_EQ(mine.out, "65534\n") << "a file created by a user belongs to that user";
}

// SIGKILL the daemon during a stream of writes, closes and renames; after
// mounting again, every file whose rename returned is there, complete.
TEST_F(WriteTest, KilledDaemonLosesNothingThatWasClosed) {
  std::string repo = fixture("basic");
  std::string mnt = path("mnt");
  const int kKills = 6;
  std::mt19937 rng(1234);
  std::map<std::string, std::string> committed;  // path → content, across rounds
  for (int round = 0; round < kKills; ++round) {
    mount(repo, mnt);
    auto pid = daemonPidFor(mnt);
    ASSERT_TRUE(pid);
    std::atomic<bool> stop{false};
    std::vector<std::pair<std::string, std::string>> done;  // written, closed, renamed
    std::thread writer([&] {
      std::mt19937 local(round);
      std::string dir = mnt + "/round" + std::to_string(round);
      if (::mkdir(dir.c_str(), 0755) != 0) return;
      for (int i = 0; !stop; ++i) {
        std::string content(1 + local() % 70000, static_cast<char>('a' + i % 26));
        content += std::to_string(i);
        std::string tmp = dir + "/.tmp" + std::to_string(i);
        std::string final = dir + "/f" + std::to_string(i);
        int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) return;
        bool ok =
            ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
        if (::close(fd) != 0 || !ok) return;
        if (::rename(tmp.c_str(), final.c_str()) != 0) return;
        done.emplace_back("round" + std::to_string(round) + "/f" + std::to_string(i), content);
        if (i % 7 == 3) {  // also rename and remove directories now and then
          std::string sub = dir + "/d" + std::to_string(i);
          if (::mkdir(sub.c_str(), 0755) != 0) return;
          if (::rename(final.c_str(), (sub + "/moved").c_str()) != 0) return;
          done.back().first = "round" + std::to_string(round) + "/d" + std::to_string(i) + "/moved";
        }
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(30 + rng() % 300));
    ::kill(*pid, SIGKILL);
    stop = true;
    writer.join();
    ASSERT_TRUE(waitUntil([&] { return !hgvfsProcessAlive(*pid); }, 10s));
    for (auto& [p, c] : done) committed[p] = c;
    // Mounting again clears the dead mount and repairs the overlay.
    CommandResult again = hgvfs({"mount", repo, mnt});
    ASSERT_EQ(again.exitCode, 0) << describe(again);
    size_t missing = 0;
    for (const auto& [p, content] : committed) {
      auto got = readWhole(mnt + "/" + p);
      if (!got || *got != content) {
        if (++missing <= 5) {
          ADD_FAILURE() << "round " << round << ": " << p << " is "
                        << (got ? "different (" + std::to_string(got->size()) + " bytes)"
                                : std::string("missing"));
        }
      }
    }
    EXPECT_EQ(missing, 0u) << "of " << committed.size() << " closed and renamed files";
    // Every name in the tree can be read (no entry without its content).
    CommandResult all = shell("cd " + q(mnt) + " && find . -type f -exec cat {} + > /dev/null");
    EXPECT_EQ(all.exitCode, 0) << describe(all);
    unmount(mnt);
  }
  EXPECT_GT(committed.size(), 0u) << "the writer never got a file through";
}

// What close and fsync guarantee (docs/ARCHITECTURE.md, "What close
// guarantees"), with the kernel's writeback cache (--writeback-cache) and
// without it (the default): SIGKILL the daemon while files are written in several
// unaligned pieces, appended to and closed, one more is fsynced and left
// open; after mounting again every closed file is there, whole, with the
// mtime stat showed after its close, and the fsynced bytes are there.
class KilledDaemonTest : public WriteTest,
                         public ::testing::WithParamInterface<std::vector<std::string>> {};

struct ClosedFile {
  std::string content;
  struct timespec mtime {};
};

TEST_P(KilledDaemonTest, ClosedFilesAreWholeWithTheirMtimeAndFsyncedBytesStay) {
  std::string repo = fixture("basic");
  std::string mnt = path("mnt");
  std::map<std::string, ClosedFile> closed;  // path → content and mtime, across rounds
  std::map<std::string, std::string> synced;
  for (int round = 0; round < 4; ++round) {
    mount(repo, mnt, {}, GetParam());
    auto pid = daemonPidFor(mnt);
    ASSERT_TRUE(pid);
    std::atomic<bool> stop{false};
    std::vector<std::pair<std::string, ClosedFile>> done;
    std::pair<std::string, std::string> fsynced;  // written, fsynced, still open at the kill
    int openFd = -1;
    std::thread writer([&] {
      std::mt19937 local(round);
      std::string rel = "w" + std::to_string(round);
      if (::mkdir((mnt + "/" + rel).c_str(), 0755) != 0) return;
      std::string syncedRel = rel + "/synced";
      openFd = ::open((mnt + "/" + syncedRel).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      std::string syncedContent(12345, 's');
      if (openFd < 0 || ::write(openFd, syncedContent.data(), syncedContent.size()) !=
                            static_cast<ssize_t>(syncedContent.size())) {
        return;
      }
      if (::fsync(openFd) != 0) return;
      fsynced = {syncedRel, syncedContent};
      std::string appended = rel + "/log";
      std::string logContent;
      for (int i = 0; !stop; ++i) {
        std::string name = rel + "/f" + std::to_string(i);
        std::string content;
        int fd = ::open((mnt + "/" + name).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) return;
        for (int piece = 0; piece < 1 + static_cast<int>(local() % 4); ++piece) {
          std::string bytes(1 + local() % 9000, static_cast<char>('a' + (i + piece) % 26));
          if (::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
            ::close(fd);
            return;
          }
          content += bytes;
        }
        if (::close(fd) != 0) return;
        struct stat st {};
        if (::stat((mnt + "/" + name).c_str(), &st) != 0) return;
        done.push_back({name, ClosedFile{content, st.st_mtim}});
        // One file only ever appended to, reopened each time.
        int log =
            ::open((mnt + "/" + appended).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log < 0) return;
        std::string line = "line " + std::to_string(i) + "\n";
        bool ok = ::write(log, line.data(), line.size()) == static_cast<ssize_t>(line.size());
        if (::close(log) != 0 || !ok) return;
        logContent += line;
        if (::stat((mnt + "/" + appended).c_str(), &st) != 0) return;
        done.push_back({appended, ClosedFile{logContent, st.st_mtim}});
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + 120 * round));
    ::kill(*pid, SIGKILL);
    stop = true;
    writer.join();
    if (openFd >= 0) ::close(openFd);
    ASSERT_TRUE(waitUntil([&] { return !hgvfsProcessAlive(*pid); }, 10s));
    for (auto& [p, f] : done) closed[p] = f;
    if (!fsynced.first.empty()) synced[fsynced.first] = fsynced.second;
    std::vector<std::string> again{"mount"};
    again.insert(again.end(), GetParam().begin(), GetParam().end());
    again.insert(again.end(), {repo, mnt});
    CommandResult remount = hgvfs(again);
    ASSERT_EQ(remount.exitCode, 0) << describe(remount);
    size_t wrong = 0;
    for (const auto& [p, f] : closed) {
      auto got = readWhole(mnt + "/" + p);
      struct stat st {};
      bool statted = ::stat((mnt + "/" + p).c_str(), &st) == 0;
      bool sameTime =
          statted && st.st_mtim.tv_sec == f.mtime.tv_sec && st.st_mtim.tv_nsec == f.mtime.tv_nsec;
      // The appended file may hold one more line: its write went through
      // but its close did not return before the kill.
      if (got && p.ends_with("/log") && got->size() > f.content.size() &&
          got->starts_with(f.content) && got->find('\n', f.content.size()) == got->size() - 1) {
        continue;
      }
      if (!got || *got != f.content || !sameTime) {
        if (++wrong <= 5) {
          ADD_FAILURE() << "round " << round << ": " << p << " is "
                        << (!got ? std::string("missing")
                            : *got != f.content
                                ? "different (" + std::to_string(got->size()) + " bytes, not " +
                                      std::to_string(f.content.size()) + ")"
                                : "whole, but its mtime is " + std::to_string(st.st_mtim.tv_sec) +
                                      "." + std::to_string(st.st_mtim.tv_nsec) + ", not " +
                                      std::to_string(f.mtime.tv_sec) + "." +
                                      std::to_string(f.mtime.tv_nsec));
        }
      }
    }
    EXPECT_EQ(wrong, 0u) << "of " << closed.size() << " closed files";
    for (const auto& [p, content] : synced) {
      EXPECT_EQ(readWhole(mnt + "/" + p).value_or("(missing)"), content) << "fsynced " << p;
    }
    unmount(mnt);
  }
  EXPECT_GT(closed.size(), 10u) << "the writer hardly got a file through";
  EXPECT_GT(synced.size(), 0u) << "no file was fsynced before a kill";
}

INSTANTIATE_TEST_SUITE_P(WritebackCache, KilledDaemonTest,
                         ::testing::Values(std::vector<std::string>{"--writeback-cache"},
                                           std::vector<std::string>{}),
                         [](const auto& info) { return info.param.empty() ? "Off" : "On"; });

// utime() after buffered writes: the time set sticks, in the mount and
// after remounting, whether the file was still open (its pages dirty) or
// already closed, and later flushes of the kernel's cached mtime do not
// replace it (`hg diff` prints it; tests/integration/hg_commands.py copies
// mtimes this way). The same steps on a plain directory give the same
// times.
class TimesTest : public WriteTest,
                  public ::testing::WithParamInterface<std::vector<std::string>> {};

TEST_P(TimesTest, TimesSetAfterBufferedWritesStick) {
  std::string repo = fixture("basic");
  std::string mnt = mount(repo, path("mnt"), {}, GetParam());
  std::string plain = plainCopy(repo, "tip");
  const struct timespec kSet[2] = {{1600000000, 123456789}, {1600000000, 987654321}};
  auto steps = [&](const std::string& root) -> std::vector<struct timespec> {
    std::vector<struct timespec> seen;
    auto stamp = [&](const std::string& name) {
      struct stat st {};
      EXPECT_EQ(::stat((root + "/" + name).c_str(), &st), 0) << root << "/" << name;
      seen.push_back(st.st_mtim);
    };
    // Open, write, set the times while the pages are dirty, close.
    int fd = ::open((root + "/README").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    EXPECT_GE(fd, 0) << errnoName(errno);
    EXPECT_EQ(::write(fd, "more\n", 5), 5);
    EXPECT_EQ(::utimensat(AT_FDCWD, (root + "/README").c_str(), kSet, 0), 0);
    EXPECT_EQ(::close(fd), 0);
    stamp("README");
    // Write and close, then set the times; then writes around a futimens
    // on one descriptor, closed, then the times again.
    writeFile(root + "/fresh", std::string(10000, 'f'));
    EXPECT_EQ(::utimensat(AT_FDCWD, (root + "/fresh").c_str(), kSet, 0), 0);
    stamp("fresh");
    fd = ::open((root + "/fresh").c_str(), O_WRONLY | O_CLOEXEC);
    EXPECT_EQ(::pwrite(fd, "g", 1, 4097), 1);
    EXPECT_EQ(::futimens(fd, kSet), 0);
    EXPECT_EQ(::pwrite(fd, "h", 1, 8000), 1);  // after the set: the time moves on
    EXPECT_EQ(::close(fd), 0);
    struct stat moved {};
    EXPECT_EQ(::stat((root + "/fresh").c_str(), &moved), 0);
    EXPECT_GT(moved.st_mtim.tv_sec, kSet[1].tv_sec) << "a write after utime moves mtime";
    EXPECT_EQ(::utimensat(AT_FDCWD, (root + "/fresh").c_str(), kSet, 0), 0);
    stamp("fresh");
    ::sync();
    stamp("README");
    stamp("fresh");
    return seen;
  };
  std::vector<struct timespec> want = steps(plain);
  std::vector<struct timespec> got = steps(mnt);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].tv_sec, want[i].tv_sec) << "stamp " << i;
    EXPECT_EQ(got[i].tv_nsec, want[i].tv_nsec) << "stamp " << i;
  }
  unmount(mnt);
  mount(repo, mnt, {}, GetParam());
  for (const char* name : {"README", "fresh"}) {
    struct stat st {};
    ASSERT_EQ(::stat((mnt + "/" + name).c_str(), &st), 0);
    EXPECT_EQ(st.st_mtim.tv_sec, kSet[1].tv_sec) << name << " after remount";
    EXPECT_EQ(st.st_mtim.tv_nsec, kSet[1].tv_nsec) << name << " after remount";
    EXPECT_EQ(st.st_atim.tv_sec, kSet[0].tv_sec) << name << " after remount";
  }
  EXPECT_EQ(readWhole(mnt + "/fresh").value_or("").size(), 10000u);
}

INSTANTIATE_TEST_SUITE_P(WritebackCache, TimesTest,
                         ::testing::Values(std::vector<std::string>{"--writeback-cache"},
                                           std::vector<std::string>{}),
                         [](const auto& info) { return info.param.empty() ? "Off" : "On"; });

// Extended attributes and device nodes are in the overlay once the call
// returned: a SIGKILLed daemon keeps them, through renames and removals.
TEST_F(WriteTest, KilledDaemonKeepsXattrsAndDeviceNodes) {
  std::string repo = fixture("basic");
  std::string mnt = path("mnt");
  auto getx = [](const std::string& p, const char* name) -> std::string {
    char buf[256];
    ssize_t n = ::lgetxattr(p.c_str(), name, buf, sizeof buf);
    return n < 0 ? "errno " + std::to_string(errno) : std::string(buf, static_cast<size_t>(n));
  };
  auto kill = [&] { ASSERT_NO_FATAL_FAILURE(killAndRemount(repo, mnt)); };
  mount(repo, mnt);
  std::string tracked = mnt + "/README";  // from the revision: not materialized yet
  auto trackedBefore = readWhole(tracked);
  ASSERT_TRUE(trackedBefore);
  ASSERT_EQ(::setxattr(tracked.c_str(), "user.tracked", "t1", 2, 0), 0) << errno;
  ASSERT_EQ(::setxattr(mnt.c_str(), "user.root", "r", 1, 0), 0) << errno;
  ASSERT_EQ(::mkdir((mnt + "/d").c_str(), 0755), 0);
  ASSERT_EQ(::setxattr((mnt + "/d").c_str(), "trusted.dir", "dv", 2, 0), 0) << errno;
  writeFile(mnt + "/d/new", "content");
  ASSERT_EQ(::setxattr((mnt + "/d/new").c_str(), "security.s", "sv", 2, 0), 0) << errno;
  writeFile(mnt + "/gone", "x");
  ASSERT_EQ(::setxattr((mnt + "/gone").c_str(), "user.g", "g", 1, 0), 0) << errno;
  ASSERT_EQ(::mknod((mnt + "/chr").c_str(), S_IFCHR | 0640, makedev(1, 3)), 0) << errno;
  ASSERT_EQ(::mknod((mnt + "/d/blk").c_str(), S_IFBLK | 0600, makedev(259, 70000)), 0) << errno;
  ASSERT_EQ(::mkfifo((mnt + "/fifo").c_str(), 0640), 0) << errno;
  kill();

  EXPECT_EQ(getx(tracked, "user.tracked"), "t1");
  EXPECT_EQ(readWhole(tracked), trackedBefore);
  EXPECT_EQ(getx(mnt, "user.root"), "r");
  EXPECT_EQ(getx(mnt + "/d", "trusted.dir"), "dv");
  EXPECT_EQ(getx(mnt + "/d/new", "security.s"), "sv");
  EXPECT_EQ(getx(mnt + "/gone", "user.g"), "g");
  struct stat st {};
  ASSERT_EQ(::lstat((mnt + "/chr").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  ASSERT_EQ(::lstat((mnt + "/d/blk").c_str(), &st), 0);
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(259, 70000));
  ASSERT_EQ(::lstat((mnt + "/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));

  // Renamed, they keep them; removed, they go; then killed again.
  ASSERT_EQ(::rename((mnt + "/d").c_str(), (mnt + "/moved").c_str()), 0);
  ASSERT_EQ(::rename(tracked.c_str(), (mnt + "/README.moved").c_str()), 0);
  ASSERT_EQ(::removexattr((mnt + "/moved/new").c_str(), "security.s"), 0) << errno;
  ASSERT_EQ(::unlink((mnt + "/gone").c_str()), 0);
  writeFile(mnt + "/gone", "again");
  kill();
  EXPECT_EQ(getx(mnt + "/README.moved", "user.tracked"), "t1");
  EXPECT_EQ(getx(mnt + "/moved", "trusted.dir"), "dv");
  EXPECT_EQ(getx(mnt + "/moved/new", "security.s"), "errno " + std::to_string(ENODATA));
  EXPECT_EQ(getx(mnt + "/gone", "user.g"), "errno " + std::to_string(ENODATA));
  ASSERT_EQ(::lstat((mnt + "/moved/blk").c_str(), &st), 0);
  EXPECT_EQ(st.st_rdev, makedev(259, 70000));
  unmount(mnt);
}

// Hard links are in the overlay once link() returned: a SIGKILLed daemon
// keeps every name, the count and the shared content; one name removed
// before a kill leaves the others their file.
TEST_F(WriteTest, KilledDaemonKeepsHardLinks) {
  std::string repo = fixture("basic");
  std::string mnt = path("mnt");
  auto kill = [&] { ASSERT_NO_FATAL_FAILURE(killAndRemount(repo, mnt)); };
  auto nlinkOf = [](const std::string& p) -> long {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0 ? static_cast<long>(st.st_nlink) : -errno;
  };
  auto inoOf = [](const std::string& p) -> ino_t {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0 ? st.st_ino : 0;
  };
  mount(repo, mnt);
  std::string tracked = mnt + "/README";  // from the revision: not materialized yet
  auto before = readWhole(tracked);
  ASSERT_TRUE(before);
  ASSERT_EQ(::mkdir((mnt + "/d").c_str(), 0755), 0);
  ASSERT_EQ(::link(tracked.c_str(), (mnt + "/d/readme").c_str()), 0) << errno;
  ASSERT_EQ(::link(tracked.c_str(), (mnt + "/third").c_str()), 0) << errno;
  writeFile(mnt + "/new", "new file");
  ASSERT_EQ(::link((mnt + "/new").c_str(), (mnt + "/d/new-link").c_str()), 0) << errno;
  kill();

  EXPECT_EQ(nlinkOf(tracked), 3);
  EXPECT_EQ(nlinkOf(mnt + "/d/readme"), 3);
  EXPECT_EQ(inoOf(mnt + "/third"), inoOf(tracked));
  EXPECT_EQ(readWhole(mnt + "/d/readme"), before);
  EXPECT_EQ(nlinkOf(mnt + "/d/new-link"), 2);
  EXPECT_EQ(readWhole(mnt + "/d/new-link"), std::optional<std::string>("new file"));

  // A write through one name, one name removed, another renamed; killed
  // again.
  {
    int fd = ::open((mnt + "/third").c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0) << errno;
    ASSERT_EQ(::write(fd, "more\n", 5), 5);
    ASSERT_EQ(::close(fd), 0);
  }
  ASSERT_EQ(::unlink(tracked.c_str()), 0);
  ASSERT_EQ(::rename((mnt + "/d/readme").c_str(), (mnt + "/renamed").c_str()), 0);
  ASSERT_EQ(::unlink((mnt + "/new").c_str()), 0);
  kill();
  EXPECT_EQ(nlinkOf(tracked), -ENOENT);
  EXPECT_EQ(nlinkOf(mnt + "/renamed"), 2);
  EXPECT_EQ(readWhole(mnt + "/renamed"), *before + "more\n");
  EXPECT_EQ(readWhole(mnt + "/third"), *before + "more\n");
  EXPECT_EQ(nlinkOf(mnt + "/d/new-link"), 1);
  EXPECT_EQ(readWhole(mnt + "/d/new-link"), std::optional<std::string>("new file"));
  unmount(mnt);
}

TEST_F(WriteTest, FullOverlayDiskGivesENOSPCAndKeepsEarlierData) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs";
  std::string repo = fixture("basic");
  // $HGVFS_HOME on a 16 MiB tmpfs: the overlay fills it.
  std::string small = makeDir("small");
  ASSERT_EQ(::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=16m"), 0) << errnoName(errno);
  struct Unmount {
    std::string p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmountSmall{small};
  ::setenv("HGVFS_HOME", (small + "/home").c_str(), 1);
  std::string mnt = mount(repo, path("mnt"));
  std::string keep(1 << 20, 'k');
  writeFile(mnt + "/kept", keep);
  std::string chunk(1 << 20, 'x');
  int fd = ::open((mnt + "/filler").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  int err = 0;
  for (int i = 0; i < 64; ++i) {
    if (::write(fd, chunk.data(), chunk.size()) < 0) {
      err = errno;
      break;
    }
  }
  ::close(fd);
  EXPECT_EQ(err, ENOSPC) << errnoName(err);
  // Creating more entries fails cleanly too, or succeeds; never crashes.
  for (int i = 0; i < 50; ++i) {
    int f =
        ::open((mnt + "/more" + std::to_string(i)).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (f >= 0) ::close(f);
  }
  EXPECT_EQ(readWhole(mnt + "/kept").value_or(""), keep);
  EXPECT_EQ(listedState(mnt), "mounted");
  // Space freed: writes work again.
  ASSERT_EQ(::unlink((mnt + "/filler").c_str()), 0);
  writeFile(mnt + "/after", "ok");
  EXPECT_EQ(readWhole(mnt + "/after").value_or(""), "ok");
  unmount(mnt);
  mount(repo, mnt);
  EXPECT_EQ(readWhole(mnt + "/kept").value_or(""), keep);
  unmount(mnt);
}

TEST_F(WriteTest, RemountWithAnotherRevisionIsRefusedWhileThereAreChanges) {
  std::string repo = fixture("basic");
  std::string mnt = mount(repo, path("mnt"), "0");
  ASSERT_EQ(shell("echo x >> " + q(mnt + "/README")).exitCode, 0);
  unmount(mnt);
  CommandResult r = hgvfs({"mount", "--rev", "tip", repo, mnt});
  EXPECT_NE(r.exitCode, 0) << describe(r);
  EXPECT_NE(r.err.find("has changes made on revision"), std::string::npos) << describe(r);
  // Without --rev, the client's own revision comes back with its change.
  mount(repo, mnt);
  EXPECT_NE(readWhole(mnt + "/README").value_or("").find("x\n"), std::string::npos);
}

}  // namespace
}  // namespace hgvfs::test
