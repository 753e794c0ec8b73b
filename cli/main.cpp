// hgvfs: the command-line entry point. Subcommands are parsed here and
// handed to the functions that implement them.

#include <CLI/CLI.hpp>
#include <algorithm>

#include "cli/cache_commands.h"
#include "cli/debug_commands.h"
#include "cli/doctor_command.h"
#include "cli/help.h"
#include "cli/mount_commands.h"
#include "cli/stats_command.h"
#include "cli/status_command.h"

int main(int argc, char** argv) {
  CLI::App app{"a virtual filesystem for Mercurial working copies", "hgvfs"};
  app.set_help_flag("-h,--help", "display help and exit");
  app.set_version_flag("--version", std::string("hgvfs 0.1.0"),
                       "output version information and exit");
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
  readAll->add_option("--threads", threads, "worker threads (default: all cores)")->type_name("N");
  readAll->add_option("REPO", repo)->required();
  readAll->add_option("REV", rev)->required();
  readAll->callback([&] { exitCode = hgvfs::cli::debugReadAll(repo, rev, threads); });

  hgvfs::cli::MountArgs mountArgs;
  auto* mount = app.add_subcommand("mount", "Mount a revision of a repository");
  mount
      ->add_option("--rev,-r", mountArgs.revision,
                   "revision to mount (default: the client's revision if it exists, else tip)")
      ->type_name("REV");
  mount->add_flag("--read-only", mountArgs.readOnly, "refuse every change (no overlay)");
  mount->add_flag("--foreground,-f", mountArgs.foreground, "serve in this process");
  mount->add_flag("--allow-other", mountArgs.allowOther, "let other users enter the mount");
  mount->add_flag("--debug-fuse", mountArgs.debugFuse, "log every FUSE request (libfuse -d)");
  mount->add_flag("--writeback-cache", mountArgs.writebackCache,
                  "gather writes in the kernel's page cache (docs/ARCHITECTURE.md: what close "
                  "guarantees then)");
  mount->add_flag("--no-xattrs", mountArgs.noXattrs,
                  "refuse extended attributes (EOPNOTSUPP; spares the kernel's GETXATTR before "
                  "writes)");
  mount->add_option("--log-level", mountArgs.logLevel, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->type_name("LEVEL");
  mount
      ->add_option("--blob-cache-mb", mountArgs.blobCacheMb,
                   "memory for file contents in the daemon (default 256)")
      ->type_name("MB");
  mount
      ->add_option("--tree-cache-mb", mountArgs.treeCacheMb,
                   "memory for directory listings in the daemon (default 256)")
      ->type_name("MB");
  const std::vector<std::string> kCacheFeatures = {"keep-cache", "cache-readdir", "readdirplus",
                                                   "timeouts", "zero-message-open"};
  mount
      ->add_option("--no-kernel-cache", mountArgs.noKernelCache,
                   "turn off a kernel caching feature, for benchmarks: keep-cache, "
                   "cache-readdir, readdirplus, timeouts, zero-message-open (repeatable)")
      ->check(CLI::IsMember(kCacheFeatures))
      ->type_name("FEATURE")
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

  hgvfs::cli::StatsArgs statsArgs;
  auto* stats = app.add_subcommand("stats", "Show what a mount holds and what it served");
  stats->add_option("-T,--template", statsArgs.template_, "json: one JSON object for tools")
      ->type_name("TEMPLATE");
  stats->add_option("MOUNT", statsArgs.mount, "the mount (default: the one around .)");
  stats->callback([&] { exitCode = hgvfs::cli::statsCommand(statsArgs); });
  hgvfs::cli::DoctorArgs doctorArgs;
  auto* doctor = app.add_subcommand(
      "doctor", "Check clients (dead mounts, overlays, .hg, caches) and with --fix repair them");
  doctor->add_flag("--fix", doctorArgs.fix, "repair what can be repaired without losing anything");
  doctor->add_option("MOUNT", doctorArgs.mountPoint,
                     "the mount point to check (default: every client)");
  doctor->callback([&] { exitCode = hgvfs::cli::doctorCommand(doctorArgs); });
  hgvfs::cli::PrefetchArgs prefetchArgs;
  auto* prefetch = app.add_subcommand(
      "prefetch", "Fetch the contents and sizes of a revision's files into the cache");
  prefetch->add_option("--rev,-r", prefetchArgs.rev,
                       "Revision (default: the mount's working-copy parent)");
  prefetch->add_option("--repository,-R", prefetchArgs.repository,
                       "Repository (default: the mount holding the current directory)");
  prefetch->add_option("--threads", prefetchArgs.threads, "Files read at once (default 8)");
  prefetch->add_option("PATTERN", prefetchArgs.patterns, "Only files matching these hg patterns");
  prefetch->callback([&] { exitCode = hgvfs::cli::prefetchCommand(prefetchArgs); });

  std::string gcTo;
  auto* gc = app.add_subcommand(
      "gc", "Drop the least recently used blobs of every repository cache down to a size");
  gc->add_option("--to", gcTo, "Size to trim to, e.g. 1G (default: [cache] max-size)");
  gc->callback([&] { exitCode = hgvfs::cli::gcCommand(gcTo); });

  auto* du =
      app.add_subcommand("du", "Show cache sizes per repository and overlay sizes per mount");
  du->callback([&] { exitCode = hgvfs::cli::duCommand(); });

  std::string clientDir;
  int readyFd = -1;
  auto* daemon = app.add_subcommand("__daemon", "");
  daemon->group("");  // internal: started by hgvfs mount
  daemon->add_option("CLIENT", clientDir)->required();
  daemon->add_option("READY_FD", readyFd)->required();
  daemon->add_option("--log-level", mountArgs.logLevel);
  daemon->add_flag("--allow-other", mountArgs.allowOther);
  daemon->add_flag("--debug-fuse", mountArgs.debugFuse);
  daemon->add_flag("--writeback-cache", mountArgs.writebackCache);
  daemon->add_flag("--read-only", mountArgs.readOnly);
  daemon->add_flag("--no-xattrs", mountArgs.noXattrs);
  daemon->add_option("--blob-cache-mb", mountArgs.blobCacheMb);
  daemon->add_option("--tree-cache-mb", mountArgs.treeCacheMb);
  daemon->add_option("--no-kernel-cache", mountArgs.noKernelCache);
  daemon->callback([&] { exitCode = hgvfs::cli::daemonCommand(clientDir, readyFd, mountArgs); });

  using hgvfs::cli::setHelpDetails;
  setHelpDetails(
      "",
      "Mounts a revision of a Mercurial repository as a working copy whose files are "
      "read from the repository when first touched. hg works in the mount as in a "
      "normal checkout.",
      {"hgvfs mount ~/src/project ~/mnt/project",
       "hgvfs mount --rev stable ~/src/project ~/mnt/stable", "cd ~/mnt/project && hgvfs status",
       "hgvfs stats ~/mnt/project", "hgvfs unmount ~/mnt/project"});
  setHelpDetails(
      "mount",
      "Mounts revision REV of the repository at REPO on MOUNTPOINT, an empty directory, and "
      "starts the daemon that serves it. The client (its overlay of changes and its .hg) is "
      "kept across mounts, so a second mount of the same MOUNTPOINT finds the changes made "
      "before.\n"
      "REV is anything hg -r takes for one revision: a number, a hash or a prefix of one, "
      "\".\" (the repository's working parent), a bookmark, a tag, a branch (its tip-most "
      "open head), or a revset (resolved by hg log -r).",
      {"hgvfs mount ~/src/project ~/mnt/project           # the client's revision, else tip",
       "hgvfs mount -r @ ~/src/project ~/mnt/project      # the @ bookmark",
       "hgvfs mount -r 'max(tagged())' ~/src/project ~/mnt/tagged",
       "hgvfs mount --read-only -r 1.0 ~/src/project ~/mnt/release"});
  setHelpDetails("unmount",
                 "Unmounts MOUNTPOINT and stops its daemon. A busy mount is detached and goes "
                 "away when its last open file closes. The client and its changes stay.",
                 {"hgvfs unmount ~/mnt/project"});
  setHelpDetails("list", "One line per client: mount point, state, repository, revision.",
                 {"hgvfs list"});
  setHelpDetails("doctor",
                 "Checks every client (or MOUNT): dead mounts, overlays left inconsistent by a "
                 "crash, the mount's .hg (extension, interrupted update, parents), caches that "
                 "cannot be opened, and repositories that moved. One line per finding; the exit "
                 "code is nonzero while something is wrong. --fix repairs what it can without "
                 "losing anything (unnamed overlay bytes go to the client's lost+found).",
                 {"hgvfs doctor", "hgvfs doctor ~/mnt/project --fix"});
  setHelpDetails(
      "stats",
      "Asks the daemon of MOUNT (default: the mount around the current directory) what it "
      "holds: inodes loaded and materialized, overlay size, the object cache with its hit "
      "rates, and every kind of FUSE request served since the mount with its latency "
      "percentiles (bucket upper bounds), and the status and checkout calls with their times.",
      {"hgvfs stats ~/mnt/project", "hgvfs stats -T json | python3 -m json.tool"});
  setHelpDetails(
      "prefetch",
      "Reads the contents and sizes of REV's files (default: the working-copy parent of the "
      "mount around the current directory) into the repository's object cache, in parallel, "
      "so that a first grep, find or build through the mount does not wait on the "
      "repository. PATTERNs are hg patterns relative to the current directory. Interrupted "
      "(Ctrl-C), it keeps what it fetched.",
      {"cd ~/mnt/project && hgvfs prefetch                 # every file of the parent",
       "cd ~/mnt/project/src && hgvfs prefetch 'glob:**.c'  # C files under src",
       "hgvfs prefetch -R ~/src/project -r stable"});
  setHelpDetails("gc",
                 "Drops the least recently used blobs of each repository cache until it fits "
                 "SIZE (default: [cache] max-size in $HGVFS_HOME/config, 4G). Trees and sizes "
                 "stay; a dropped blob is read from the repository again when needed.",
                 {"hgvfs gc", "hgvfs gc --to 500M"});
  setHelpDetails("du", "The object cache's size per repository and the overlay's per mount.",
                 {"hgvfs du"});
  setHelpDetails("debug", "Tools that read a repository through hgbridge, without a mount.",
                 {"hgvfs debug manifest ~/src/project tip", "hgvfs debug verify ~/src/project"});

  std::vector<std::string> args = hgvfs::cli::reversedArguments(argc, argv);
  if (auto done = hgvfs::cli::parseCommandLine(app, std::move(args), "hgvfs")) return *done;
  return exitCode;
}
