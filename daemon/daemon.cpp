#include "daemon/daemon.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <set>

#include "base/io.h"
#include "control/protocol.h"
#include "control/server.h"
#include "daemon/cache_settings.h"
#include "daemon/log.h"
#include "fs/fuse_server.h"
#include "hgbridge/dirstate.h"
#include "hgbridge/repository.h"
#include "status/status_engine.h"

namespace hgvfs::daemon {
namespace {

void tell(int& fd, const std::string& message) {
  if (fd < 0) return;
  std::string line = message + "\n";
  (void)!::write(fd, line.data(), line.size());
  ::close(fd);
  fd = -1;
}

constexpr const char* kDirstateRequirement = "hgvfs-dirstate";  // docs/DIRSTATE.md

// The lines of a requires file (empty when there is none).
std::set<std::string> readRequires(const std::string& path) {
  std::ifstream in(path);
  std::set<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.insert(line);
  }
  return out;
}

Status writeRequires(const std::string& path, const std::set<std::string>& reqs) {
  std::string text;
  for (const auto& r : reqs) text += r + "\n";
  return writeFileAtomically(path, text);
}

// A client made before the mount's dirstate format held a full v1 dirstate
// and no requirement. It becomes the mount's format (docs/DIRSTATE.md):
// plain 'n' entries for files of p1 are dropped (implied), files of p1 the
// old file did not list become 'u', every other entry is kept as it was.
//
// Crash safety: the converted file is written beside the old one
// (dirstate.hgvfs-new, synced), then the requirement is added, then the new
// file is renamed over the old. A crash before the requirement leaves the
// old client as it was (converted again next time); a crash after it leaves
// the pending file, which ensureDotHg renames into place before anything
// reads the dirstate.
Status convertFullDirstate(const std::string& dir, const hg::Repository& repo) {
  const std::string path = dir + "/dirstate";
  const std::string pending = dir + "/dirstate.hgvfs-new";
  HG_ASSIGN_OR_RETURN(Bytes data, readFile(path));
  std::vector<hg::DirstateEntry> entries;
  HG_ASSIGN_OR_RETURN(auto parents, hg::visitDirstateV1(
                                        data,
                                        [&](const hg::DirstateEntryView& v) {
                                          entries.push_back(hg::DirstateEntry::from(v));
                                        },
                                        path));
  std::vector<Bytes> p1Files;
  if (!parents.first.isNull()) {
    HG_ASSIGN_OR_RETURN(hg::Revision rev, repo.changelog().revlog().rev(parents.first));
    HG_ASSIGN_OR_RETURN(hg::Manifest manifest, repo.manifestOf(rev));
    p1Files.reserve(manifest.size());
    for (const auto& e : manifest.entries()) p1Files.emplace_back(e.path);
    std::sort(p1Files.begin(), p1Files.end());
  }
  auto inP1 = [&](ByteView p) {
    return std::binary_search(p1Files.begin(), p1Files.end(), p,
                              [](ByteView a, ByteView b) { return a < b; });
  };
  Bytes out;
  hg::DirstateV1Writer writer(
      parents.first, parents.second,
      [&](ByteView chunk) {
        out.append(chunk);
        return okStatus();
      },
      size_t{1} << 16, hg::DirstateFormat::kHgvfs);
  std::vector<ByteView> listed;
  listed.reserve(entries.size());
  size_t kept = 0;
  for (const auto& e : entries) {
    listed.emplace_back(e.path);
    bool implied =
        e.state == 'n' && !e.copySource && e.size != hg::kDirstateSizeFromP2 && inP1(e.path);
    if (implied) continue;
    HG_RETURN_IF_ERROR(writer.add(e));
    ++kept;
  }
  std::sort(listed.begin(), listed.end());
  size_t untracked = 0;
  for (const auto& f : p1Files) {
    if (std::binary_search(listed.begin(), listed.end(), ByteView(f))) continue;
    HG_RETURN_IF_ERROR(writer.addUntracked(f));
    ++untracked;
  }
  HG_RETURN_IF_ERROR(writer.finish());
  HG_RETURN_IF_ERROR(writeFileAtomically(pending, out));
  auto reqs = readRequires(dir + "/requires");
  reqs.insert(kDirstateRequirement);
  HG_RETURN_IF_ERROR(writeRequires(dir + "/requires", reqs));
  if (::rename(pending.c_str(), path.c_str()) != 0) {
    int err = errno;
    return ioError(err, "cannot put the converted dirstate in place", path);
  }
  log().info(
      "converted the dirstate to the hgvfs format (docs/DIRSTATE.md): kept {} of {} entries, "
      "{} files of p1 untracked",
      kept, entries.size(), untracked);
  return okStatus();
}

// The client's .hg, shown as `.hg` in the mount root: a share of the
// backing repository (sharedpath, requires with `shared` and the mount's
// dirstate requirement), an hgrc enabling the extension, and a dirstate in
// the mount's format (docs/DIRSTATE.md) for the mounted revision: the
// parents and no entries, every file of p1 implied. Made once per client;
// afterwards hg owns it (commit, update move p1). A client from before the
// format is converted.
Status ensureDotHg(const std::string& dir, const hg::Repository& repo, hg::Revision rev,
                   const std::string& socket) {
  const std::string dirstate = dir + "/dirstate";
  const std::string pending = dir + "/dirstate.hgvfs-new";
  if (::access(dirstate.c_str(), F_OK) == 0) {
    auto reqs = readRequires(dir + "/requires");
    if (!reqs.count(kDirstateRequirement)) {
      if (reqs.count("dirstate-v2")) {
        return unsupported(
            "the client's dirstate is in dirstate-v2 form, which hgvfs cannot convert; commit "
            "or export local changes with the hgvfs that made the client, then mount a new "
            "client",
            dir);
      }
      return convertFullDirstate(dir, repo);
    }
    if (::access(pending.c_str(), F_OK) == 0 && ::rename(pending.c_str(), dirstate.c_str()) != 0) {
      int err = errno;
      return ioError(err, "cannot finish converting the dirstate", dirstate);
    }
    return okStatus();
  }
  HG_RETURN_IF_ERROR(makeDirectories(dir));
  std::set<std::string> needs;
  for (const auto& r : readRequires(repo.dotHg() + "/requires")) {
    // The mount's dirstate has one layout, the one docs/DIRSTATE.md names.
    if (r != "shared" && r != "relshared" && r != "dirstate-v2") needs.insert(r);
  }
  needs.insert("shared");
  needs.insert(kDirstateRequirement);
  HG_RETURN_IF_ERROR(writeRequires(dir + "/requires", needs));
  HG_RETURN_IF_ERROR(writeFileAtomically(dir + "/sharedpath", repo.sharedDotHg()));
  std::string hgrc =
      "# Written by hgvfs mount: status comes from the hgvfs daemon.\n" + mountHgrcLines(socket);
  HG_RETURN_IF_ERROR(writeFileAtomically(dir + "/hgrc", hgrc));
  hg::Node p1 = repo.changelog().revlog().node(rev);
  Bytes out;
  hg::DirstateV1Writer writer(
      p1, hg::Node(),
      [&](ByteView chunk) {
        out.append(chunk);
        return okStatus();
      },
      size_t{1} << 16, hg::DirstateFormat::kHgvfs);
  HG_RETURN_IF_ERROR(writer.finish());
  // The dirstate last: its presence says the client is complete.
  return writeFileAtomically(dirstate, out);
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

std::string hgvfsExtensionPath() { return HGVFS_HGEXT_PATH; }

std::string mountHgrcLines(const std::string& socket) {
  return "[extensions]\nhgvfs = " + hgvfsExtensionPath() + "\n[hgvfs]\nsocket = " + socket + "\n";
}

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
  auto maxSize = cacheMaxSize();
  if (!maxSize.ok()) return fail(maxSize.error().message());
  storeOptions.maxBlobBytes = *maxSize;
  auto objects =
      store::ObjectStore::open(shared, cacheDirectoryFor(shared->storePath()), storeOptions);
  if (!objects.ok()) return fail(objects.error().message());
  recordCacheOwner(cacheDirectoryFor(shared->storePath()), shared->root());
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

  fs::FileSystemOptions fsOptions;
  fsOptions.uid = getuid();
  fsOptions.gid = getgid();
  clock_gettime(CLOCK_REALTIME, &fsOptions.time);
  std::unique_ptr<fs::Overlay> overlay;
  if (!options.readOnly) {
    auto opened = fs::Overlay::open(overlayDirectory(client.directory));
    if (!opened.ok()) return fail("cannot open the overlay: " + opened.error().message());
    overlay = std::move(opened).value();
  }
  fs::FileSystem filesystem(store, *root, std::move(overlay), fsOptions);
  std::string dotHg = client.directory + "/dot-hg";
  std::unique_ptr<status::StatusEngine> statusEngine;
  std::unique_ptr<control::Server> control;
  if (!options.readOnly) {
    auto made = ensureDotHg(dotHg, *shared, *rev, control::socketPath(client.directory));
    if (!made.ok()) return fail("cannot make the mount's .hg: " + made.error().message());
    filesystem.setDotHg(dotHg);
    statusEngine = std::make_unique<status::StatusEngine>(filesystem, store, shared->root(), dotHg,
                                                          client.mountPoint);
    control =
        std::make_unique<control::Server>(*statusEngine, control::socketPath(client.directory));
  }
  auto started2 = filesystem.start();
  if (!started2.ok()) return fail("cannot read the overlay: " + started2.error().message());
  raiseFileLimit();

  fs::MountOptions mountOptions;
  mountOptions.mountPoint = client.mountPoint;
  // The mount's source names its client, so `hgvfs doctor` can tell the
  // mounts of its own $HGVFS_HOME from another home's. The option string
  // cannot carry a comma, and mountinfo escapes blanks: such names stay
  // plain "hgvfs".
  if (client.directory.find_first_of(", \t\n\\") == std::string::npos) {
    mountOptions.fsName = "hgvfs:" + client.directory;
  }
  mountOptions.allowOther = options.allowOther;
  mountOptions.debugFuse = options.debugFuse;
  mountOptions.keepCache = options.keepCache;
  mountOptions.cacheReaddir = options.cacheReaddir;
  mountOptions.readdirplus = options.readdirplus;
  mountOptions.zeroMessageOpen = mountOptions.zeroMessageOpendir = options.zeroMessageOpen;
  mountOptions.writebackCache = options.writebackCache;
  mountOptions.xattrs = options.xattrs;
  mountOptions.readOnly = options.readOnly;
  mountOptions.entryTimeout = mountOptions.attrTimeout = mountOptions.negativeTimeout =
      options.cacheTimeout;
  auto server = fs::FuseServer::mount(filesystem, mountOptions);
  if (!server.ok()) return fail(server.error().message());

  {
    std::ofstream pid(pidFile(client.directory), std::ios::trunc);
    pid << getpid() << "\n";
  }
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  log().info("mounted {} revision {} at {} ({:.1f} ms)", client.repository, client.revision,
             client.mountPoint, ms);
  if (control) {
    auto listening = control->start();
    if (!listening.ok()) return fail(listening.error().message());
  }
  tell(readyFd, "ok");
  int rc = (*server)->run();
  if (control) control->stop();
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

}  // namespace hgvfs::daemon
