// `hgvfs status` and the control socket on real mounts: the same operations
// in a normal checkout made by stock hg and in the mount give byte-identical
// `hg status` / `hgvfs status` output, also after unmount + mount and after
// the daemon was killed; the socket is private and survives bad requests.
// (The long randomized comparison is tests/integration/status_differential.)

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "control/protocol.h"
#include "tests/support/mount_support.h"

namespace hgvfs::test {
namespace {

class StatusTest : public MountFixture {
 protected:
  // A repository with directories, an exec file, a symlink and .hgignore,
  // two revisions; a normal checkout of it, and a mount.
  void SetUp() override {
    MountFixture::SetUp();
    repo_ = path("repo");
    ASSERT_EQ(hg({"init", repo_}).exitCode, 0);
    std::string script =
        "cd " + q(repo_) +
        " && mkdir -p src/lib docs build && echo one > src/a.c && echo two > src/lib/b.c"
        " && echo readme > docs/README && printf '#!/bin/sh\\n' > run.sh && chmod +x run.sh"
        " && ln -s docs/README link && printf 'syntax: glob\\n*.o\\nbuild/\\n' > .hgignore"
        " && /usr/bin/hg -q commit -A -m one && echo three >> src/a.c && echo new > src/new.c"
        " && /usr/bin/hg -q commit -A -m two";
    CommandResult r = shell(script);
    ASSERT_EQ(r.exitCode, 0) << describe(r);
    checkout_ = path("checkout");
    ASSERT_EQ(hg({"clone", "-q", repo_, checkout_}).exitCode, 0);
    mnt_ = mount(repo_, path("mnt"));
  }

  void inBoth(const std::string& script) {
    for (const auto& root : {mnt_, checkout_}) {
      CommandResult r = shell("export HGPLAIN=1 HGUSER=test; cd " + q(root) + " && " + script);
      ASSERT_EQ(r.exitCode, 0) << "in " << root << ": " << script << "\n" << describe(r);
    }
  }

  // hg status in the checkout = hgvfs status and hg status in the mount.
  void expectSameStatus(const std::string& what, const std::string& flags = "-A -C",
                        const std::string& sub = "") {
    std::string hgCmd = "export HGPLAIN=1; cd %s" + sub + " && /usr/bin/hg status " + flags;
    auto in = [&](const std::string& root, const std::string& cmd) {
      std::string s = cmd;
      s.replace(s.find("%s"), 2, q(root));
      return shell(s);
    };
    CommandResult want = in(checkout_, hgCmd);
    ASSERT_EQ(want.exitCode, 0) << describe(want);
    CommandResult mine = in(mnt_, "cd %s" + sub + " && " + q(kHgvfs) + " status " + flags);
    EXPECT_EQ(mine.exitCode, 0) << what << ": " << describe(mine);
    EXPECT_EQ(mine.out, want.out) << what << ": hgvfs status " << flags;
    CommandResult stock = in(mnt_, hgCmd);
    EXPECT_EQ(stock.out, want.out) << what << ": hg status " << flags << " in the mount\n"
                                   << stock.err;
  }

