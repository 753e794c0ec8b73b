#include "fs/daemon.h"

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>

#include "fs/log.h"
#include "hgbridge/repository.h"

namespace hgvfs::fs {
namespace {

void tell(int& fd, const std::string& message) {
  if (fd < 0) return;
  std::string line = message + "\n";
  (void)!::write(fd, line.data(), line.size());
  ::close(fd);
  fd = -1;
}

// Changed files keep an open overlay file each (within a budget).
void raiseFileLimit() {
  struct rlimit limit {};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

int runDaemon(const DaemonOptions& options, int readyFd) {
  // FUSE requests run on many short-lived threads; one malloc arena per
  // thread would hold freed memory per thread. Two arenas are plenty here.
  mallopt(M_ARENA_MAX, 2);
  const ClientConfig& client = options.client;
  auto fail = [&](const std::string& message) {
    log().error("{}", message);
    tell(readyFd, "error: " + message);
    return 1;
  };
  auto started = std::chrono::steady_clock::now();
  auto repo = hg::Repository::open(client.repository);
  if (!repo.ok()) return fail(repo.error().message());
  std::shared_ptr<const hg::Repository> shared(std::move(repo).value());
  auto rev = shared->lookup(client.revision);
  if (!rev.ok()) return fail(rev.error().message());

  store::ObjectStoreOptions storeOptions;
  storeOptions.blobCacheBytes = options.blobCacheBytes;
  storeOptions.treeCacheBytes = options.treeCacheBytes;
  auto objects =
      store::ObjectStore::open(shared, cacheDirectoryFor(shared->storePath()), storeOptions);
  if (!objects.ok()) return fail(objects.error().message());
  std::shared_ptr<store::ObjectStore> store(std::move(objects).value());
  // Progress of a first import goes to whoever waits for the mount.
  bool tty = readyFd < 0 && isatty(2);
  auto progress = [&](const char* phase, size_t done, size_t total) {
    std::string line = std::string(phase) +
                       (total ? " " + std::to_string(done) + "/" + std::to_string(total) : "");
    if (readyFd >= 0) {
      line = "progress " + line + "\n";
      (void)!::write(readyFd, line.data(), line.size());
    } else if (tty) {
      std::fprintf(stderr, "\rimporting: %s   ", line.c_str());
    }
  };
  auto root = store->importCommit(*rev, progress);
  if (tty) std::fprintf(stderr, "\n");
  if (!root.ok()) return fail(root.error().message());

  FileSystemOptions fsOptions;
  fsOptions.uid = getuid();
  fsOptions.gid = getgid();
  clock_gettime(CLOCK_REALTIME, &fsOptions.time);
  std::unique_ptr<Overlay> overlay;
  if (!options.readOnly) {
    auto opened = Overlay::open(overlayDirectory(client.directory));
    if (!opened.ok()) return fail("cannot open the overlay: " + opened.error().message());
    overlay = std::move(opened).value();
  }
  FileSystem filesystem(store, *root, std::move(overlay), fsOptions);
  auto started2 = filesystem.start();
  if (!started2.ok()) return fail("cannot read the overlay: " + started2.error().message());
  raiseFileLimit();

  MountOptions mountOptions;
  mountOptions.mountPoint = client.mountPoint;
  mountOptions.allowOther = options.allowOther;
  mountOptions.debugFuse = options.debugFuse;
  mountOptions.keepCache = options.keepCache;
  mountOptions.cacheReaddir = options.cacheReaddir;
  mountOptions.readdirplus = options.readdirplus;
  mountOptions.zeroMessageOpen = mountOptions.zeroMessageOpendir = options.zeroMessageOpen;
  mountOptions.readOnly = options.readOnly;
  mountOptions.entryTimeout = mountOptions.attrTimeout = mountOptions.negativeTimeout =
      options.cacheTimeout;
  auto server = FuseServer::mount(filesystem, mountOptions);
  if (!server.ok()) return fail(server.error().message());

  {
    std::ofstream pid(pidFile(client.directory), std::ios::trunc);
    pid << getpid() << "\n";
  }
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  log().info("mounted {} revision {} at {} ({:.1f} ms)", client.repository, client.revision,
             client.mountPoint, ms);
  tell(readyFd, "ok");
  int rc = (*server)->run();
  server->reset();  // unmounts if the loop ended for another reason
  store->flush();
  unlink(pidFile(client.directory).c_str());
  auto stats = store->stats();
  log().info(
      "unmounted {} (loop returned {}); {} inodes were loaded, using {} bytes; caches held {} "
      "bytes of trees and {} bytes of blobs; {} blobs read through hgbridge, {} from LMDB",
      client.mountPoint, rc, filesystem.inodeCount(), filesystem.memoryUsage(),
      stats.treeCacheBytes, stats.blobCacheBytes, stats.blobHgReads, stats.blobLmdbHits);
  spdlog::default_logger()->flush();
  return rc < 0 ? 1 : 0;
}

}  // namespace hgvfs::fs
