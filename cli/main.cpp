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
  mount->add_option("--log-level", mountArgs.logLevel, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  mount->add_option("--blob-cache-mb", mountArgs.blobCacheMb,
                    "memory for file contents in the daemon (default 256)");
  mount->add_option("--tree-cache-mb", mountArgs.treeCacheMb,
                    "memory for directory listings in the daemon (default 64)");
  const std::vector<std::string> kCacheFeatures = {"keep-cache", "cache-readdir",     "readdirplus",
                                                   "timeouts",   "zero-message-open"};
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
  auto* status = app.add_subcommand(
      "status", "Show changed files in the mount, exactly as hg status does (no Python)");
  status->add_flag("-m,--modified", statusArgs.modified, "show only modified files");
  status->add_flag("-a,--added", statusArgs.added, "show only added files");
  status->add_flag("-r,--removed", statusArgs.removed, "show only removed files");
  status->add_flag("-d,--deleted", statusArgs.deleted, "show only missing files (!)");
  status->add_flag("-u,--unknown", statusArgs.unknown, "show only unknown files (?)");
  status->add_flag("-i,--ignored", statusArgs.ignored, "show only ignored files");
  status->add_flag("-c,--clean", statusArgs.clean, "show only files without changes");
  status->add_flag("-A,--all", statusArgs.all, "show status of all files");
  status->add_flag("-q,--quiet", statusArgs.quiet, "hide unknown files");
  status->add_flag("-n,--no-status", statusArgs.noStatus, "hide status prefix");
  status->add_flag("--print0", statusArgs.print0, "end filenames with NUL (also -0)");
  status->add_flag("-C,--copies", statusArgs.copies, "show source of copied files");
  status->add_option("-T,--template", statusArgs.template_, "json");
  status->add_option("--rev", statusArgs.rev, "compare the working copy with REV");
  status->add_option("PATTERN", statusArgs.patterns, "files or directories");
  status->callback([&] { exitCode = hgvfs::cli::statusCommand(statusArgs); });

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
  daemon->add_option("--blob-cache-mb", mountArgs.blobCacheMb);
  daemon->add_option("--tree-cache-mb", mountArgs.treeCacheMb);
  daemon->add_option("--no-kernel-cache", mountArgs.noKernelCache);
  daemon->callback([&] { exitCode = hgvfs::cli::daemonCommand(clientDir, readyFd, mountArgs); });

  // hg spells --print0 as -0, which is not an option name CLI11 accepts.
  std::vector<std::string> args(argv + 1, argv + argc);
  bool inStatus = false;
  for (auto& a : args) {
    if (a == "status") inStatus = true;
    if (inStatus && a == "-0") a = "--print0";
  }
  std::reverse(args.begin(), args.end());
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exitCode;
}
