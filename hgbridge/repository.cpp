#include "hgbridge/repository.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace hgvfs::hg {
namespace {

bool isDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Reads a whole small file; NotFound when absent.
Result<Bytes> readSmallFile(const std::string& path) {
  HG_ASSIGN_OR_RETURN(auto bytes, FileBytes::open(path));
  return Bytes(bytes->view());
}

Result<std::set<std::string>> readRequires(const std::string& path) {
  auto text = readSmallFile(path);
  std::set<std::string> out;
  if (!text.ok()) {
    if (text.error().kind == ErrorKind::kNotFound) return out;  // very old repositories
    return std::move(text).takeError();
  }
  size_t start = 0;
  const Bytes& t = *text;
  while (start < t.size()) {
    size_t nl = t.find('\n', start);
    if (nl == Bytes::npos) nl = t.size();
    if (nl > start) out.emplace(t.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

std::string joinPath(const std::string& a, const std::string& b) {
  if (!b.empty() && b[0] == '/') return b;
  if (a.empty() || a.back() == '/') return a + b;
  return a + "/" + b;
}

std::string canonical(const std::string& path) {
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf)) return buf;
  return path;
}

bool isDecimal(ByteView s) {
  size_t i = (!s.empty() && s[0] == '-') ? 1 : 0;
  if (i == s.size() || s.size() - i > 10) return false;
  if (s[i] == '0' && s.size() - i > 1) return false;  // "%d" % r == symbol
  if (s == "-0") return false;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

// store.py's decodedir: fncache lists paths with encodedir applied.
Bytes decodeDirectories(ByteView path) {
  Bytes out(path);
  if (out.find(".hg/") == Bytes::npos) return out;
  for (auto [from, to] : {std::pair{".d.hg/", ".d/"}, {".i.hg/", ".i/"}, {".hg.hg/", ".hg/"}}) {
    for (size_t at = out.find(from); at != Bytes::npos; at = out.find(from, at + strlen(to))) {
      out.replace(at, strlen(from), to);
    }
  }
  return out;
}

bool isHex(ByteView s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return hexDigitValue(c) >= 0; });
}

}  // namespace

const std::set<std::string>& supportedRequirements() {
  // Every requirement here leaves the files hgbridge reads (revlog v1,
  // flat manifests, filelogs) in a format it reads exactly.
  // persistent-nodemap only adds a node→revision cache file beside the
  // changelog and manifest; bookmarksinstore only moves the bookmarks file;
  // exp-compression-none only means new chunks are stored uncompressed.
  static const std::set<std::string> kSupported = {
      "revlogv1",
      "store",
      "fncache",
      "dotencode",
      "generaldelta",
      "sparserevlog",
      "revlog-compression-zstd",
      "share-safe",
      "shared",
      "relshared",
      "dirstate-v2",
      "persistent-nodemap",
      "bookmarksinstore",
      "exp-compression-none",
  };
  return kSupported;
}

Result<std::unique_ptr<Repository>> Repository::open(const std::string& path) {
  std::unique_ptr<Repository> repo(new Repository());
  repo->root_ = canonical(path);
  repo->dotHg_ = joinPath(repo->root_, ".hg");
  if (!isDirectory(repo->dotHg_)) {
    return notFound("no repository found (.hg not found)", path);
  }
  HG_ASSIGN_OR_RETURN(repo->requirements_.working,
                      readRequires(joinPath(repo->dotHg_, "requires")));
  const Requirements& req = repo->requirements_;

  repo->shared_ = repo->dotHg_;
  if (req.working.count("shared") || req.working.count("relshared")) {
    auto sp = readSmallFile(joinPath(repo->dotHg_, "sharedpath"));
    if (!sp.ok()) {
      return corrupt("shared repository without a readable sharedpath", repo->dotHg_);
    }
    std::string target = *sp;
    while (!target.empty() && (target.back() == '\n' || target.back() == '\r')) target.pop_back();
    if (req.working.count("relshared")) target = joinPath(repo->dotHg_, target);
    repo->shared_ = canonical(target);
    if (!isDirectory(repo->shared_)) {
      return notFound("the share's source repository is missing (" + target + ")", repo->dotHg_);
    }
  }
  if (req.working.count("share-safe")) {
    HG_ASSIGN_OR_RETURN(repo->requirements_.store,
                        readRequires(joinPath(repo->shared_, "store/requires")));
  }
  for (const auto* set : {&req.working, &req.store}) {
    for (const auto& r : *set) {
      if (!supportedRequirements().count(r)) {
        return unsupported("repository requires '" + r + "', which hgvfs does not support", path);
      }
    }
  }
  if (!req.has("store")) {
    return unsupported("repository has no 'store' requirement (pre-2008 layout)", path);
  }
  if (!req.has("revlogv1")) {
    return unsupported("repository has no 'revlogv1' requirement", path);
  }
  repo->store_ = joinPath(repo->shared_, "store");
  repo->layout_ = req.has("fncache")
                      ? (req.has("dotencode") ? StoreLayout::kDotencode : StoreLayout::kFncache)
                      : StoreLayout::kBasic;

  HG_ASSIGN_OR_RETURN(auto changelog, Revlog::open(joinPath(repo->store_, "00changelog.i"),
                                                   "00changelog.i", /*missingOk=*/true));
  repo->changelog_ = std::make_unique<Changelog>(std::move(changelog));
  HG_ASSIGN_OR_RETURN(repo->manifests_, Revlog::open(joinPath(repo->store_, "00manifest.i"),
                                                     "00manifest.i", /*missingOk=*/true));
  return repo;
}

