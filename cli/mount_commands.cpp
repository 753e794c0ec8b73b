#include "cli/mount_commands.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <thread>

#include "base/mountinfo.h"
#include "daemon/client_dir.h"
#include "daemon/daemon.h"
#include "hgbridge/repository.h"
#include "hgbridge/revision_names.h"
#include "store/object_store.h"

extern char** environ;

namespace hgvfs::cli {
namespace {

int error(const std::string& message) {
  std::fprintf(stderr, "hgvfs: %s\n", message.c_str());
  return 1;
}

// An absolute, normalized path without resolving the last component's
// mount (a dead FUSE mount point cannot be stat'ed).
std::string absolutePath(const std::string& path) {
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf)) return buf;
  std::string abs = path;
  if (abs.empty() || abs[0] != '/') {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd)) abs = std::string(cwd) + "/" + path;
  }
  std::string parent = abs.substr(0, abs.find_last_of('/'));
  std::string name = abs.substr(abs.find_last_of('/') + 1);
  if (realpath(parent.empty() ? "/" : parent.c_str(), buf)) {
    std::string p = buf;
    return (p == "/" ? "" : p) + "/" + name;
  }
  return abs;
}

bool isHgvfsMount(const std::string& path) {
  auto type = mountTypeAt(path);
  return type && *type == "fuse.hgvfs";
}

// Unmounts `path`; a busy mount is detached lazily (it goes away when the
// last open file closes). Returns an empty string or the error.
std::string detach(const std::string& path, bool* lazy) {
  *lazy = false;
  if (geteuid() == 0) {
    if (umount2(path.c_str(), 0) == 0) return {};
    if (errno != EBUSY) {
      if (umount2(path.c_str(), MNT_DETACH) == 0) return {};
      return strerror(errno);
    }
    *lazy = true;
    if (umount2(path.c_str(), MNT_DETACH) == 0) return {};
    return strerror(errno);
  }
  for (bool lazyTry : {false, true}) {
    std::vector<const char*> argv = {"fusermount3", "-u", "-q"};
    if (lazyTry) argv.push_back("-z");
    argv.push_back(path.c_str());
    argv.push_back(nullptr);
    pid_t pid;
    if (posix_spawnp(&pid, "fusermount3", nullptr, nullptr, const_cast<char* const*>(argv.data()),
                     environ) != 0) {
      return "cannot run fusermount3";
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      *lazy = lazyTry;
      return {};
    }
  }
  return "fusermount3 -u failed";
}

// Waits until the client's daemon is gone (exited, or a zombie nobody has
// reaped yet: it no longer serves anything).
void waitForExit(const std::string& clientDirectory, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline && daemon::runningDaemon(clientDirectory)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void setUpLogging(const std::string& file, const std::string& level, bool alsoStderr) {
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(file));
  if (alsoStderr) sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  auto logger = std::make_shared<spdlog::logger>("hgvfs", sinks.begin(), sinks.end());
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
}

daemon::DaemonOptions daemonOptions(const MountArgs& args, const daemon::ClientConfig& client) {
  daemon::DaemonOptions options;
  options.client = client;
  options.allowOther = args.allowOther;
  options.debugFuse = args.debugFuse;
  options.readOnly = args.readOnly;
  options.writebackCache = args.writebackCache;
  options.xattrs = !args.noXattrs;
  options.blobCacheBytes = args.blobCacheMb << 20;
  options.treeCacheBytes = args.treeCacheMb << 20;
  for (const auto& feature : args.noKernelCache) {
    if (feature == "keep-cache") options.keepCache = false;
    if (feature == "cache-readdir") options.cacheReaddir = false;
    if (feature == "readdirplus") options.readdirplus = false;
    if (feature == "timeouts") options.cacheTimeout = 1;
    if (feature == "zero-message-open") options.zeroMessageOpen = false;
  }
  return options;
}

// The options the daemon needs, as `hgvfs __daemon` arguments.
std::vector<std::string> daemonArguments(const MountArgs& args) {
  std::vector<std::string> argv = {"--log-level",     args.logLevel,
                                   "--blob-cache-mb", std::to_string(args.blobCacheMb),
                                   "--tree-cache-mb", std::to_string(args.treeCacheMb)};
  if (args.allowOther) argv.push_back("--allow-other");
  if (args.debugFuse) argv.push_back("--debug-fuse");
  if (args.writebackCache) argv.push_back("--writeback-cache");
  if (args.readOnly) argv.push_back("--read-only");
  if (args.noXattrs) argv.push_back("--no-xattrs");
  for (const auto& f : args.noKernelCache) {
    argv.push_back("--no-kernel-cache");
    argv.push_back(f);
  }
  return argv;
}

}  // namespace

