#include "fs/status.h"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "fs/log.h"
#include "hgbridge/repository.h"

namespace hgvfs::fs {
namespace {

hg::Result<Bytes> readWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    return hg::ioError(err, "cannot read", path);
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string identityOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path + ":-;";
  return path + ":" + std::to_string(st.st_ino) + "," + std::to_string(st.st_size) + "," +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + "," +
         std::to_string(st.st_ctim.tv_nsec) + ";";
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}

}  // namespace

std::vector<std::string> uiIgnoreValues(const std::string& hgrc) {
  std::ifstream in(hgrc);
  std::map<std::string, std::string> values;
  std::vector<std::string> order;
  std::string section;
  for (std::string line; std::getline(in, line);) {
    std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t[0] == '[') {
      section = trim(t.substr(1, t.find(']') - 1));
      continue;
    }
    size_t eq = t.find('=');
    if (section != "ui" || eq == std::string::npos) continue;
    std::string key = trim(t.substr(0, eq));
    if (key != "ignore" && key.rfind("ignore.", 0) != 0) continue;
    if (!values.count(key)) order.push_back(key);
    values[key] = trim(t.substr(eq + 1));
  }
  std::vector<std::string> out;
  for (const auto& k : order) out.push_back(values[k]);
  return out;
}

StatusEngine::StatusEngine(FileSystem& fs, std::shared_ptr<store::ObjectStore> objects,
                           std::string repositoryRoot, std::string dotHg, std::string mountPoint)
    : fs_(fs),
      objects_(std::move(objects)),
      repositoryRoot_(std::move(repositoryRoot)),
      dotHg_(std::move(dotHg)),
      mountPoint_(std::move(mountPoint)) {}

hg::Status StatusEngine::refreshDirstate() {
  std::string path = dotHg_ + "/dirstate";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    return hg::ioError(err, "cannot read the dirstate", path);
  }
  if (st.st_ino == dirstate_.ino && st.st_size == dirstate_.size &&
      st.st_mtim.tv_sec == dirstate_.mtime.tv_sec &&
      st.st_mtim.tv_nsec == dirstate_.mtime.tv_nsec) {
    return hg::okStatus();
  }
  HG_ASSIGN_OR_RETURN(Bytes data, readWhole(path));
  DirstateCache fresh;
  auto parents = hg::visitDirstateV1(
      data,
      [&](const hg::DirstateEntryView& v) {
        if (v.copySource) fresh.copies.emplace(Bytes(v.path), Bytes(*v.copySource));
        if (v.state != 'n' || v.size == -2 || v.copySource) {
          fresh.special.emplace(Bytes(v.path), hg::DirstateEntry::from(v));
        }
      },
      path);
  if (!parents.ok()) return std::move(parents).takeError();
  fresh.p1 = parents->first;
  fresh.p2 = parents->second;
  fresh.mtime = st.st_mtim;
  fresh.size = st.st_size;
  fresh.ino = st.st_ino;
  dirstate_ = std::move(fresh);
  return hg::okStatus();
}

hg::Result<std::vector<Bytes>> StatusEngine::trackedNormal() {
  std::string path = dotHg_ + "/dirstate";
  HG_ASSIGN_OR_RETURN(Bytes data, readWhole(path));
  std::vector<Bytes> out;
  auto parents = hg::visitDirstateV1(
      data,
      [&](const hg::DirstateEntryView& v) {
        if (v.state == 'n') out.emplace_back(v.path);
      },
      path);
  if (!parents.ok()) return std::move(parents).takeError();
  return out;
}

hg::Status StatusEngine::refreshIgnore(std::vector<std::string>& warnings) {
  std::vector<std::string> values = uiIgnoreValues(dotHg_ + "/hgrc");
  std::vector<std::string> files = hg::IgnoreMatcher::ignoreFiles(mountPoint_, values);
  std::string identity = identityOf(dotHg_ + "/hgrc");
  for (const auto& f : files) identity += identityOf(f);
  if (ignore_ && identity == ignoreIdentity_) return hg::okStatus();
  HG_ASSIGN_OR_RETURN(auto matcher, hg::IgnoreMatcher::load(mountPoint_, files));
  ignore_.emplace(std::move(matcher));
  ignoreIdentity_ = identity;
  (void)warnings;  // the caller reports the matcher's warnings on every call
  return hg::okStatus();
}

