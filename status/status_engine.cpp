#include "status/status_engine.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "base/hgrc.h"
#include "hgbridge/repository.h"
#include "hgbridge/revision_names.h"
#include "status/copy_tracing.h"
#include "status/log.h"
#include "status/mount_stats.h"
#include "store/tree_diff.h"

namespace hgvfs::status {
namespace {

// What identifies a version of a file cheaply: a rewrite changes one of these.
std::string identityOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path + ":-;";
  return path + ":" + std::to_string(st.st_ino) + "," + std::to_string(st.st_size) + "," +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + "," +
         std::to_string(st.st_ctim.tv_nsec) + ";";
}

// A file's manifest entry (hex node, flags) into `node`/`flags`; nothing for
// no entry or a directory.
void setManifestEntry(const std::optional<store::TreeEntry>& entry,
                      std::optional<std::string>& node, std::string& flags) {
  if (!entry || entry->isDirectory()) return;
  node = entry->id.hex();
  flags = entry->kind == store::EntryKind::kExecutable ? "x"
          : entry->kind == store::EntryKind::kSymlink  ? "l"
                                                       : "";
}

}  // namespace

std::vector<std::string> uiIgnoreValues(const std::string& hgrc) {
  std::vector<std::string> out;
  auto config = Hgrc::read(hgrc);
  if (!config.ok()) return out;
  for (const auto& [key, value] : config->items("ui")) {
    if (key == "ignore" || key.rfind("ignore.", 0) == 0) out.push_back(value);
  }
  return out;
}

StatusEngine::StatusEngine(fs::FileSystem& fs, std::shared_ptr<store::ObjectStore> objects,
                           std::string repositoryRoot, std::string dotHg, std::string mountPoint)
    : fs_(fs),
      objects_(std::move(objects)),
      repositoryRoot_(std::move(repositoryRoot)),
      dotHg_(std::move(dotHg)),
      mountPoint_(std::move(mountPoint)),
      dirstate_(dotHg_ + "/dirstate") {}

Status StatusEngine::refreshIgnore() {
  std::vector<std::string> values = uiIgnoreValues(dotHg_ + "/hgrc");
  std::vector<std::string> files = match::IgnoreMatcher::ignoreFiles(mountPoint_, values);
  std::string identity = identityOf(dotHg_ + "/hgrc");
  for (const auto& f : files) identity += identityOf(f);
  if (ignore_ && identity == ignoreIdentity_) return okStatus();
  auto matcher = match::IgnoreMatcher::load(mountPoint_, files);
  if (!matcher.ok()) {
    ignore_.reset();  // never an older file's rules
    ignoreIdentity_.clear();
    return std::move(matcher).takeError();
  }
  ignore_.emplace(std::move(matcher).value());
  ignoreIdentity_ = identity;
  return okStatus();
}

std::function<bool(ByteView)> StatusEngine::ignoredPaths() {
  const match::IgnoreMatcher* matcher = useIgnore_ ? &*ignore_ : nullptr;
  match::IgnoreDirCache* dirs = &ignoreDirs_;
  return [matcher, dirs](ByteView path) { return matcher && matcher->ignored(path, *dirs); };
}

Result<fs::WorkingDiff> StatusEngine::diffOf(const std::optional<store::TreeId>& tree,
                                             const fs::DiffOptions& options) {
  DiffKey key;
  // Read before the diff: a change during it moves the count past the key.
  key.generation = fs_.changeGeneration();
  key.tree = tree;
  key.ignoring = static_cast<bool>(options.ignored);
  if (key.ignoring) key.ignoreIdentity = ignoreIdentity_;
  key.listIgnored = options.listIgnored;
  if (lastDiff_ && lastDiff_->first == key) return lastDiff_->second;
  HG_ASSIGN_OR_RETURN(fs::WorkingDiff diff, fs_.diff(tree, options));
  lastDiff_.emplace(std::move(key), diff);
  return diff;
}

// A revision as `hg -r` names it (hgbridge/revision_names.h).
static Result<hg::Revision> lookupName(const hg::Repository& repo, const std::string& spec) {
  HG_ASSIGN_OR_RETURN(hg::ResolvedRevision resolved, hg::resolveRevision(repo, spec));
  return resolved.rev;
}