MountArgs mountArgsFromOptions(const std::vector<std::string>& options) {
  MountArgs args;
  auto number = [](const std::string& s, size_t fallback) -> size_t {
    char* end = nullptr;
    unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    return end && *end == '\0' && !s.empty() ? static_cast<size_t>(v) : fallback;
  };
  for (size_t i = 0; i < options.size(); ++i) {
    const std::string& o = options[i];
    bool hasValue = i + 1 < options.size();
    if (o == "--log-level" && hasValue) {
      args.logLevel = options[++i];
    } else if (o == "--blob-cache-mb" && hasValue) {
      args.blobCacheMb = number(options[++i], args.blobCacheMb);
    } else if (o == "--tree-cache-mb" && hasValue) {
      args.treeCacheMb = number(options[++i], args.treeCacheMb);
    } else if (o == "--no-kernel-cache" && hasValue) {
      args.noKernelCache.push_back(options[++i]);
    } else if (o == "--allow-other") {
      args.allowOther = true;
    } else if (o == "--debug-fuse") {
      args.debugFuse = true;
    } else if (o == "--writeback-cache") {
      args.writebackCache = true;
    } else if (o == "--read-only") {
      args.readOnly = true;
    } else if (o == "--no-xattrs") {
      args.noXattrs = true;
    }
  }
  return args;
}

namespace {

bool directoryIsEmpty(const std::string& path, std::string* why) {
  DIR* d = opendir(path.c_str());
  if (!d) {
    *why = strerror(errno);
    return false;
  }
  bool empty = true;
  while (dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      empty = false;
      *why = "mount point is not empty";
      break;
    }
  }
  closedir(d);
  return empty;
}

}  // namespace