hg::Result<hg::Node> StatusEngine::resolve(const std::string& rev) {
  auto repo = objects_->repo();
  auto found = repo->lookup(rev);
  if (!found.ok()) {
    // Perhaps committed since this snapshot of the repository was taken.
    HG_ASSIGN_OR_RETURN(auto fresh, hg::Repository::open(repositoryRoot_));
    std::shared_ptr<const hg::Repository> shared(std::move(fresh));
    objects_->setRepository(shared);
    repo = shared;
    found = repo->lookup(rev);
    if (!found.ok()) return std::move(found).takeError();
  }
  if (found->isNull()) return hg::Node();
  return repo->changelog().revlog().node(*found);
}

hg::Result<store::TreeId> StatusEngine::treeOf(const hg::Node& node) {
  auto cached = trees_.find(node);
  if (cached != trees_.end()) return cached->second;
  HG_ASSIGN_OR_RETURN(hg::Node resolved, resolve(node.hex()));
  auto repo = objects_->repo();
  HG_ASSIGN_OR_RETURN(hg::Revision rev, repo->lookup(resolved.hex()));
  HG_ASSIGN_OR_RETURN(store::TreeId tree, objects_->importCommit(rev));
  trees_.emplace(node, tree);
  return tree;
}

// The file `path` in the tree `root`, if there is one.
static hg::Result<std::optional<store::TreeEntry>> findFile(store::ObjectStore& objects,
                                                            const store::TreeId& root,
                                                            ByteView path) {
  store::TreeId dir = root;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    ByteView name = path.substr(start, slash == ByteView::npos ? ByteView::npos : slash - start);
    HG_ASSIGN_OR_RETURN(auto tree, objects.tree(dir));
    const store::TreeEntry* e = tree->find(name);
    if (!e) return std::optional<store::TreeEntry>();
    if (slash == ByteView::npos) {
      if (e->isDirectory()) return std::optional<store::TreeEntry>();
      return std::optional<store::TreeEntry>(*e);
    }
    if (!e->isDirectory()) return std::optional<store::TreeEntry>();
    dir = e->treeId();
    start = slash + 1;
  }
}

// Copies shown by `hg status --rev REV -C`: for each added file, its copy
// source in REV — from the dirstate (copied since p1), else followed back
// through the copy metadata of its file revisions in p1 (committed copies),
// as Mercurial's pathcopies does for a linear history.
hg::Status StatusEngine::copiesAgainst(const hg::Node& base, StatusResult& result) {
  if (base.isNull()) return hg::okStatus();
  HG_ASSIGN_OR_RETURN(store::TreeId baseTree, treeOf(base));
  std::optional<store::TreeId> p1Tree;
  if (!dirstate_.p1.isNull()) {
    HG_ASSIGN_OR_RETURN(p1Tree, treeOf(dirstate_.p1));
  }
  auto repo = objects_->repo();
  for (const auto& dest : result.added) {
    Bytes path = dest;
    std::optional<hg::Node> node;
    auto copied = dirstate_.copies.find(dest);
    if (copied != dirstate_.copies.end()) {
      path = copied->second;
      if (p1Tree) {
        HG_ASSIGN_OR_RETURN(auto e, findFile(*objects_, *p1Tree, path));
        if (e) node = e->id;
      }
      HG_ASSIGN_OR_RETURN(auto inBase, findFile(*objects_, baseTree, path));
      if (inBase) {
        if (path != dest) result.copies.emplace_back(dest, path);
        continue;
      }
    } else if (p1Tree) {
      HG_ASSIGN_OR_RETURN(auto e, findFile(*objects_, *p1Tree, path));
      if (e) node = e->id;
    }
    for (int step = 0; node && step < 32; ++step) {
      HG_ASSIGN_OR_RETURN(hg::Filelog log, repo->filelog(path));
      HG_ASSIGN_OR_RETURN(auto text, log.readWithMetadata(*node));
      if (!text.metadata.copy) break;
      path = text.metadata.copy->path;
      node = text.metadata.copy->node;
      HG_ASSIGN_OR_RETURN(auto inBase, findFile(*objects_, baseTree, path));
      if (inBase) {
        if (path != dest) result.copies.emplace_back(dest, path);
        break;
      }
    }
  }
  std::sort(result.copies.begin(), result.copies.end());
  return hg::okStatus();
}