Result<hg::Node> StatusEngine::resolve(const std::string& rev) {
  auto repo = objects_->repo();
  auto found = lookupName(*repo, rev);
  if (!found.ok()) {
    // Perhaps committed since this snapshot of the repository was taken.
    HG_ASSIGN_OR_RETURN(auto fresh, hg::Repository::open(repositoryRoot_));
    std::shared_ptr<const hg::Repository> shared(std::move(fresh));
    objects_->setRepository(shared);
    repo = shared;
    found = lookupName(*repo, rev);
    if (!found.ok()) return std::move(found).takeError();
  }
  if (found->isNull()) return hg::Node();
  return repo->changelog().revlog().node(*found);
}

// A node names a changeset and nothing else: no name lookup (a node the
// repository lacks went through bookmarks, tags — which parse a manifest —
// and `hg log -r` before being refused: a second or more at a million
// files, for every question about a commit still inside hg's transaction).
Result<hg::Revision> StatusEngine::revisionOf(const hg::Node& node) {
  auto found = objects_->repo()->changelog().revlog().rev(node);
  if (found.ok()) return *found;
  // Perhaps committed since this snapshot of the repository was taken.
  HG_ASSIGN_OR_RETURN(auto fresh, hg::Repository::open(repositoryRoot_));
  std::shared_ptr<const hg::Repository> shared(std::move(fresh));
  objects_->setRepository(shared);
  found = shared->changelog().revlog().rev(node);
  if (!found.ok()) return notFound("unknown revision " + node.hex());
  return *found;
}

Result<store::TreeId> StatusEngine::treeOf(const hg::Node& node) {
  auto cached = trees_.find(node);
  if (cached != trees_.end()) return cached->second;
  HG_ASSIGN_OR_RETURN(hg::Revision rev, revisionOf(node));
  HG_ASSIGN_OR_RETURN(store::TreeId tree, objects_->importCommit(rev));
  trees_.emplace(node, tree);
  return tree;
}