int mountCommand(const MountArgs& args) {
  std::string mountPoint = absolutePath(args.mountPoint);
  if (access("/dev/fuse", R_OK | W_OK) != 0) {
    return error("FUSE is not available (/dev/fuse: " + std::string(strerror(errno)) +
                 "); load the fuse module or run where /dev/fuse exists");
  }
  // A mount point left behind by a daemon that died answers ENOTCONN (the
  // kernel may still answer stat from its cache, so ask statfs, which always
  // reaches the daemon): detach it so the same client can be mounted again.
  if (isHgvfsMount(mountPoint)) {
    struct statfs sfs;
    if (statfs(mountPoint.c_str(), &sfs) == 0) {
      return error(mountPoint + " is already mounted (hgvfs unmount " + mountPoint + " first)");
    }
    if (errno != ENOTCONN && errno != ECONNABORTED) {
      return error("mount point " + mountPoint + ": " + strerror(errno));
    }
    bool lazy;
    std::string why = detach(mountPoint, &lazy);
    if (!why.empty()) return error("cannot clear the dead mount at " + mountPoint + ": " + why);
    std::fprintf(stderr, "hgvfs: cleared a dead mount at %s\n", mountPoint.c_str());
  }
  struct stat st;
  if (stat(mountPoint.c_str(), &st) != 0) {
    return error("mount point " + mountPoint + ": " + strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) return error("mount point " + mountPoint + " is not a directory");
  std::string why;
  if (!directoryIsEmpty(mountPoint, &why)) return error(mountPoint + ": " + why);

  auto repo = hg::Repository::open(args.repository);
  if (!repo.ok()) return error(repo.error().message());
  std::string clientDirectory = daemon::clientDirectoryFor(mountPoint);
  // A client keeps its revision: its overlay holds changes made on it.
  auto previous = daemon::readClientConfig(clientDirectory);
  std::string wanted = args.revision;
  if (wanted.empty()) wanted = previous.ok() ? previous->revision : "tip";
  auto resolved = hg::resolveRevision(**repo, wanted);
  if (!resolved.ok()) return error(resolved.error().message());
  const hg::Revision* rev = &resolved->rev;
  std::string node = (*repo)->changelog().revlog().node(*rev).hex();
  if (previous.ok() && previous->revision != node && daemon::clientHasChanges(clientDirectory)) {
    return error("the client for " + mountPoint + " has changes made on revision " +
                 previous->revision.substr(0, 12) + "; mount it without --rev");
  }

  daemon::ClientConfig client;
  client.directory = clientDirectory;
  client.name = client.directory.substr(client.directory.find_last_of('/') + 1);
  client.repository = (*repo)->root();
  client.mountPoint = mountPoint;
  client.revision = node;
  client.mountOptions = daemonArguments(args);
  if (auto pid = daemon::runningDaemon(client.directory)) {
    return error("the client for " + mountPoint + " already has a daemon (pid " +
                 std::to_string(*pid) + ")");
  }
  auto written = daemon::writeClientConfig(client);
  if (!written.ok()) return error(written.error().message());

  // The daemon imports the revision if needed (reporting progress through
  // the ready pipe, shown here on a terminal) and then mounts.
  if (args.foreground) {
    setUpLogging(daemon::logFile(client.directory), args.logLevel, true);
    return daemon::runDaemon(daemonOptions(args, client), -1);
  }

  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return error(std::string("pipe: ") + strerror(errno));
  int logFd = open(daemon::logFile(client.directory).c_str(),
                   O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (logFd < 0) return error("cannot open the log: " + std::string(strerror(errno)));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, logFd, 1);
  posix_spawn_file_actions_adddup2(&actions, logFd, 2);
  posix_spawn_file_actions_adddup2(&actions, ready[1], 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  std::vector<std::string> argv = {"hgvfs", "__daemon", client.directory, "3"};
  for (auto& a : daemonArguments(args)) argv.push_back(std::move(a));
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  // The executable by its real name, so the daemon's comm is "hgvfs".
  char exe[PATH_MAX];
  ssize_t exeLen = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (exeLen <= 0) return error("cannot find the hgvfs executable");
  exe[exeLen] = '\0';
  pid_t pid;
  int rc = posix_spawn(&pid, exe, &actions, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(ready[1]);
  close(logFd);
  if (rc != 0) {
    close(ready[0]);
    return error(std::string("cannot start the daemon: ") + strerror(rc));
  }
  // Lines from the daemon: "progress PHASE DONE TOTAL", then "ok" or
  // "error: MESSAGE".
  std::string answer, pending;
  bool tty = isatty(2), progressShown = false;
  char buf[512];
  while (answer.empty()) {
    ssize_t n = read(ready[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, static_cast<size_t>(n));
    size_t nl;
    while (answer.empty() && (nl = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (line.rfind("progress ", 0) == 0) {
        if (tty) {
          std::fprintf(stderr, "\rimporting %s: %s   ", node.substr(0, 12).c_str(),
                       line.substr(9).c_str());
          progressShown = true;
        }
      } else {
        answer = line;
      }
    }
  }
  if (progressShown) std::fprintf(stderr, "\n");
  if (answer.empty()) answer = pending;
  if (answer.rfind("ok", 0) != 0) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (answer.rfind("error: ", 0) == 0) return error(answer.substr(7));
    return error("the daemon died before mounting; see " + daemon::logFile(client.directory));
  }
  // The mount answers once the daemon's loop serves this stat.
  if (stat(mountPoint.c_str(), &st) != 0) {
    return error("the mount does not answer: " + std::string(strerror(errno)));
  }
  std::printf("mounted %s (revision %d:%s) at %s\n", client.repository.c_str(), rev->value(),
              node.substr(0, 12).c_str(), mountPoint.c_str());
  return 0;
}

int daemonCommand(const std::string& clientDirectory, int readyFd, const MountArgs& args) {
  auto client = daemon::readClientConfig(clientDirectory);
  if (!client.ok()) {
    std::string msg = "error: " + client.error().message() + "\n";
    (void)!write(readyFd, msg.data(), msg.size());
    return 1;
  }
  setUpLogging(daemon::logFile(clientDirectory), args.logLevel, false);
  return daemon::runDaemon(daemonOptions(args, *client), readyFd);
}

int unmountCommand(const std::string& path) {
  std::string mountPoint = absolutePath(path);
  std::string clientDirectory = daemon::clientDirectoryFor(mountPoint);
  auto pid = daemon::runningDaemon(clientDirectory);
  if (!isHgvfsMount(mountPoint)) {
    if (pid) {
      kill(*pid, SIGTERM);
      waitForExit(clientDirectory, std::chrono::seconds(5));
    }
    return error(mountPoint + " is not an hgvfs mount");
  }
  bool lazy = false;
  std::string why = detach(mountPoint, &lazy);
  if (!why.empty()) return error("cannot unmount " + mountPoint + ": " + why);
  if (lazy) {
    std::fprintf(stderr,
                 "hgvfs: %s was busy; it is detached and goes away when the last open file "
                 "closes\n",
                 mountPoint.c_str());
  } else if (pid) {
    waitForExit(clientDirectory, std::chrono::seconds(10));
  }
  std::printf("unmounted %s\n", mountPoint.c_str());
  return 0;
}

int listCommand() {
  for (const auto& c : daemon::listClients()) {
    auto pid = daemon::runningDaemon(c.directory);
    bool mounted = isHgvfsMount(c.mountPoint);
    const char* state = mounted && pid ? "mounted" : mounted ? "dead (daemon gone)" : "not mounted";
    std::printf("%s\t%s\t%s\t%s\n", c.mountPoint.c_str(), state, c.repository.c_str(),
                c.revision.substr(0, 12).c_str());
  }
  return 0;
}

std::string mountPointPath(const std::string& path) { return absolutePath(path); }
bool isHgvfsMountAt(const std::string& path) { return isHgvfsMount(path); }
std::string unmountAt(const std::string& path, bool* lazy) { return detach(path, lazy); }

}  // namespace hgvfs::cli