hg::Result<StatusResult> StatusEngine::status(const StatusRequest& request) {
  std::lock_guard lock(mutex_);
  StatusResult result;
  HG_RETURN_IF_ERROR(refreshDirstate());
  // Like hg, read .hgignore only when unknown or ignored files are asked
  // for (a broken one must not break `hg diff`).
  bool needIgnore = request.unknown || request.ignored;
  if (needIgnore) {
    auto ignoreLoaded = refreshIgnore(result.warnings);
    if (!ignoreLoaded.ok()) return std::move(ignoreLoaded).takeError();
    for (const auto& w : ignore_->warnings()) result.warnings.push_back(w);
  }
  result.p1 = dirstate_.p1;
  hg::Node base = dirstate_.p1;
  if (request.rev) {
    HG_ASSIGN_OR_RETURN(base, resolve(*request.rev));
  }
  std::optional<store::TreeId> baseTree;
  if (!base.isNull()) {
    HG_ASSIGN_OR_RETURN(baseTree, treeOf(base));
  }
  hg::IgnoreDirCache dirCache;
  DiffOptions options;
  // Against another revision, tracked files may sit in ignored directories
  // that revision lacks: list everything, and ignore untracked files below.
  if (needIgnore && !ignore_->empty() && !request.rev) {
    const hg::IgnoreMatcher& matcher = *ignore_;
    options.ignored = [&](ByteView path) { return matcher.ignored(path, dirCache); };
  }
  options.listIgnored = request.ignored;
  HG_ASSIGN_OR_RETURN(WorkingDiff diff, fs_.diff(baseTree, options));
  auto isIgnored = [&](const Bytes& path) {
    return needIgnore && !ignore_->empty() && ignore_->ignored(path, dirCache);
  };

  const auto& special = dirstate_.special;
  std::set<Bytes, std::less<>> handled;
  auto exists = [&](const Bytes& path) -> hg::Result<bool> { return fs_.fileExists(path); };
  if (request.rev) {
    // Working copy against another revision (hg status --rev REV): a file
    // the working copy tracks (in p1 unless removed, or added) and REV
    // disagree on is M, A or R; a tracked file missing from disk is !.
    std::optional<store::TreeId> p1Tree;
    if (!dirstate_.p1.isNull()) {
      HG_ASSIGN_OR_RETURN(p1Tree, treeOf(dirstate_.p1));
    }
    auto inP1 = [&](const Bytes& path) -> hg::Result<bool> {
      if (!p1Tree) return false;
      store::TreeId dir = *p1Tree;
      size_t start = 0;
      while (true) {
        size_t slash = path.find('/', start);
        ByteView name =
            ByteView(path).substr(start, slash == Bytes::npos ? ByteView::npos : slash - start);
        HG_ASSIGN_OR_RETURN(auto tree, objects_->tree(dir));
        const store::TreeEntry* e = tree->find(name);
        if (!e) return false;
        if (slash == Bytes::npos) return !e->isDirectory();
        if (!e->isDirectory()) return false;
        dir = e->treeId();
        start = slash + 1;
      }
    };
    // -1: removed from tracking ('r'); 0: untracked; 1: tracked.
    auto tracking = [&](const Bytes& path) -> hg::Result<int> {
      auto it = special.find(path);
      if (it != special.end()) return it->second.state == 'r' ? -1 : 1;
      HG_ASSIGN_OR_RETURN(bool p1Has, inP1(path));
      return p1Has ? 1 : 0;
    };
    for (const auto& p : diff.modified) {
      handled.insert(p);
      HG_ASSIGN_OR_RETURN(int t, tracking(p));
      if (t == 1) {
        result.modified.push_back(p);
      } else {
        result.removed.push_back(p);
        if (t == 0) result.unknown.push_back(p);
      }
    }
    for (const auto& list : {&diff.added, &diff.addedIgnored}) {
      for (const auto& p : *list) {
        handled.insert(p);
        HG_ASSIGN_OR_RETURN(int t, tracking(p));
        if (t == 1) {
          result.added.push_back(p);
        } else if (t == 0) {
          if (isIgnored(p)) {
            if (request.ignored) result.ignored.push_back(p);
          } else {
            result.unknown.push_back(p);
          }
        }
      }
    }
    for (const auto& p : diff.removed) {
      handled.insert(p);
      HG_ASSIGN_OR_RETURN(int t, tracking(p));
      (t == 1 ? result.deleted : result.removed).push_back(p);
    }
    // Tracked files missing from disk are ! whatever REV holds (hg takes
    // them from the working copy's own status): those REV lacks are not in
    // the diff above.
    if (p1Tree) {
      HG_ASSIGN_OR_RETURN(WorkingDiff fromP1, fs_.diff(p1Tree, DiffOptions{}));
      for (const auto& p : fromP1.removed) {
        if (handled.count(p)) continue;
        auto it = special.find(p);
        if (it != special.end() && it->second.state == 'r') continue;
        handled.insert(p);
        result.deleted.push_back(p);
      }
    }
    // Files equal in REV and on disk that the working copy does not track.
    for (const auto& [path, entry] : special) {
      if (handled.count(path)) continue;
      HG_ASSIGN_OR_RETURN(bool there, exists(path));
      if (entry.state == 'r') {
        if (there) result.removed.push_back(path);
      } else if (!there) {
        result.deleted.push_back(path);
      } else if (entry.state == 'a') {
        // Not in the diff and on disk: REV has it with these bytes, unless
        // it is ignored (then the diff did not list it).
        if (isIgnored(path)) result.added.push_back(path);
      }
    }
  } else {
    // A path the mount and the base disagree on, present in the mount.
    auto present = [&](const Bytes& path, bool inBase, bool ignoredPath) {
      auto it = special.find(path);
      if (it == special.end()) {
        if (inBase) {
          result.modified.push_back(path);
        } else if (ignoredPath) {
          result.ignored.push_back(path);
        } else {
          result.unknown.push_back(path);
        }
        return;
      }
      handled.insert(path);
      switch (it->second.state) {
        case 'a':
          result.added.push_back(path);
          break;
        case 'r':
          result.removed.push_back(path);
          break;
        default:  // 'm', 'n' from p2 or copied
          result.modified.push_back(path);
          break;
      }
    };
    for (const auto& p : diff.modified) present(p, true, false);
    for (const auto& p : diff.added) present(p, false, false);
    for (const auto& p : diff.addedIgnored) present(p, false, true);
    for (const auto& p : diff.removed) {
      auto it = special.find(p);
      if (it != special.end()) {
        handled.insert(p);
        if (it->second.state == 'r') {
          result.removed.push_back(p);
          continue;
        }
      }
      result.deleted.push_back(p);
    }
    // Special entries whose file the diff did not mention (equal to the base,
    // ignored and not listed, or absent from both).
    for (const auto& [path, entry] : special) {
      if (handled.count(path)) continue;
      if (entry.state == 'r') {
        result.removed.push_back(path);
        continue;
      }
      HG_ASSIGN_OR_RETURN(bool there, exists(path));
      if (!there) {
        result.deleted.push_back(path);
      } else if (entry.state == 'a') {
        result.added.push_back(path);
      } else {
        result.modified.push_back(path);
      }
    }
  }
  if (request.clean) {
    std::set<Bytes, std::less<>> listed;
    for (auto* l : {&result.modified, &result.added, &result.removed, &result.deleted}) {
      listed.insert(l->begin(), l->end());
    }
    HG_ASSIGN_OR_RETURN(auto normal, trackedNormal());
    for (auto& p : normal) {
      if (!listed.count(p)) result.clean.push_back(std::move(p));
    }
  }
  if (!request.unknown) result.unknown.clear();
  for (auto* l : {&result.modified, &result.added, &result.removed, &result.deleted,
                  &result.unknown, &result.ignored, &result.clean}) {
    std::sort(l->begin(), l->end());
    l->erase(std::unique(l->begin(), l->end()), l->end());
  }
  std::set<Bytes, std::less<>> shown(result.added.begin(), result.added.end());
  shown.insert(result.modified.begin(), result.modified.end());
  shown.insert(result.deleted.begin(), result.deleted.end());
  if (!request.rev) {
    for (const auto& [dest, source] : dirstate_.copies) {
      if (shown.count(dest)) result.copies.emplace_back(dest, source);
    }
  } else {
    HG_RETURN_IF_ERROR(copiesAgainst(base, result));
  }
  return result;
}

}  // namespace hgvfs::fs