Result<control::StatusReply> StatusEngine::status(const control::StatusRequest& request) {
  MutexLock lock(mutex_);
  control::StatusReply result;
  // The callbacks run inside refresh(), under mutex_ held here; the
  // analysis cannot see through std::function, hence the opt-outs.
  HG_RETURN_IF_ERROR(dirstate_.refresh(
      request.clean,
      [this](const hg::Node& p1, ByteView path) NO_THREAD_SAFETY_ANALYSIS -> Result<bool> {
        HG_ASSIGN_OR_RETURN(store::TreeId tree, treeOf(p1));
        HG_ASSIGN_OR_RETURN(auto entry, objects_->findEntry(tree, path));
        return entry && !entry->isDirectory();
      },
      [this](const hg::Node& p1) NO_THREAD_SAFETY_ANALYSIS -> Result<std::vector<Bytes>> {
        HG_ASSIGN_OR_RETURN(store::TreeId tree, treeOf(p1));
        std::vector<Bytes> files;
        HG_RETURN_IF_ERROR(objects_->listFiles(tree, Bytes(), files));
        return files;
      }));
  // Like hg, read .hgignore only when unknown or ignored files are asked
  // for (a broken one must not break `hg diff`).
  bool needIgnore = request.unknown || request.ignored;
  // hg reads the ignore rules before its walk when it lists unknown files
  // but not ignored ones; when it lists ignored ones it reads them at the
  // first untracked file it meets, so a broken rule fails only if there is
  // one (dirstate.walk and dirstate.status).
  std::optional<Error> ignoreError;
  if (needIgnore) {
    Status loaded = refreshIgnore();
    if (loaded.ok()) {
      for (const auto& w : ignore_->warnings()) result.warnings.push_back(w);
    } else if (!request.ignored) {
      return std::move(loaded).takeError();
    } else {
      ignoreError = std::move(loaded).takeError();
    }
  }
  useIgnore_ = needIgnore && ignore_ && !ignore_->empty();
  ignoreDirs_.clear();
  result.p1 = dirstate_.p1().hex();
  if (!dematerializedFor_ || *dematerializedFor_ != dirstate_.p1()) {
    // The parent moved (a commit, an update): files now equal to it need
    // no overlay file, and status no longer needs to look at them.
    dematerializedFor_ = dirstate_.p1();
    if (!dirstate_.p1().isNull()) {
      HG_ASSIGN_OR_RETURN(store::TreeId p1Tree, treeOf(dirstate_.p1()));
      auto demoted = fs_.dematerializeUnchanged(p1Tree);
      if (!demoted.ok()) {
        log().warn("could not give files equal to {} back their revision's identity: {}",
                   dirstate_.p1().shortHex(), demoted.error().message());
      } else if (*demoted) {
        log().info("{} files equal to {} are no longer materialized", *demoted,
                   dirstate_.p1().shortHex());
      }
    }
  }
  hg::Node base = dirstate_.p1();
  if (request.rev) {
    HG_ASSIGN_OR_RETURN(base, resolve(*request.rev));
  }
  std::optional<store::TreeId> baseTree;
  if (!base.isNull()) {
    HG_ASSIGN_OR_RETURN(baseTree, treeOf(base));
  }
  fs::DiffOptions options;
  // Against another revision, tracked files may sit in ignored directories
  // that revision lacks: list everything, and ignore untracked files below.
  if (useIgnore_ && !request.rev) {
    options.ignored = ignoredPaths();
  }
  options.listIgnored = request.ignored;
  HG_ASSIGN_OR_RETURN(fs::WorkingDiff diff, diffOf(baseTree, options));
  if (request.rev) {
    HG_RETURN_IF_ERROR(combineWithRev(diff, baseTree, request, result));
  } else {
    HG_RETURN_IF_ERROR(combineWithP1(diff, request, result));
  }
  if (request.clean) {
    std::set<Bytes, std::less<>> listed;
    for (auto* l : {&result.modified, &result.added, &result.removed, &result.deleted}) {
      listed.insert(l->begin(), l->end());
    }
    for (const auto& p : dirstate_.normal()) {
      if (!listed.count(p)) result.clean.push_back(p);
    }
  }
  // Without rules every untracked file is listed as unknown: if there is
  // one, hg would have read the broken rules.
  if (ignoreError && (!result.unknown.empty() || !result.ignored.empty())) return *ignoreError;
  if (!request.unknown) result.unknown.clear();
  for (auto* l : {&result.modified, &result.added, &result.removed, &result.deleted,
                  &result.unknown, &result.ignored, &result.clean}) {
    if (!std::is_sorted(l->begin(), l->end())) std::sort(l->begin(), l->end());
    l->erase(std::unique(l->begin(), l->end()), l->end());
  }
  if (!request.rev) {
    auto shown = [&result](const Bytes& path) {
      for (const auto* l : {&result.added, &result.modified, &result.deleted}) {
        if (std::binary_search(l->begin(), l->end(), path)) return true;
      }
      return false;
    };
    for (const auto& [dest, source] : dirstate_.copies()) {
      if (shown(dest)) result.copies.emplace_back(dest, source);
    }
  } else if (baseTree) {
    std::optional<store::TreeId> p1Tree;
    if (!dirstate_.p1().isNull()) {
      HG_ASSIGN_OR_RETURN(p1Tree, treeOf(dirstate_.p1()));
    }
    HG_ASSIGN_OR_RETURN(result.copies, copiesAgainst(*objects_, p1Tree, *baseTree,
                                                     dirstate_.copies(), result.added));
  }
  return result;
}

Result<std::optional<store::TreeId>> StatusEngine::treeOfHex(const std::string& hex) {
  std::optional<hg::Node> node = hg::Node::fromHex(hex);
  if (!node) return invalidArgument("not a full hex node: " + hex);
  if (node->isNull()) return std::optional<store::TreeId>();
  HG_ASSIGN_OR_RETURN(store::TreeId tree, treeOf(*node));
  return std::optional<store::TreeId>(tree);
}

// Depth first, stopping at the first file that is not excepted: the walk
// costs the excepted files and the directories above them, not the subtree.
Result<bool> StatusEngine::hasFileOutside(const store::TreeId& tree, const Bytes& prefix,
                                          const std::set<Bytes, std::less<>>& except) {
  HG_ASSIGN_OR_RETURN(auto t, objects_->tree(tree));
  for (const auto& e : t->entries()) {
    Bytes child = prefix.empty() ? e.name : prefix + "/" + e.name;
    if (!e.isDirectory()) {
      if (!except.count(child)) return true;
      continue;
    }
    HG_ASSIGN_OR_RETURN(bool found, hasFileOutside(e.treeId(), child, except));
    if (found) return true;
  }
  return false;
}

