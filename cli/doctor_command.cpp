#include "cli/doctor_command.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/hgrc.h"
#include "base/io.h"
#include "base/mountinfo.h"
#include "cli/mount_commands.h"
#include "control/client.h"
#include "control/protocol.h"
#include "daemon/client_dir.h"
#include "daemon/daemon.h"
#include "fs/overlay.h"
#include "hgbridge/repository.h"
#include "store/object_store.h"

extern char** environ;

namespace hgvfs::cli {
namespace {

struct Finding {
  std::string what;
  std::string fix;   // what --fix does; empty: nothing can be done automatically
  std::string hint;  // what the user can do when --fix cannot
  bool fixed = false;
  std::string failure;  // why --fix failed
};

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// Runs argv with stdout and stderr to /dev/null; true when it exits 0.
bool runQuietly(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return false;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// The parents at the start of a dirstate (docs/DIRSTATE.md: v1's header).
std::optional<std::pair<hg::Node, hg::Node>> dirstateParents(const std::string& path) {
  auto data = readFile(path);
  if (!data.ok()) return std::nullopt;
  if (data->empty()) return std::make_pair(hg::Node(), hg::Node());
  if (data->size() < 2 * hg::Node::kSize) return std::nullopt;
  return std::make_pair(hg::Node::fromRaw(data->data()),
                        hg::Node::fromRaw(data->data() + hg::Node::kSize));
}

// A mount whose daemon is gone: statfs always reaches the daemon (stat may
// be answered from the kernel's cache).
bool isDead(const std::string& mountPoint) {
  struct statfs sfs;
  return ::statfs(mountPoint.c_str(), &sfs) != 0 && (errno == ENOTCONN || errno == ECONNABORTED);
}

class ClientDoctor {
 public:
  ClientDoctor(daemon::ClientConfig client, bool fix) : c_(std::move(client)), fix_(fix) {}

  std::vector<Finding> run() {
    checkMount();
    checkRepository();
    checkHgrc();
    checkOverlay();
    checkParents();
    if (remount_) remount();
    checkUpdateState();
    return std::move(findings_);
  }

 private:
  std::string dotHg() const { return c_.directory + "/dot-hg"; }

  Finding& add(std::string what, std::string fix, std::string hint = {}) {
    findings_.push_back({std::move(what), std::move(fix), std::move(hint), false, {}});
    return findings_.back();
  }

  void checkMount() {
    pid_ = daemon::runningDaemon(c_.directory);
    bool mounted = isHgvfsMountAt(c_.mountPoint);
    bool dead = false;
    if (mounted) {
      struct statfs sfs;
      dead = ::statfs(c_.mountPoint.c_str(), &sfs) != 0 &&
             (errno == ENOTCONN || errno == ECONNABORTED);
    }
    if (dead) {
      Finding& f = add("dead mount: its daemon is gone (Transport endpoint is not connected)",
                       "unmount it, repair the client, and mount it again");
      if (!fix_) return;
      bool lazy = false;
      std::string why = unmountAt(c_.mountPoint, &lazy);
      if (!why.empty()) {
        f.failure = "cannot unmount: " + why;
        return;
      }
      remount_ = true;  // fixed once mounted again
      return;
    }
    if (!mounted && pid_) {
      Finding& f = add("the daemon (pid " + std::to_string(*pid_) + ") runs but nothing is mounted",
                       "stop that daemon");
      if (!fix_) return;
      ::kill(*pid_, SIGTERM);
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (daemon::runningDaemon(c_.directory) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (daemon::runningDaemon(c_.directory)) {
        f.failure = "it did not exit within 10 s";
        return;
      }
      f.fixed = true;
      pid_.reset();
      return;
    }
    live_ = mounted && pid_.has_value();
  }

  void checkRepository() {
    auto repo = hg::Repository::open(c_.repository);
    if (!repo.ok()) {
      add("the repository cannot be opened (moved or gone?): " + repo.error().message(), "",
          "put the repository back at " + c_.repository + ", or remove the client");
      return;
    }
    repo_ = std::shared_ptr<const hg::Repository>(std::move(repo).value());
    if (!repo_->lookup(c_.revision).ok()) {
      add("the repository lacks revision " + c_.revision.substr(0, 12) +
              ", the revision the client was mounted at",
          "", "pull it back into " + c_.repository);
    }
    if (auto parents = dirstateParents(dotHg() + "/dirstate")) {
      for (const hg::Node& p : {parents->first, parents->second}) {
        if (!p.isNull() && !repo_->changelog().revlog().rev(p).ok()) {
          add("the repository lacks revision " + p.shortHex() +
                  ", a parent of the mount's .hg/dirstate",
              "", "pull it back into " + c_.repository);
        }
      }
    }
    checkCache();
  }

  void checkCache() {
    std::string dir = daemon::cacheDirectoryFor(repo_->storePath());
    if (!exists(dir)) return;  // made at the next mount
    auto store = store::ObjectStore::open(repo_, dir);
    if (store.ok()) return;
    Finding& f = add("the object cache " + dir + " cannot be opened: " + store.error().message(),
                     "move it aside and make a new one (it holds only derived data)");
    if (!fix_) return;
    std::string aside = dir + ".broken-" + std::to_string(::time(nullptr));
    if (::rename(dir.c_str(), aside.c_str()) != 0) {
      f.failure = "cannot move it aside: " + std::string(std::strerror(errno));
      return;
    }
    auto fresh = store::ObjectStore::open(repo_, dir);
    if (!fresh.ok()) {
      f.failure = "the new cache cannot be opened either: " + fresh.error().message();
      return;
    }
    f.fixed = true;
    f.fix = "moved aside to " + aside + " (delete it when done) and made a new one";
  }

  // The mount's .hg/hgrc must enable the extension (hg's status and update
  // in the mount go through the daemon only with it) and name the socket.
  void checkHgrc() {
    if (!exists(dotHg() + "/dirstate")) return;  // a read-only client has no .hg
    std::string path = dotHg() + "/hgrc";
    auto hgrc = Hgrc::read(path);
    if (!hgrc.ok()) {
      add("the mount's .hg/hgrc cannot be read: " + hgrc.error().message(), "", "correct " + path);
      return;
    }
    std::string socket = control::socketPath(c_.directory);
    auto ext = hgrc->get("extensions", "hgvfs");
    std::string problem;
    if (!ext) {
      problem = "does not enable the hgvfs extension";
    } else if (!ext->empty() && (*ext)[0] == '!') {
      problem = "disables the hgvfs extension ('hgvfs = " + *ext + "')";
    } else if (!ext->empty() && !exists(*ext)) {
      problem = "enables the hgvfs extension from " + *ext + ", which does not exist";
    } else if (hgrc->get("hgvfs", "socket").value_or("") != socket) {
      problem = "does not name the daemon's socket " + socket;
    }
    if (problem.empty()) return;
    Finding& f = add("the mount's .hg/hgrc " + problem,
                     "append the lines hgvfs mount writes ([extensions] hgvfs, [hgvfs] socket)");
    if (!fix_) return;
    auto text = readFile(path);
    Bytes content = text.ok() ? *text : Bytes();
    if (!content.empty() && content.back() != '\n') content += '\n';
    content += "# Added by hgvfs doctor --fix.\n" + daemon::mountHgrcLines(socket);
    Status written = writeFileAtomically(path, content);
    if (!written.ok()) {
      f.failure = written.error().message();
      return;
    }
    f.fixed = true;
  }

  void checkOverlay() {
    std::string dir = daemon::overlayDirectory(c_.directory);
    if (!exists(dir + "/meta")) return;
    auto overlay = fs::Overlay::open(dir);
    if (!overlay.ok()) {
      add("the overlay cannot be opened: " + overlay.error().message(), "",
          "keep the client directory " + c_.directory + "; nothing reads it");
      return;
    }
    rootChanged_ = (*overlay)->hasDirectory(1);
    if (pid_) return;  // the daemon checks it at mount, and writes it now
    auto found = (*overlay)->examine(fix_, c_.directory + "/lost+found");
    if (!found.ok()) {
      add("the overlay cannot be examined: " + found.error().message(), "");
      return;
    }
    for (auto& o : *found) {
      Finding& f = add(std::string(fs::findingKindName(o.kind)) + ": " + o.what, o.fix);
      f.fixed = o.fixed;
    }
  }

  // hg compares the mount with the dirstate's first parent. The daemon's
  // status answers for the parent it read; and a mount with no change at
  // its root shows exactly the mounted revision, so a parent with another
  // manifest makes every difference between the two look like a change.
  void checkParents() {
    auto parents = dirstateParents(dotHg() + "/dirstate");
    if (!parents) return;
    const hg::Node& p1 = parents->first;
    if (live_) {
      auto client = control::Client::connect(control::socketPath(c_.directory));
      if (!client.ok()) {
        add("the daemon does not answer on its socket: " + client.error().message(), "",
            "hgvfs unmount " + c_.mountPoint + " and mount it again");
      } else {
        control::StatusRequest request;
        request.unknown = false;
        auto reply = client->status(request);
        if (!reply.ok()) {
          add("the daemon cannot answer status: " + reply.error().message(), "",
              "see " + daemon::logFile(c_.directory));
        } else if (reply->p1 != p1.hex()) {
          add("the daemon answers for parent " + reply->p1.substr(0, 12) +
                  " but the mount's .hg/dirstate names " + p1.shortHex(),
              "", "run hg status in the mount, or mount it again");
        }
      }
    }
    if (rootChanged_ || !repo_ || p1.hex() == c_.revision) return;
    auto mounted = repo_->lookup(c_.revision);
    auto parent = repo_->changelog().revlog().rev(p1);
    if (!mounted.ok() || !parent.ok()) return;  // reported above
    auto a = repo_->changeset(*mounted);
    auto b = repo_->changeset(*parent);
    if (a.ok() && b.ok() && a->manifest == b->manifest) return;
    add("the mount's .hg/dirstate names parent " + p1.shortHex() +
            " but the mount holds revision " + c_.revision.substr(0, 12) +
            " unchanged: hg sees every difference between them as a change",
        "", "if the parent was set by mistake: hg debugsetparents " + c_.revision.substr(0, 12));
  }

  void remount() {
    Finding& dead = findings_.front();
    // With the options it was last mounted with; a client from before
    // they were kept: read-only when it has no .hg (a read-only one has no
    // overlay).
    MountArgs args = mountArgsFromOptions(c_.mountOptions);
    if (c_.mountOptions.empty()) args.readOnly = !exists(dotHg() + "/dirstate");
    args.repository = c_.repository;
    args.mountPoint = c_.mountPoint;
    std::fflush(stdout);
    if (mountCommand(args) != 0) {
      dead.failure = "unmounted, but mounting again failed (see above)";
      return;
    }
    dead.fixed = true;
    live_ = true;
  }

  // hg leaves .hg/updatestate (the target's hex) while an update runs; one
  // left behind means the update was interrupted, and hg advises `hg
  // update` to get a consistent checkout.
  void checkUpdateState() {
    auto state = readFile(dotHg() + "/updatestate");
    if (!state.ok()) return;
    std::string target(*state);
    while (!target.empty() && (target.back() == '\n' || target.back() == ' ')) target.pop_back();
    Finding& f =
        add("an update to " + target.substr(0, 12) + " was interrupted (.hg/updatestate)",
            "hg update -r " + target.substr(0, 12) + " in the mount (keeps local changes)");
    if (!fix_) return;
    if (!live_) {
      f.failure = "the mount is not mounted";
      return;
    }
    if (!runQuietly({"hg", "-R", c_.mountPoint, "update", "-r", target})) {
      f.failure = "hg update failed; run it in the mount to see why";
      return;
    }
    f.fixed = !exists(dotHg() + "/updatestate");
    if (!f.fixed) f.failure = "hg update left .hg/updatestate";
  }

  daemon::ClientConfig c_;
  bool fix_;
  std::optional<int> pid_;
  bool live_ = false;
  bool remount_ = false;
  bool rootChanged_ = true;  // unknown until the overlay is read
  std::shared_ptr<const hg::Repository> repo_;
  std::vector<Finding> findings_;
};

// A dead hgvfs mount no client of this $HGVFS_HOME owns (its client
// directory was removed): nothing to mount again, only to unmount.
std::optional<Finding> checkMountWithoutClient(const std::string& mountPoint, bool fix) {
  if (!isHgvfsMountAt(mountPoint) || !isDead(mountPoint)) return std::nullopt;
  Finding f{"dead mount with no client in " + daemon::hgvfsHome(), "unmount it", "", false, {}};
  if (fix) {
    bool lazy = false;
    std::string why = unmountAt(mountPoint, &lazy);
    f.fixed = why.empty();
    f.failure = why;
  }
  return f;
}

}  // namespace

int doctorCommand(const DoctorArgs& args) {
  // Each repair is one line of the report; the layers' own log lines
  // would say it twice.
  spdlog::set_level(spdlog::level::err);
  std::vector<daemon::ClientConfig> clients;
  std::vector<std::pair<std::string, Finding>> unowned;
  auto checkUnowned = [&](const std::string& mountPoint) {
    if (auto f = checkMountWithoutClient(mountPoint, args.fix)) {
      unowned.emplace_back(mountPoint, std::move(*f));
    }
  };
  if (args.mountPoint.empty()) {
    clients = daemon::listClients();
    const std::string ownSource = "hgvfs:" + daemon::hgvfsHome() + "/";
    for (const auto& m : readMountInfo()) {
      if (m.fsType != "fuse.hgvfs") continue;
      // Another $HGVFS_HOME's mount is that home's to check.
      if (m.source != "hgvfs" && m.source.rfind(ownSource, 0) != 0) continue;
      if (!daemon::readClientConfig(daemon::clientDirectoryFor(m.mountPoint)).ok()) {
        checkUnowned(m.mountPoint);
      }
    }
  } else {
    std::string mountPoint = mountPointPath(args.mountPoint);
    auto client = daemon::readClientConfig(daemon::clientDirectoryFor(mountPoint));
    if (client.ok()) {
      clients.push_back(*client);
    } else {
      checkUnowned(mountPoint);
      if (unowned.empty()) {
        std::fprintf(stderr, "hgvfs: no hgvfs client for %s (see hgvfs list)\n",
                     mountPoint.c_str());
        return 1;
      }
    }
  }
  size_t problems = 0, fixed = 0;
  auto print = [&](const std::string& where, const Finding& f) {
    ++problems;
    std::string outcome;
    if (f.fixed) {
      ++fixed;
      outcome = "fixed: " + f.fix;
    } else if (f.fix.empty()) {
      outcome = "--fix: nothing" + (f.hint.empty() ? "" : " (" + f.hint + ")");
    } else if (args.fix) {
      outcome = "not fixed: " + (f.failure.empty() ? "unknown reason" : f.failure);
    } else {
      outcome = "--fix: " + f.fix;
    }
    std::printf("%s: %s; %s\n", where.c_str(), f.what.c_str(), outcome.c_str());
  };
  for (const auto& [where, f] : unowned) print(where, f);
  for (const auto& client : clients) {
    for (const auto& f : ClientDoctor(client, args.fix).run()) print(client.mountPoint, f);
  }
  if (problems == 0) {
    std::printf("no problems found (%zu client%s checked)\n", clients.size(),
                clients.size() == 1 ? "" : "s");
    return 0;
  }
  std::printf("%zu problem%s found, %zu fixed\n", problems, problems == 1 ? "" : "s", fixed);
  return fixed == problems ? (args.fix ? 0 : 1) : 1;
}

}  // namespace hgvfs::cli
