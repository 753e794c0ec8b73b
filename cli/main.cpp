// hgvfs: the command-line entry point. Subcommands are parsed here and
// handed to the functions that implement them.

#include <CLI/CLI.hpp>
#include <algorithm>

#include "cli/debug_commands.h"
#include "cli/mount_commands.h"
#include "cli/status_command.h"

int main(int argc, char** argv) {
  CLI::App app{"hgvfs: a virtual filesystem for Mercurial working copies"};
  app.set_version_flag("--version", std::string("hgvfs 0.1.0"));
  app.require_subcommand(1);
  int exitCode = 0;

  auto* debug = app.add_subcommand("debug", "Inspect a repository through hgbridge");
  debug->require_subcommand(1);

  std::string repo, rev, dest;
  std::vector<std::string> paths;
  int threads = 0;

  auto* manifest = debug->add_subcommand(
      "manifest", "Print a revision's manifest like `hg manifest --debug -r REV`");
  manifest->add_option("REPO", repo)->required();
  manifest->add_option("REV", rev)->required();
  manifest->callback([&] { exitCode = hgvfs::cli::debugManifest(repo, rev); });

  auto* cat = debug->add_subcommand("cat", "Print files of a revision like `hg cat -r REV`");
  cat->add_option("REPO", repo)->required();
  cat->add_option("REV", rev)->required();
  cat->add_option("PATH", paths, "files or directories, relative to the repository root")
      ->required();
  cat->callback([&] { exitCode = hgvfs::cli::debugCat(repo, rev, paths); });

  auto* verify = debug->add_subcommand(
      "verify", "Read and check every revision of every revlog; exit 1 at the first corruption");
  verify->add_option("REPO", repo)->required();
  verify->callback([&] { exitCode = hgvfs::cli::debugVerify(repo); });

  auto* archive =
      debug->add_subcommand("archive", "Write every file of REV under DEST (like hg archive)");
  archive->add_option("REPO", repo)->required();
  archive->add_option("REV", rev)->required();
  archive->add_option("DEST", dest)->required();
  archive->callback([&] { exitCode = hgvfs::cli::debugArchive(repo, rev, dest); });

  auto* readAll = debug->add_subcommand(
      "read-all", "Read every file of REV into memory and report the time taken");
  readAll->add_option("--threads", threads, "worker threads (default: all cores)");
  readAll->add_option("REPO", repo)->required();
  readAll->add_option("REV", rev)->required();
  readAll->callback([&] { exitCode = hgvfs::cli::debugReadAll(repo, rev, threads); });

  hgvfs::cli::MountArgs mountArgs;
  auto* mount = app.add_subcommand("mount", "Mount a revision of a repository");
  mount->add_option("--rev,-r", mountArgs.revision,
                    "revision to mount (default: the client's revision if it exists, else tip)");
  mount->add_flag("--read-only", mountArgs.readOnly, "refuse every change (no overlay)");
  mount->add_flag("--foreground,-f", mountArgs.foreground, "serve in this process");
  mount->add_flag("--allow-other", mountArgs.allowOther, "let other users enter the mount");
  mount->add_flag("--debug-fuse", mountArgs.debugFuse, "log every FUSE request (libfuse -d)");
  mount->add_flag("--no-xattrs", mountArgs.noXattrs,
                  "refuse extended attributes (EOPNOTSUPP; spares the kernel's GETXATTR before "
                  "writes)");
  mount->add_option("--log-level", mountArgs.logLevel, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  mount->add_option("--blob-cache-mb", mountArgs.blobCacheMb,
                    "memory for file contents in the daemon (default 256)");
  mount->add_option("--tree-cache-mb", mountArgs.treeCacheMb,
                    "memory for directory listings in the daemon (default 64)");
  const std::vector<std::string> kCacheFeatures = {"keep-cache", "cache-readdir", "readdirplus",
                                                   "timeouts", "zero-message-open"};
  mount
      ->add_option("--no-kernel-cache", mountArgs.noKernelCache,
                   "turn off a kernel caching feature, for benchmarks: keep-cache, "
                   "cache-readdir, readdirplus, timeouts, zero-message-open (repeatable)")
      ->check(CLI::IsMember(kCacheFeatures))
      ->group("Benchmarking");
  mount->add_option("REPO", mountArgs.repository)->required();
  mount->add_option("MOUNTPOINT", mountArgs.mountPoint)->required();
  mount->callback([&] { exitCode = hgvfs::cli::mountCommand(mountArgs); });

  hgvfs::cli::StatusArgs statusArgs;
  hgvfs::cli::addStatusCommand(app, statusArgs, exitCode);

  std::string mountPoint;
  auto* unmount = app.add_subcommand("unmount", "Unmount a mount made by hgvfs mount");
  unmount->alias("umount");
  unmount->add_option("MOUNTPOINT", mountPoint)->required();
  unmount->callback([&] { exitCode = hgvfs::cli::unmountCommand(mountPoint); });

  auto* list = app.add_subcommand("list", "List clients: mount point, state, repository, revision");
  list->callback([&] { exitCode = hgvfs::cli::listCommand(); });

  std::string clientDir;
  int readyFd = -1;
  auto* daemon = app.add_subcommand("__daemon", "");
  daemon->group("");  // internal: started by hgvfs mount
  daemon->add_option("CLIENT", clientDir)->required();
  daemon->add_option("READY_FD", readyFd)->required();
  daemon->add_option("--log-level", mountArgs.logLevel);
  daemon->add_flag("--allow-other", mountArgs.allowOther);
  daemon->add_flag("--debug-fuse", mountArgs.debugFuse);
  daemon->add_flag("--read-only", mountArgs.readOnly);
  daemon->add_flag("--no-xattrs", mountArgs.noXattrs);
  daemon->add_option("--blob-cache-mb", mountArgs.blobCacheMb);
  daemon->add_option("--tree-cache-mb", mountArgs.treeCacheMb);
  daemon->add_option("--no-kernel-cache", mountArgs.noKernelCache);
  daemon->callback([&] { exitCode = hgvfs::cli::daemonCommand(clientDir, readyFd, mountArgs); });

  std::vector<std::string> args = hgvfs::cli::reversedArguments(argc, argv);
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exitCode;
}