Result<control::FilesReply> StatusEngine::files(const control::FilesRequest& request) {
  MutexLock lock(mutex_);
  control::FilesReply reply;
  HG_ASSIGN_OR_RETURN(std::optional<store::TreeId> root, treeOfHex(request.node));
  reply.kinds.reserve(request.paths.size());
  for (const auto& path : request.paths) {
    control::FileKind kind = control::FileKind::kAbsent;
    if (root) {
      HG_ASSIGN_OR_RETURN(auto entry, objects_->findEntry(*root, path));
      if (entry) {
        switch (entry->kind) {
          case store::EntryKind::kRegular:
            kind = control::FileKind::kRegular;
            break;
          case store::EntryKind::kExecutable:
            kind = control::FileKind::kExecutable;
            break;
          case store::EntryKind::kSymlink:
            kind = control::FileKind::kSymlink;
            break;
          case store::EntryKind::kDirectory:
            break;  // not a file
        }
      }
    }
    reply.kinds.push_back(kind);
  }
  for (const auto& d : request.dirs) {
    bool found = false;
    if (root) {
      std::optional<store::TreeId> dirTree = root;
      if (!d.dir.empty()) {
        HG_ASSIGN_OR_RETURN(auto entry, objects_->findEntry(*root, d.dir));
        dirTree.reset();
        if (entry && entry->isDirectory()) dirTree = entry->treeId();
      }
      if (dirTree) {
        std::set<Bytes, std::less<>> except(d.except.begin(), d.except.end());
        HG_ASSIGN_OR_RETURN(found, hasFileOutside(*dirTree, d.dir, except));
      }
    }
    reply.dirs.push_back(found);
  }
  return reply;
}