  std::string repo_, checkout_, mnt_;
};

TEST_F(StatusTest, MatchesANormalCheckoutThroughEdits) {
  expectSameStatus("fresh mount");
  inBoth(
      "echo more >> src/a.c && echo x > untracked.txt && echo o > src/a.o && mkdir -p build "
      "&& echo b > build/out && rm docs/README && chmod -x run.sh");
  expectSameStatus("after edits");
  expectSameStatus("after edits, ignored", "-i");
  expectSameStatus("after edits, -mardu -n", "-mardu -n");
  expectSameStatus("after edits, json", "-A -C -T json");
  expectSameStatus("after edits, -0", "-0 -C");
  expectSameStatus("in a subdirectory", "-A", "/src");
  expectSameStatus("with a pattern", "-A lib ../docs", "/src");
  expectSameStatus("against revision 0", "--rev 0 -mardui");
  inBoth(
      "/usr/bin/hg add -q untracked.txt && /usr/bin/hg cp src/a.c src/copy.c && "
      "/usr/bin/hg rm -q src/lib/b.c && /usr/bin/hg forget -q src/new.c && "
      "/usr/bin/hg mv -q run.sh run2.sh");
  expectSameStatus("after add, copy, rm, forget, mv");
  expectSameStatus("after add, copy, rm, forget, mv, against revision 0", "--rev 0 -mardui");
  expectSameStatus("after add, copy, rm, forget, mv, clean too", "--rev 0 -mardc");
  inBoth("echo one > src/a.c.tmp && mv src/a.c.tmp src/a.c");  // back to revision 0's bytes
  expectSameStatus("after an editor-style save");
  inBoth("/usr/bin/hg revert -q --all && rm -f src/copy.c run2.sh untracked.txt");
  expectSameStatus("after revert");
  inBoth("/usr/bin/hg -q update 0");
  expectSameStatus("after update to revision 0");
  expectSameStatus("after update to revision 0, against tip", "--rev tip -mardu");
  inBoth("echo edit >> docs/README && /usr/bin/hg -q commit -m three && /usr/bin/hg -q update 1");
  expectSameStatus("after a commit and an update");
  inBoth("printf 'syntax: glob\\n*.c\\n' > .hgignore && echo z > src/z.c");
  expectSameStatus("after .hgignore changed");
}

// The tracked set is the dirstate's, not p1's manifest: a file removed and
// kept removed across an update that changes it (hg's "local removed, other
// changed" answered with :local) is in p1 but untracked.
TEST_F(StatusTest, FilesOfP1TheDirstateDropsAreUntracked) {
  inBoth("/usr/bin/hg -q update 0 && /usr/bin/hg -q rm src/a.c");
  expectSameStatus("after hg rm at revision 0");
  inBoth("/usr/bin/hg -q update --tool :local -r 1");
  expectSameStatus("after an update that keeps the removal");
  expectSameStatus("the same, against revision 0", "--rev 0 -mardui");
  // Back on disk with p1's bytes: unknown, not clean or modified.
  inBoth("/usr/bin/hg cat -r 1 src/a.c > src/a.c");
  expectSameStatus("the file back with p1's bytes");
  expectSameStatus("the same, against revision 1", "--rev 1 -mardui");
  inBoth("echo edited > src/a.c");
  expectSameStatus("the file back with other bytes");
  inBoth("printf 'syntax: glob\\n*.c\\n' > .hgignore");
  expectSameStatus("the file ignored", "-A -C -i");
  // A later update and commit behave as in the checkout.
  inBoth("rm src/a.c && /usr/bin/hg -q update -r 0 && /usr/bin/hg -q update -r 1");
  expectSameStatus("after updating away and back");
}

// A client made before the mount's dirstate format (docs/DIRSTATE.md) holds
// a full v1 dirstate and no requirement. The checkout's dirstate after the
// same operations is exactly such a file: the next mount converts it (and
// the log says so), keeps every change, and lists only those afterwards. A
// conversion cut off after the requirement was added is finished by the
// next mount.
TEST_F(StatusTest, AClientFromBeforeTheSmallDirstateIsConverted) {
  inBoth(
      "/usr/bin/hg -q update 0 && /usr/bin/hg -q rm src/a.c && "
      "/usr/bin/hg -q update --tool :local -r 1");
  inBoth(
      "echo x > added.txt && /usr/bin/hg add -q added.txt && /usr/bin/hg cp -q src/new.c "
      "copy.c && /usr/bin/hg rm -q docs/README && echo more >> src/lib/b.c");
  expectSameStatus("before");
  unmount(mnt_);
  std::string client = daemon::clientDirectoryFor(mnt_);
  std::string dotHg = client + "/dot-hg";
  auto reqs = readWhole(dotHg + "/requires");
  ASSERT_TRUE(reqs);
  ASSERT_NE(reqs->find("hgvfs-dirstate\n"), std::string::npos) << *reqs;
  // The previous release's client: its requires and a full dirstate.
  CommandResult old = shell("cp " + q(checkout_ + "/.hg/dirstate") + " " + q(dotHg + "/dirstate") +
                            " && sed -i '/^hgvfs-dirstate$/d' " + q(dotHg + "/requires"));
  ASSERT_EQ(old.exitCode, 0) << describe(old);
  auto full = readWhole(dotHg + "/dirstate");
  ASSERT_TRUE(full);
  mount(repo_, mnt_);
  reqs = readWhole(dotHg + "/requires");
  ASSERT_TRUE(reqs);
  EXPECT_NE(reqs->find("hgvfs-dirstate\n"), std::string::npos) << *reqs;
  expectSameStatus("after the conversion");
  expectSameStatus("after the conversion, against revision 0", "--rev 0 -mardui");
  CommandResult debug = shell("cd " + q(mnt_) + " && /usr/bin/hg debugdirstate --no-dates");
  ASSERT_EQ(debug.exitCode, 0) << describe(debug);
  std::set<std::string> listed;
  std::istringstream lines(debug.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("copy: ", 0) == 0) {
      listed.insert(line);
    } else {
      listed.insert(line.substr(0, 1) + " " + line.substr(line.rfind(' ') + 1));
    }
  }
  EXPECT_EQ(listed, (std::set<std::string>{"a added.txt", "a copy.c", "r docs/README", "u src/a.c",
                                           "copy: src/new.c -> copy.c"}))
      << debug.out;

