#include "cli/cache_commands.h"

#include <ftw.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>

#include "base/byte_size.h"
#include "base/io.h"
#include "base/mountinfo.h"
#include "daemon/cache_settings.h"
#include "daemon/client_dir.h"
#include "hgbridge/node.h"
#include "hgbridge/repository.h"
#include "match/matcher.h"
#include "store/object_store.h"

namespace hgvfs::cli {
namespace {

int error(const std::string& message) {
  std::fprintf(stderr, "hgvfs: %s\n", message.c_str());
  return 1;
}

std::atomic<bool> interrupted{false};
void onInterrupt(int) { interrupted = true; }

std::string currentDirectory() {
  char buf[PATH_MAX];
  return ::getcwd(buf, sizeof buf) ? std::string(buf) : std::string();
}

// What to prefetch from: a repository, a revision, and (inside a mount) the
// mount's root and the current directory relative to it, for patterns.
struct Target {
  std::shared_ptr<const hg::Repository> repo;
  hg::Revision rev;
  std::string root;
  std::string cwdRel;
};

Result<Target> findTarget(const PrefetchArgs& args) {
  Target t;
  std::string cwd = currentDirectory();
  std::string revSpec = args.rev;
  std::string repoRoot = args.repository;
  if (repoRoot.empty()) {
    std::string mountPoint = innermostMountOf(cwd, "fuse.hgvfs");
    if (mountPoint.empty()) {
      return invalidArgument("not inside an hgvfs mount (" + cwd + "); name one with -R REPO");
    }
    HG_ASSIGN_OR_RETURN(daemon::ClientConfig client,
                        daemon::readClientConfig(daemon::clientDirectoryFor(mountPoint)));
    repoRoot = client.repository;
    t.root = mountPoint;
    t.cwdRel = cwd == mountPoint ? "" : cwd.substr(mountPoint.size() + 1);
    if (t.cwdRel == ".hg" || t.cwdRel.rfind(".hg/", 0) == 0) t.cwdRel.clear();
    if (revSpec.empty()) {
      // The working copy's parent: hg update in the mount moves it.
      auto dirstate = readFile(mountPoint + "/.hg/dirstate");
      revSpec = dirstate.ok() && dirstate->size() >= 20 ? hg::Node::fromRaw(dirstate->data()).hex()
                                                        : client.revision;
    }
  } else {
    t.root = repoRoot;
    if (cwd.rfind(repoRoot + "/", 0) == 0) t.cwdRel = cwd.substr(repoRoot.size() + 1);
    if (revSpec.empty()) revSpec = "tip";
  }
  HG_ASSIGN_OR_RETURN(auto repo, hg::Repository::open(repoRoot));
  t.repo = std::shared_ptr<const hg::Repository>(std::move(repo));
  auto rev = t.repo->lookup(revSpec);
  if (!rev.ok()) return invalidArgument("unknown revision '" + revSpec + "'");
  t.rev = *rev;
  return t;
}

Result<std::unique_ptr<store::ObjectStore>> openCache(std::shared_ptr<const hg::Repository> repo,
                                                      const std::string& dir) {
  HG_ASSIGN_OR_RETURN(uint64_t maxSize, daemon::cacheMaxSize());
  store::ObjectStoreOptions options;
  options.maxBlobBytes = maxSize;
  options.blobCacheBytes = size_t{16} << 20;
  return store::ObjectStore::open(std::move(repo), dir, options);
}

std::string seconds(std::chrono::steady_clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", std::chrono::duration<double>(d).count());
  return buf;
}

uint64_t treeBytes = 0, treeFiles = 0;
int addUsage(const char*, const struct stat* st, int type, struct FTW*) {
  if (type == FTW_F) {
    treeBytes += static_cast<uint64_t>(st->st_blocks) * 512;
    ++treeFiles;
  }
  return 0;
}

// Disk bytes and file count of everything under `dir`.
std::pair<uint64_t, uint64_t> diskUsage(const std::string& dir) {
  treeBytes = treeFiles = 0;
  ::nftw(dir.c_str(), addUsage, 16, FTW_PHYS);
  return {treeBytes, treeFiles};
}

}  // namespace

int prefetchCommand(const PrefetchArgs& args) {
  spdlog::set_level(spdlog::level::warn);  // the summary line says what happened
  auto target = findTarget(args);
  if (!target.ok()) return error(target.error().message());
  std::unique_ptr<match::Matcher> matcher;
  if (!args.patterns.empty()) {
    match::MatchOptions options;
    options.root = target->root;
    options.cwd = target->cwdRel;
    options.auditFileSystem = false;
    auto built = match::buildMatcher(options, args.patterns, {}, {}, match::Kind::kRelpath);
    if (!built.ok()) return error(built.error().message());
    matcher = std::move(built).value();
  }
  std::string cacheDir = daemon::cacheDirectoryFor(target->repo->storePath());
  auto madeDir = daemon::makeDirectories(cacheDir);
  if (!madeDir.ok()) return error(madeDir.error().message());
  auto store = openCache(target->repo, cacheDir);
  if (!store.ok()) return error(store.error().message());
  daemon::recordCacheOwner(cacheDir, target->repo->root());
  auto start = std::chrono::steady_clock::now();
  auto root = (*store)->importCommit(target->rev);
  if (!root.ok()) return error(root.error().message());
  std::vector<store::FileRef> files;
  auto listed = (*store)->listFileRefs(*root, {}, files);
  if (!listed.ok()) return error(listed.error().message());
  if (matcher) {
    std::erase_if(files, [&](const store::FileRef& f) { return !matcher->matches(f.path); });
  }

  struct sigaction sa {};
  sa.sa_handler = onInterrupt;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  bool tty = ::isatty(2);
  auto progress = [&](uint64_t done, uint64_t total, uint64_t bytes) {
    if (!tty) return;
    std::fprintf(stderr, "\rprefetching: %llu/%llu files, %s   ",
                 static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                 formatByteSize(bytes).c_str());
  };
  auto result = (*store)->prefetch(files, args.threads, progress, &interrupted);
  if (tty) std::fprintf(stderr, "\n");
  if (!result.ok()) return error(result.error().message());
  (*store)->flush();
  std::printf("%s %llu files (%s) in %s; %llu already cached\n",
              result->interrupted ? "interrupted: fetched" : "fetched",
              static_cast<unsigned long long>(result->files), formatByteSize(result->bytes).c_str(),
              seconds(std::chrono::steady_clock::now() - start).c_str(),
              static_cast<unsigned long long>(result->cached));
  return result->interrupted ? 130 : 0;
}

int gcCommand(const std::string& to) {
  uint64_t target = 0;
  if (to.empty()) {
    auto configured = daemon::cacheMaxSize();
    if (!configured.ok()) return error(configured.error().message());
    target = *configured;
  } else {
    auto parsed = parseByteSize(to);
    if (!parsed.ok()) return error("--to: " + parsed.error().what);
    target = *parsed;
  }
  for (const daemon::CacheDirectory& c : daemon::listCaches()) {
    auto store = store::ObjectStore::open(nullptr, c.directory);
    if (!store.ok()) return error(store.error().message());
    auto gc = (*store)->collectGarbage(target);
    if (!gc.ok()) return error(gc.error().message());
    std::printf(
        "%s: dropped %llu blobs (%s), kept %llu (%s)\n",
        c.repository.empty() ? c.directory.c_str() : c.repository.c_str(),
        static_cast<unsigned long long>(gc->droppedBlobs), formatByteSize(gc->droppedBytes).c_str(),
        static_cast<unsigned long long>(gc->keptBlobs), formatByteSize(gc->keptBytes).c_str());
  }
  return 0;
}

int duCommand() {
  std::printf(
      "repository caches (blobs: content bytes; trees, other: LMDB pages; file: on disk)\n");
  for (const daemon::CacheDirectory& c : daemon::listCaches()) {
    auto store = store::ObjectStore::open(nullptr, c.directory);
    if (!store.ok()) return error(store.error().message());
    auto u = (*store)->usage();
    if (!u.ok()) return error(u.error().message());
    std::printf("  %s\n    blobs %s (%llu), trees %s (%llu), sizes %llu, other %s, file %s\n",
                c.repository.empty() ? c.directory.c_str() : c.repository.c_str(),
                formatByteSize(u->blobBytes).c_str(), static_cast<unsigned long long>(u->blobs),
                formatByteSize(u->treeBytes).c_str(), static_cast<unsigned long long>(u->trees),
                static_cast<unsigned long long>(u->sizes), formatByteSize(u->otherBytes).c_str(),
                formatByteSize(u->fileBytes).c_str());
  }
  std::printf("mounts (overlay: changed files and their records, on disk)\n");
  for (const daemon::ClientConfig& c : daemon::listClients()) {
    auto [bytes, files] = diskUsage(daemon::overlayDirectory(c.directory));
    std::printf("  %s\n    repository %s, overlay %s (%llu files)\n", c.mountPoint.c_str(),
                c.repository.c_str(), formatByteSize(bytes).c_str(),
                static_cast<unsigned long long>(files));
  }
  return 0;
}

}  // namespace hgvfs::cli