Result<control::RevisionDiffReply> StatusEngine::revisionDiff(
    const control::RevisionDiffRequest& request) {
  MutexLock lock(mutex_);
  control::RevisionDiffReply reply;
  HG_ASSIGN_OR_RETURN(std::optional<store::TreeId> from, treeOfHex(request.from));
  HG_ASSIGN_OR_RETURN(std::optional<store::TreeId> to, treeOfHex(request.to));
  // A path that is a file on one side and a directory on the other comes
  // out as a removal and additions: the files are what the map settles.
  HG_RETURN_IF_ERROR(
      store::diffTrees(*objects_, from, to, ByteView(), [&](const store::TreeChange& change) {
        if (change.kind == store::TreeChange::kRemoved) {
          reply.onlyFrom.push_back(change.path);
        } else if (change.kind == store::TreeChange::kAdded) {
          reply.onlyTo.push_back(change.path);
        }
        if (request.entries) {
          control::ManifestEntryPair pair;
          pair.path = change.path;
          setManifestEntry(change.before, pair.fromNode, pair.fromFlags);
          setManifestEntry(change.after, pair.toNode, pair.toFlags);
          reply.changes.push_back(std::move(pair));
        }
      }));
  // diffTrees gives manifest order, which is bytewise; sorting keeps the
  // promise whatever the walk's order becomes.
  std::sort(reply.onlyFrom.begin(), reply.onlyFrom.end());
  std::sort(reply.onlyTo.begin(), reply.onlyTo.end());
  std::sort(reply.changes.begin(), reply.changes.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  if (request.entries) {
    reply.entries.reserve(request.paths.size());
    for (const Bytes& path : request.paths) {
      control::ManifestEntryPair pair;
      pair.path = path;
      for (auto [root, node, flags] : {std::tuple(&from, &pair.fromNode, &pair.fromFlags),
                                       std::tuple(&to, &pair.toNode, &pair.toFlags)}) {
        if (!*root) continue;
        HG_ASSIGN_OR_RETURN(std::optional<store::TreeEntry> entry,
                            objects_->findEntry(**root, path));
        setManifestEntry(entry, *node, *flags);
      }
      reply.entries.push_back(std::move(pair));
    }
    if (request.manifestText) {
      reply.fromManifest = control::manifestTextOf(reply.changes, reply.entries, true);
      reply.toManifest = control::manifestTextOf(reply.changes, reply.entries, false);
      reply.changes.clear();
      reply.entries.clear();
    }
  }
  return reply;
}

Result<control::StatsReply> StatusEngine::stats(const control::StatsRequest&) {
  control::StatsReply reply;
  reply.stats = mountStats(fs_, *objects_);
  return reply;
}

Result<control::CheckoutReply> StatusEngine::checkout(const control::CheckoutRequest& request) {
  MutexLock lock(mutex_);
  HG_ASSIGN_OR_RETURN(std::optional<store::TreeId> from, treeOfHex(request.from));
  HG_ASSIGN_OR_RETURN(std::optional<store::TreeId> to, treeOfHex(request.to));
  std::vector<fs::CheckoutAction> actions;
  actions.reserve(request.get.size() + request.remove.size() + request.exec.size());
  for (const Bytes& p : request.remove) actions.push_back({p, fs::CheckoutAction::Kind::kRemove});
  for (const Bytes& p : request.get) actions.push_back({p, fs::CheckoutAction::Kind::kGet});
  for (const Bytes& p : request.exec) actions.push_back({p, fs::CheckoutAction::Kind::kExec});
  auto started = std::chrono::steady_clock::now();
  HG_ASSIGN_OR_RETURN(fs::CheckoutResult done, fs_.checkout(from, to, std::move(actions)));
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  log().info(
      "checkout {} -> {}: {} of {} actions applied ({} directories swapped whole, {} "
      "materialized, {} dematerialized), {} left to hg, {} refused, in {:.1f} ms",
      request.from.substr(0, 12), request.to.substr(0, 12), done.applied,
      request.get.size() + request.remove.size() + request.exec.size(), done.directoriesSwapped,
      done.directoriesMaterialized, done.directoriesDematerialized, done.left.size(),
      done.refused.size(), ms);
  // Files now equal to the new parent need no overlay file: found here, by
  // the update that made them so, rather than by the first status after it
  // (which would otherwise walk every materialized directory for them).
  if (done.refused.empty()) {
    std::optional<hg::Node> toNode = hg::Node::fromHex(request.to);
    if (toNode && to) {
      auto demoted = fs_.dematerializeUnchanged(*to);
      if (!demoted.ok()) {
        log().warn("could not give files equal to {} back their revision's identity: {}",
                   toNode->shortHex(), demoted.error().message());
      } else {
        if (*demoted) {
          log().info("{} files equal to {} are no longer materialized", *demoted,
                     toNode->shortHex());
        }
        dematerializedFor_ = *toNode;
      }
    }
  }
  control::CheckoutReply reply;
  reply.applied = done.applied;
  reply.left = std::move(done.left);
  std::sort(reply.left.begin(), reply.left.end());
  reply.refused = std::move(done.refused);
  std::sort(reply.refused.begin(), reply.refused.end());
  reply.swapped = done.directoriesSwapped;
  reply.materialized = done.directoriesMaterialized;
  reply.dematerialized = done.directoriesDematerialized;
  return reply;
}

// The working copy against p1 (plain hg status): a path the mount and p1
// disagree on is M, A, R, !, ? or I by its dirstate entry.
Status StatusEngine::combineWithP1(const fs::WorkingDiff& diff,
                                   const control::StatusRequest& request,
                                   control::StatusReply& result) {
  (void)request;
  const auto& special = dirstate_.special();
  const std::vector<Bytes>& untracked = dirstate_.untrackedInP1();
  auto isUntracked = [&untracked](ByteView path) {
    return std::binary_search(untracked.begin(), untracked.end(), path);
  };
  auto isIgnored = ignoredPaths();
  std::set<Bytes, std::less<>> handled;
  // An untracked file, on disk.
  auto untrackedFile = [&](const Bytes& path) {
    if (!isIgnored(path)) {
      result.unknown.push_back(path);
    } else if (request.ignored) {
      result.ignored.push_back(path);
    }
  };
  // A path the mount and the base disagree on, present in the mount.
  auto present = [&](const Bytes& path, bool inBase, bool ignoredPath) {
    auto it = special.find(path);
    if (it == special.end() && inBase && isUntracked(path)) {
      untrackedFile(path);
      return;
    }
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
    if (isUntracked(p)) continue;  // not tracked, not on disk: nothing
    result.deleted.push_back(p);
  }
  // Untracked files of p1 the diff did not mention: on disk as in p1.
  for (const auto& p : untracked) {
    if (!std::binary_search(diff.modified.begin(), diff.modified.end(), p) &&
        !std::binary_search(diff.removed.begin(), diff.removed.end(), p)) {
      untrackedFile(p);
    }
  }
  // Special entries whose file the diff did not mention (equal to the base,
  // ignored and not listed, or absent from both).
  for (const auto& [path, entry] : special) {
    if (handled.count(path)) continue;
    if (entry.state == 'r') {
      result.removed.push_back(path);
      continue;
    }
    HG_ASSIGN_OR_RETURN(bool there, fs_.fileExists(path));
    if (!there) {
      result.deleted.push_back(path);
    } else if (entry.state == 'a') {
      result.added.push_back(path);
    } else {
      result.modified.push_back(path);
    }
  }
  return okStatus();
}

// Working copy against another revision (hg status --rev REV): a file the
// working copy tracks (in p1 unless removed, or added) and REV disagree on
// is M, A or R; a tracked file missing from disk is !.
Status StatusEngine::combineWithRev(const fs::WorkingDiff& diff,
                                    const std::optional<store::TreeId>& revTree,
                                    const control::StatusRequest& request,
                                    control::StatusReply& result) {
  const auto& special = dirstate_.special();
  auto isIgnored = ignoredPaths();
  std::set<Bytes, std::less<>> handled;
  std::optional<store::TreeId> p1Tree;
  if (!dirstate_.p1().isNull()) {
    HG_ASSIGN_OR_RETURN(p1Tree, treeOf(dirstate_.p1()));
  }
  // -1: removed from tracking ('r'); 0: untracked; 1: tracked.
  auto tracking = [&](const Bytes& path) -> Result<int> {
    auto it = special.find(path);
    if (it != special.end()) return it->second.state == 'r' ? -1 : 1;
    if (!p1Tree) return 0;
    HG_ASSIGN_OR_RETURN(auto e, objects_->findEntry(*p1Tree, path));
    return e && !e->isDirectory() ? 1 : 0;
  };
  // Files of p1 the dirstate does not list: hg's working manifest still
  // holds them with p1's node (nothing in the status against p1 names
  // them), so they compare with REV by node, whatever is on disk; on disk
  // they are also unknown (or ignored).
  for (const auto& p : dirstate_.untrackedInP1()) {
    handled.insert(p);
    HG_ASSIGN_OR_RETURN(auto inP1, objects_->findEntry(*p1Tree, p));
    std::optional<store::TreeEntry> inRev;
    if (revTree) {
      HG_ASSIGN_OR_RETURN(inRev, objects_->findEntry(*revTree, p));
    }
    if (!inRev || inRev->isDirectory()) {
      result.added.push_back(p);
    } else if (inP1 && (inP1->id != inRev->id || inP1->kind != inRev->kind)) {
      result.modified.push_back(p);
    }
    HG_ASSIGN_OR_RETURN(bool there, fs_.fileExists(p));
    if (!there) continue;
    if (!isIgnored(p)) {
      result.unknown.push_back(p);
    } else if (request.ignored) {
      result.ignored.push_back(p);
    }
  }
  for (const auto& p : diff.modified) {
    if (!handled.insert(p).second) continue;
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
      if (!handled.insert(p).second) continue;
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
    if (!handled.insert(p).second) continue;
    HG_ASSIGN_OR_RETURN(int t, tracking(p));
    (t == 1 ? result.deleted : result.removed).push_back(p);
  }
  // Tracked files missing from disk are ! whatever REV holds (hg takes
  // them from the working copy's own status): those REV lacks are not in
  // the diff above.
  if (p1Tree) {
    HG_ASSIGN_OR_RETURN(fs::WorkingDiff fromP1, fs_.diff(p1Tree, fs::DiffOptions{}));
    for (const auto& p : fromP1.removed) {
      if (handled.count(p)) continue;
      auto it = special.find(p);
      if (it != special.end() && it->second.state == 'r') continue;
      handled.insert(p);
      result.deleted.push_back(p);
    }
  }
  // hg drops unknown and ignored files that REV has once anything is
  // removed (context._buildstatus).
  if (!result.removed.empty() && revTree) {
    for (auto* list : {&result.unknown, &result.ignored}) {
      std::vector<Bytes> kept;
      for (auto& p : *list) {
        HG_ASSIGN_OR_RETURN(auto inRev, objects_->findEntry(*revTree, p));
        if (!inRev || inRev->isDirectory()) kept.push_back(std::move(p));
      }
      *list = std::move(kept);
    }
  }
  return okStatus();
}

}  // namespace hgvfs::status