  // Cut off after the requirement: the full file in place, the converted
  // one pending beside it.
  unmount(mnt_);
  // The log is complete once the daemon ended.
  auto log = readWhole(daemon::logFile(client));
  ASSERT_TRUE(log);
  // Seven files in p1, src/a.c untracked: the checkout lists the other six
  // plus added.txt and copy.c; kept: the two adds and the removal.
  EXPECT_NE(log->find("converted the dirstate to the hgvfs format (docs/DIRSTATE.md): kept 3 of "
                      "8 entries, 1 files of p1 untracked"),
            std::string::npos)
      << *log;
  CommandResult cut =
      shell("cp " + q(dotHg + "/dirstate") + " " + q(dotHg + "/dirstate.hgvfs-new") + " && cp " +
            q(checkout_ + "/.hg/dirstate") + " " + q(dotHg + "/dirstate"));
  ASSERT_EQ(cut.exitCode, 0) << describe(cut);
  mount(repo_, mnt_);
  EXPECT_FALSE(readWhole(dotHg + "/dirstate.hgvfs-new")) << "the pending file stayed";
  expectSameStatus("after a cut-off conversion was finished");
  CommandResult again = shell("cd " + q(mnt_) + " && /usr/bin/hg debugdirstate --no-dates | wc -l");
  EXPECT_EQ(again.out, "5\n") << describe(again);
  EXPECT_NE(full->size(), readWhole(dotHg + "/dirstate").value_or("").size());
}

// `hg debugsetparents` moves the parents without touching files: the
// tracked set is then the dirstate's, which lists files p1 lacks, and
// misses files p1 has (docs/DIRSTATE.md: explicit n entries and u ones).
TEST_F(StatusTest, TheTrackedSetFollowsDebugsetparents) {
  inBoth("echo more >> src/a.c && /usr/bin/hg -q debugsetparents 0");
  expectSameStatus("after debugsetparents 0");
  expectSameStatus("after debugsetparents 0, clean too", "-A -C -c");
  inBoth("/usr/bin/hg -q debugsetparents 1 0");
  expectSameStatus("after debugsetparents 1 0");
  inBoth("/usr/bin/hg -q debugsetparents 1 && /usr/bin/hg -q debugrebuilddirstate");
  expectSameStatus("after debugsetparents 1 and a rebuild");
  inBoth("/usr/bin/hg -q commit -m three");
  expectSameStatus("after a commit");
}

// After `hg commit` in the mount, the committed files equal the new p1:
// the next status gives them back their revision's identity (no overlay
// file), keeping their bytes and inode numbers; the uncommitted change
// stays. Status keeps matching the checkout's, also after more edits.
TEST_F(StatusTest, CommittedFilesLeaveTheOverlay) {
  inBoth("echo more >> src/a.c && echo edit >> docs/README && echo x > untracked.txt");
  expectSameStatus("before the commit");
  auto overlayFiles = [&] {
    size_t count = 0;
    std::string files = daemon::overlayDirectory(daemon::clientDirectoryFor(mnt_)) + "/files";
    for (const auto& e : std::filesystem::recursive_directory_iterator(files)) {
      if (e.is_regular_file()) ++count;
    }
    return count;
  };
  EXPECT_EQ(overlayFiles(), 3u);
  struct stat before {};
  ASSERT_EQ(::stat((mnt_ + "/src/a.c").c_str(), &before), 0);
  auto bytes = readWhole(mnt_ + "/src/a.c");
  ASSERT_TRUE(bytes);
  inBoth("/usr/bin/hg commit -q -m three src/a.c");
  expectSameStatus("after the commit");  // the first status dematerializes
  EXPECT_EQ(overlayFiles(), 2u) << "src/a.c should have left the overlay";
  struct stat after {};
  ASSERT_EQ(::stat((mnt_ + "/src/a.c").c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_EQ(after.st_size, before.st_size);
  EXPECT_EQ(readWhole(mnt_ + "/src/a.c"), bytes);
  inBoth("echo again >> src/a.c");
  expectSameStatus("src/a.c edited again");
  EXPECT_EQ(overlayFiles(), 3u);
  inBoth("/usr/bin/hg revert -q --no-backup src/a.c");
  expectSameStatus("src/a.c reverted");
  unmount(mnt_);
  mount(repo_, mnt_);
  expectSameStatus("after a remount");
  EXPECT_EQ(readWhole(mnt_ + "/src/a.c"), bytes);
}

// hg reads .hgignore before its walk when it lists unknown files, but only
// at the first untracked file when it lists ignored ones: a broken rule
// aborts `hg status` but not `hg status -A` while nothing is untracked.
TEST_F(StatusTest, ABrokenHgignoreFailsWhereHgReadsIt) {
  inBoth("printf '*.o\\n' > .hgignore");  // "*.o" is no regular expression
  auto run3 = [&](const std::string& flags, const std::string& what) {
    auto in = [&](const std::string& root, const std::string& cmd) {
      CommandResult r = shell("export HGPLAIN=1; cd " + q(root) + " && " + cmd + " " + flags);
      for (std::string* text : {&r.out, &r.err}) {
        for (size_t at; (at = text->find(root)) != std::string::npos;)
          text->replace(at, root.size(), "ROOT");
      }
      return r;
    };
    CommandResult want = in(checkout_, "/usr/bin/hg status");
    for (const auto& [name, mine] :
         {std::pair{"hg status in the mount", in(mnt_, "/usr/bin/hg status")},
          std::pair{"hgvfs status", in(mnt_, q(kHgvfs) + " status")}}) {
      EXPECT_EQ(mine.exitCode, want.exitCode) << what << ": " << name << " " << flags;
      EXPECT_EQ(mine.out, want.out) << what << ": " << name << " " << flags;
      if (std::string(name) == "hgvfs status" && want.exitCode != 0) {
        // hgvfs words a bad regular expression its own way (with the line
        // and Python's reason); it names the same file and pattern.
        EXPECT_NE(mine.err.find("ROOT/.hgignore"), std::string::npos) << mine.err;
        EXPECT_NE(mine.err.find("invalid pattern (relre): *.o"), std::string::npos) << mine.err;
      } else {
        EXPECT_EQ(mine.err, want.err) << what << ": " << name << " " << flags;
      }
    }
    return want.exitCode;
  };
  EXPECT_EQ(run3("-A", "nothing untracked"), 0);
  EXPECT_EQ(run3("-i", "nothing untracked"), 0);
  EXPECT_NE(run3("", "nothing untracked"), 0);
  inBoth("echo x > untracked.txt");
  EXPECT_NE(run3("-A", "an untracked file"), 0);
  EXPECT_NE(run3("-i", "an untracked file"), 0);
}

TEST_F(StatusTest, SurvivesRemountAndAKilledDaemon) {
  inBoth(
      "echo more >> src/a.c && echo x > untracked.txt && /usr/bin/hg cp -q src/a.c c2.c && "
      "rm link");
  expectSameStatus("before");
  unmount(mnt_);
  mount(repo_, mnt_);
  expectSameStatus("after unmount and mount");
  auto pid = daemonPidFor(mnt_);
  ASSERT_TRUE(pid);
  ::kill(*pid, SIGKILL);
  ASSERT_TRUE(waitUntil([&] { return !hgvfsProcessAlive(*pid); }, 10s));
  CommandResult again = hgvfs({"mount", repo_, mnt_});
  ASSERT_EQ(again.exitCode, 0) << describe(again);
  expectSameStatus("after SIGKILL and mount");
}

// The control socket: private, and a bad request gets an error reply.
TEST_F(StatusTest, ControlSocketIsPrivateAndRefusesBadRequests) {
  std::string socket = control::socketPath(daemon::clientDirectoryFor(mnt_));
  struct stat st {};
  ASSERT_EQ(::lstat(socket.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  auto ask = [&](const std::string& line) {
    std::string req = line + "\n";
    EXPECT_EQ(::write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
    std::string reply;
    char c;
    while (::read(fd, &c, 1) == 1 && c != '\n') reply.push_back(c);
    return reply;
  };
  EXPECT_NE(ask("this is not json").find("\"ok\":false"), std::string::npos);
  EXPECT_NE(ask("[1,2,3]").find("\"ok\":false"), std::string::npos);
  EXPECT_NE(ask("{\"op\":\"status\"}").find("no version"), std::string::npos);
  std::string v2 = ask("{\"version\":2,\"op\":\"status\"}");
  EXPECT_NE(v2.find("protocol version 2 is not supported (the daemon speaks 1)"), std::string::npos)
      << v2;
  EXPECT_NE(ask("{\"version\":1,\"op\":\"frobnicate\"}").find("unknown op"), std::string::npos);
  EXPECT_NE(ask("{\"version\":1,\"op\":\"status\",\"clean\":\"yes\"}").find("\"ok\":false"),
            std::string::npos);
  std::string ok = ask("{\"version\":1,\"op\":\"status\"}");
  EXPECT_NE(ok.find("\"ok\":true"), std::string::npos) << ok;
  ::close(fd);
  // Still serving, and the mount too.
  expectSameStatus("after bad requests");
}

TEST_F(StatusTest, OutsideAMountIsAClearError) {
  CommandResult r = shell("cd " + q(checkout_) + " && " + q(kHgvfs) + " status");
  EXPECT_NE(r.exitCode, 0);
  EXPECT_NE(r.err.find("not inside an hgvfs mount"), std::string::npos) << describe(r);
}

TEST_F(StatusTest, PathBytesTravelIntact) {
  inBoth(
      "printf x > \"$(printf 'caf\\xe9')\" && printf y > \"$(printf 'utf8-\\xc3\\xa9')\" && "
      "printf z > 'quote\"back\\slash'");
  expectSameStatus("non-UTF-8, UTF-8 and escaped names");
  expectSameStatus("the same as json", "-T json");
}

}  // namespace
}  // namespace hgvfs::test