Result<Revision> Repository::lookup(ByteView spec) const {
  const Revlog& cl = changelog_->revlog();
  const int64_t count = static_cast<int64_t>(cl.size());
  std::string quoted = printable(spec);
  quoted.insert(quoted.begin(), '\'');  // not "'" + s: GCC 12 warns falsely (-Wrestrict)
  quoted.push_back('\'');
  if (spec == "null") return kNullRevision;
  if (spec == "tip") return cl.tip();
  if (isDecimal(spec)) {
    int64_t r = std::strtoll(Bytes(spec).c_str(), nullptr, 10);
    if (r < 0) r += count;
    if (r >= 0 && r < count) return Revision(static_cast<int32_t>(r));
  }
  if (spec.size() == Node::kHexSize) {
    if (auto node = Node::fromHex(spec)) {
      auto r = cl.rev(*node);
      if (r.ok()) return *r;
    }
  }
  if (!spec.empty() && spec.size() <= Node::kHexSize && isHex(spec)) {
    std::string lower(spec);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](char c) { return static_cast<char>(std::tolower(c)); });
    auto revs = cl.revsWithHexPrefix(lower, 2);
    // As revlog._partialmatch: the null node is a candidate too, and a
    // prefix of the working directory's id (all 'f') is never taken.
    bool maybeNull = lower.find_first_not_of('0') == std::string::npos;
    bool maybeWdir = lower.find_first_not_of('f') == std::string::npos;
    if (maybeNull && revs.size() < 2) revs.push_back(kNullRevision);
    if (maybeWdir) {
      if (!revs.empty()) return invalidArgument("ambiguous identifier " + quoted, "00changelog.i");
      return unsupported("the working directory revision " + quoted + " is not supported");
    }
    if (revs.size() == 1) return revs[0];
    if (revs.size() > 1) return invalidArgument("ambiguous identifier " + quoted, "00changelog.i");
  }
  return notFound("unknown revision " + quoted);
}

Result<Manifest> Repository::manifest(const Node& manifestNode) const {
  if (manifestNode.isNull()) return Manifest::parse({});
  HG_ASSIGN_OR_RETURN(Revision r, manifests_->rev(manifestNode));
  HG_ASSIGN_OR_RETURN(Bytes text, manifests_->rawText(r));
  return Manifest::parse(std::move(text), "00manifest.i revision " + std::to_string(r.value()));
}

Result<Manifest> Repository::manifestOf(Revision changeset) const {
  if (changeset.isNull()) return Manifest::parse({});
  HG_ASSIGN_OR_RETURN(Changeset cs, changelog_->read(changeset));
  return manifest(cs.manifest);
}

Result<Filelog> Repository::filelog(ByteView path) const {
  if (path.empty()) return invalidArgument("empty file path");
  Bytes storeRelative = filelogIndexPath(path, layout_);
  std::string name = "data/" + Bytes(path) + ".i";
  HG_ASSIGN_OR_RETURN(auto revlog, Revlog::open(joinPath(store_, storeRelative), name));
  return Filelog(std::move(revlog), Bytes(path));
}

Result<std::vector<Bytes>> Repository::filelogPaths() const {
  std::vector<Bytes> paths;
  if (layout_ != StoreLayout::kBasic) {
    auto text = readSmallFile(joinPath(store_, "fncache"));
    if (!text.ok() && text.error().kind != ErrorKind::kNotFound) return std::move(text).takeError();
    if (text.ok()) {
      ByteView t = *text;
      size_t start = 0;
      while (start < t.size()) {
        size_t nl = t.find('\n', start);
        if (nl == ByteView::npos) nl = t.size();
        ByteView line = t.substr(start, nl - start);
        if (line.size() > 7 && line.substr(0, 5) == "data/" &&
            line.substr(line.size() - 2) == ".i") {
          paths.push_back(decodeDirectories(line.substr(5, line.size() - 7)));
        }
        start = nl + 1;
      }
    }
  } else {
    for (size_t i = 0; i < manifests_->size(); ++i) {
      HG_ASSIGN_OR_RETURN(Bytes text, manifests_->rawText(Revision(static_cast<int32_t>(i))));
      HG_ASSIGN_OR_RETURN(Manifest m, Manifest::parse(std::move(text)));
      for (const auto& e : m.entries()) paths.emplace_back(e.path);
    }
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  return paths;
}

}  // namespace hgvfs::hg
