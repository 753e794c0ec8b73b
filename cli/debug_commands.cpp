#include "cli/debug_commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <set>

#include "hgbridge/bulk.h"
#include "hgbridge/repository.h"
#include "hgbridge/revision_names.h"
#include "hgbridge/verify.h"

namespace hgvfs::cli {
namespace {

constexpr int kAbort = 255;

int fail(const Error& e) {
  std::fprintf(stderr, "hgvfs: %s\n", e.message().c_str());
  return kAbort;
}

int fail(const std::string& message) {
  std::fprintf(stderr, "hgvfs: %s\n", message.c_str());
  return kAbort;
}

bool writeAll(int fd, ByteView data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

struct Opened {
  std::unique_ptr<hg::Repository> repo;
  hg::Revision rev;
  hg::Node node;
};

Result<Opened> openAt(const std::string& path, const std::string& spec) {
  Opened o;
  HG_ASSIGN_OR_RETURN(o.repo, hg::Repository::open(path));
  HG_ASSIGN_OR_RETURN(hg::ResolvedRevision resolved, hg::resolveRevision(*o.repo, spec));
  o.rev = resolved.rev;
  o.node = o.repo->changelog().revlog().node(o.rev);
  return o;
}

// Splits a path on '/', dropping empty and "." components and resolving
// "..". False if the path leaves the root.
bool normalizeInto(ByteView path, std::vector<Bytes>& parts) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == ByteView::npos) slash = path.size();
    ByteView part = path.substr(start, slash - start);
    if (part == "..") {
      if (parts.empty()) return false;
      parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.emplace_back(part);
    }
    start = slash + 1;
  }
  return true;
}

Bytes joinParts(const std::vector<Bytes>& parts) {
  Bytes out;
  for (const auto& p : parts) {
    if (!out.empty()) out.push_back('/');
    out += p;
  }
  return out;
}

// The repository-relative form of a command-line path: relative to the
// current directory when that is inside the repository (as hg does),
// otherwise relative to the repository root.
Result<Bytes> canonicalPath(const std::string& root, const std::string& arg) {
  std::vector<Bytes> parts;
  char cwdBuf[PATH_MAX];
  std::string cwd = getcwd(cwdBuf, sizeof cwdBuf) ? cwdBuf : "";
  bool absolute = !arg.empty() && arg[0] == '/';
  std::string base;
  if (absolute) {
    base = arg;
  } else if (cwd == root || cwd.rfind(root + "/", 0) == 0) {
    base = cwd + "/" + arg;
  } else {
    base = root + "/" + arg;
  }
  std::vector<Bytes> rootParts;
  normalizeInto(root, rootParts);
  if (!normalizeInto(base, parts) || parts.size() < rootParts.size() ||
      !std::equal(rootParts.begin(), rootParts.end(), parts.begin())) {
    return invalidArgument(arg + " not under root '" + root + "'");
  }
  parts.erase(parts.begin(), parts.begin() + static_cast<long>(rootParts.size()));
  return joinParts(parts);
}

// A manifest path that is safe to create under a directory: relative, no
// empty, "." or ".." component, no ".hg" component.
bool safeRelativePath(ByteView path) {
  if (path.empty() || path[0] == '/') return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == ByteView::npos) slash = path.size();
    ByteView part = path.substr(start, slash - start);
    if (part.empty() || part == "." || part == ".." || part == ".hg" || part.size() > NAME_MAX) {
      return false;
    }
    start = slash + 1;
  }
  return true;
}

}  // namespace

int debugManifest(const std::string& repoPath, const std::string& rev) {
  auto opened = openAt(repoPath, rev);
  if (!opened.ok()) return fail(opened.error());
  auto manifest = opened->repo->manifestOf(opened->rev);
  if (!manifest.ok()) return fail(manifest.error());
  Bytes out;
  out.reserve(manifest->text().size() + manifest->size() * 8);
  for (const auto& e : manifest->entries()) {
    out += e.node.hex();
    switch (e.kind) {
      case hg::FileKind::kRegular:
        out += " 644   ";
        break;
      case hg::FileKind::kExecutable:
        out += " 755 * ";
        break;
      case hg::FileKind::kSymlink:
        out += " 644 @ ";
        break;
    }
    out += e.path;
    out.push_back('\n');
  }
  return writeAll(1, out) ? 0 : kAbort;
}

int debugCat(const std::string& repoPath, const std::string& rev,
             const std::vector<std::string>& args) {
  auto opened = openAt(repoPath, rev);
  if (!opened.ok()) return fail(opened.error());
  const hg::Repository& repo = *opened->repo;
  auto manifest = repo.manifestOf(opened->rev);
  if (!manifest.ok()) return fail(manifest.error());

  // Which entries each argument selects: the file itself, or everything
  // under it when it names a directory. Output follows manifest order.
  std::vector<bool> selected(manifest->size(), false);
  auto entries = manifest->entries();
  for (const auto& arg : args) {
    auto path = canonicalPath(repo.root(), arg);
    if (!path.ok()) return fail(path.error());
    bool matched = false;
    if (path->empty()) {
      std::fill(selected.begin(), selected.end(), true);
      matched = !entries.empty();
    } else {
      Bytes prefix = *path + "/";
      auto it = std::lower_bound(entries.begin(), entries.end(), ByteView(*path),
                                 [](const hg::ManifestEntry& e, ByteView p) { return e.path < p; });
      for (; it != entries.end(); ++it) {
        if (it->path == *path) {
          selected[static_cast<size_t>(it - entries.begin())] = true;
          matched = true;
        } else if (it->path.substr(0, prefix.size()) == prefix) {
          selected[static_cast<size_t>(it - entries.begin())] = true;
          matched = true;
        } else if (it->path.substr(0, path->size()) != ByteView(*path)) {
          break;  // past every path that starts with the argument
        }
      }
    }
    if (!matched) {
      std::fprintf(stderr, "%s: no such file in rev %s\n", path->c_str(),
                   opened->node.shortHex().c_str());
    }
  }
  bool wrote = false;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!selected[i]) continue;
    auto fl = repo.filelog(entries[i].path);
    if (!fl.ok()) return fail(fl.error());
    auto content = fl->read(entries[i].node);
    if (!content.ok()) return fail(content.error());
    if (!writeAll(1, *content)) return kAbort;
    wrote = true;
  }
  return wrote ? 0 : 1;
}

int debugVerify(const std::string& repoPath) {
  auto repo = hg::Repository::open(repoPath);
  if (!repo.ok()) {
    std::fprintf(stderr, "hgvfs: %s\n", repo.error().message().c_str());
    return 1;
  }
  auto stats = hg::verifyRepository(**repo);
  if (!stats.ok()) {
    std::fprintf(stderr, "hgvfs: verify failed: %s\n", stats.error().message().c_str());
    return 1;
  }
  std::printf("checked %zu changesets, %zu manifests, %zu file revisions in %zu files\n",
              stats->changesets, stats->manifests, stats->fileRevisions, stats->filelogs);
  return 0;
}

int debugArchive(const std::string& repoPath, const std::string& rev, const std::string& dest) {
  auto opened = openAt(repoPath, rev);
  if (!opened.ok()) return fail(opened.error());
  auto manifest = opened->repo->manifestOf(opened->rev);
  if (!manifest.ok()) return fail(manifest.error());
  for (const auto& e : manifest->entries()) {
    if (!safeRelativePath(e.path)) {
      return fail("refusing to write unsafe manifest path '" + printable(e.path) + "'");
    }
  }
  // Directories first, in one thread; then the files in parallel.
  std::set<Bytes> dirs;
  for (const auto& e : manifest->entries()) {
    for (size_t slash = e.path.find('/'); slash != ByteView::npos;
         slash = e.path.find('/', slash + 1)) {
      dirs.emplace(e.path.substr(0, slash));
    }
  }
  if (mkdir(dest.c_str(), 0755) != 0 && errno != EEXIST) {
    return fail(dest + ": " + std::strerror(errno));
  }
  for (const auto& d : dirs) {
    std::string full = dest + "/" + d;
    if (mkdir(full.c_str(), 0755) != 0 && errno != EEXIST) {
      return fail(full + ": " + std::strerror(errno));
    }
  }
  auto status = hg::readAllFiles(
      *opened->repo, *manifest, [&](const hg::ManifestEntry& e, ByteView content) -> Status {
        std::string full = dest + "/" + Bytes(e.path);
        unlink(full.c_str());
        if (e.kind == hg::FileKind::kSymlink) {
          if (symlink(Bytes(content).c_str(), full.c_str()) != 0) {
            return ioError(errno, std::strerror(errno), full);
          }
          return okStatus();
        }
        mode_t mode = e.kind == hg::FileKind::kExecutable ? 0755 : 0644;
        int fd = open(full.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0) return ioError(errno, std::strerror(errno), full);
        bool ok = writeAll(fd, content);
        int err = errno;
        fchmod(fd, mode);
        close(fd);
        if (!ok) return ioError(err, std::strerror(err), full);
        return okStatus();
      });
  if (!status.ok()) return fail(status.error());
  return 0;
}

int debugReadAll(const std::string& repoPath, const std::string& rev, int threads) {
  std::unique_ptr<tbb::global_control> limit;
  if (threads > 0) {
    limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                  static_cast<size_t>(threads));
  }
  auto start = std::chrono::steady_clock::now();
  auto opened = openAt(repoPath, rev);
  if (!opened.ok()) return fail(opened.error());
  auto manifest = opened->repo->manifestOf(opened->rev);
  if (!manifest.ok()) return fail(manifest.error());
  std::atomic<uint64_t> bytes{0};
  auto status = hg::readAllFiles(*opened->repo, *manifest,
                                 [&](const hg::ManifestEntry&, ByteView content) -> Status {
                                   bytes += content.size();
                                   return okStatus();
                                 });
  if (!status.ok()) return fail(status.error());
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("files=%zu bytes=%llu seconds=%.3f\n", manifest->size(),
              static_cast<unsigned long long>(bytes.load()), seconds);
  return 0;
}

}  // namespace hgvfs::cli
