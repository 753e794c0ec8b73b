#include "match/matcher.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <optional>
#include <utility>

#include "match/paths.h"
#include "match/py_regex.h"
#include "match/py_text.h"

namespace hgvfs::match {

using NameSet = std::set<std::string, std::less<>>;

VisitChildren Matcher::visitChildrenSet(ByteView) const { return VisitChildren::thisDir(); }

namespace {

constexpr size_t kMaxReSize = 20000;  // match.MAX_RE_SIZE
constexpr int kMaxSubincludeDepth = 64;

std::string where(const KindPat& kp) {
  return kp.file.empty() ? std::string() : kp.file + ":" + std::to_string(kp.lineno);
}

// match.path_or_parents_in_set.
bool pathOrParentsInSet(ByteView path, const NameSet& set) {
  if (set.empty()) return false;
  if (set.count(path)) return true;
  for (ByteView dir : findDirs(path)) {
    if (set.count(dir)) return true;
  }
  return false;
}

// pathutil.dirs: every ancestor of every path ("" included).
NameSet ancestorsOf(const NameSet& paths) {
  NameSet out;
  for (const auto& p : paths) {
    for (ByteView dir : findDirs(p)) out.emplace(dir);
  }
  return out;
}

// match._patternrootsanddirs: what each pattern names literally, as
// directories matched recursively (roots) or not (dirs).
void rootsAndDirs(const std::vector<KindPat>& kindpats, std::vector<std::string>* roots,
                  std::vector<std::string>* dirs) {
  for (const KindPat& kp : kindpats) {
    switch (kp.kind) {
      case Kind::kGlob:
      case Kind::kRootglob: {  // the part before the first wildcard
        std::string root;
        size_t pos = 0;
        for (;;) {
          size_t slash = kp.pat.find('/', pos);
          std::string part =
              kp.pat.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
          if (part.find_first_of("[{*?") != std::string::npos) break;
          root += (pos ? "/" : "") + part;
          if (slash == std::string::npos) break;
          pos = slash + 1;
        }
        roots->push_back(root);
        break;
      }
      case Kind::kPath:
      case Kind::kRelpath:
        roots->push_back(kp.pat == "." ? std::string() : kp.pat);
        break;
      case Kind::kRootfilesin:
        if (dirs) dirs->push_back(kp.pat == "." ? std::string() : kp.pat);
        break;
      default:  // relglob, re, relre, subinclude
        roots->emplace_back();
        break;
    }
  }
}

bool allPaths(const std::vector<KindPat>& kindpats) {
  return std::all_of(kindpats.begin(), kindpats.end(), [](const KindPat& kp) {
    return kp.kind == Kind::kPath || kp.kind == Kind::kRelpath;
  });
}

Result<std::unique_ptr<Matcher>> buildAt(const MatchOptions& options,
                                         const std::vector<std::string>& patterns,
                                         const std::vector<std::string>& include,
                                         const std::vector<std::string>& exclude, Kind dflt,
                                         int depth);

// match._buildmatch: the subincludes, then either the rootfilesin
// directories or the regular expressions, any of which matching is a match.
class Compiled {
 public:
  static Result<Compiled> build(const MatchOptions& options, const std::vector<KindPat>& kindpats,
                                ByteView globSuffix, int depth) {
    Compiled c;
    std::vector<const KindPat*> others;
    for (const KindPat& kp : kindpats) {
      if (kp.kind == Kind::kSubinclude) {
        HG_RETURN_IF_ERROR(c.addSubinclude(options, kp, depth));
      } else {
        others.push_back(&kp);
      }
    }
    if (others.empty()) return c;
    if (std::all_of(others.begin(), others.end(),
                    [](const KindPat* kp) { return kp->kind == Kind::kRootfilesin; })) {
      c.rootfilesinDirs_.emplace();
      for (const KindPat* kp : others) c.rootfilesinDirs_->insert(kp->pat);
      c.regexText_ = "rootfilesin: [";
      for (const auto& d : *c.rootfilesinDirs_) {
        c.regexText_ += (c.regexText_.back() == '[' ? "" : ", ") + pyRepr(d);
      }
      c.regexText_ += "]";
      return c;
    }
    HG_RETURN_IF_ERROR(c.compileRegexes(options, others, globSuffix));
    return c;
  }

  bool matches(ByteView f) const {
    for (const Sub& sub : subs_) {
      if (startsWith(f, sub.prefix) && sub.matcher->matches(f.substr(sub.prefix.size()))) {
        return true;
      }
    }
    if (rootfilesinDirs_) {
      size_t slash = f.rfind('/');
      return rootfilesinDirs_->count(slash == ByteView::npos ? ByteView(".") : f.substr(0, slash));
    }
    return std::any_of(regexes_.begin(), regexes_.end(),
                       [&](const PyRegex& r) { return r.match(f); });
  }

  bool empty() const {
    return regexes_.empty() && (!rootfilesinDirs_ || rootfilesinDirs_->empty()) &&
           std::all_of(subs_.begin(), subs_.end(), [](const Sub& s) { return s.matcher->empty(); });
  }

  const std::string& regexText() const { return regexText_; }

 private:
  struct Sub {
    std::string prefix;  // directory relative to this matcher's root, '/'-terminated or ""
    std::unique_ptr<Matcher> matcher;
  };

  // match._expandsubinclude: a matcher rooted at the subincluded file's
  // directory, for paths under that directory.
  Status addSubinclude(const MatchOptions& options, const KindPat& kp, int depth) {
    std::string sourceroot = pyDirname(normpath(kp.source));
    std::string path = pyJoin(sourceroot, kp.pat);
    std::string newroot = pyDirname(path);
    auto prefix =
        canonPath(options.root, "", newroot, PathAuditor(options.root, options.auditFileSystem));
    if (!prefix.ok()) {
      Error err = std::move(prefix).takeError();
      err.where = where(kp);
      return err;
    }
    std::string pfx = prefix->empty() ? std::string() : *prefix + "/";
    // hg caches sub-matchers by prefix, so the first subinclude of a directory wins.
    for (const auto& sub : subs_) {
      if (sub.prefix == pfx) return okStatus();
    }
    if (!startsWith(newroot, "/")) {
      // Named through a relative include path: hg 6.3 dies on `assert
      // os.path.isabs(root)` when it first matches a path under it.
      std::string what = "subinclude '" + kp.pat + "' in " + where(kp) +
                         " not applied: hg 6.3 fails on it (relative include path)";
      if (options.strictSubincludes) return unsupported(what, where(kp));
      if (options.warnings) options.warnings->push_back(what);
      return okStatus();
    }
    if (depth >= kMaxSubincludeDepth) {
      return unsupported("subinclude: nesting deeper than " + std::to_string(kMaxSubincludeDepth) +
                             " files (a cycle? hg recurses until Python's stack runs out)",
                         where(kp));
    }
    // As hg's match(newroot, '', [], ['include:PATH']): no warn function.
    MatchOptions sub = options;
    sub.root = newroot;
    sub.cwd.clear();
    sub.warnings = nullptr;
    auto built = buildAt(sub, {}, {"include:" + path}, {}, Kind::kGlob, depth + 1);
    if (!built.ok()) {
      Error err = std::move(built).takeError();
      if (options.strictSubincludes && err.kind == ErrorKind::kInvalidArgument) {
        // hg would only fail once it matched a path under the subinclude.
        err.kind = ErrorKind::kUnsupported;
      }
      return err;
    }
    subs_.push_back({std::move(pfx), std::move(built).value()});
    return okStatus();
  }

  // match._buildregexmatch: hg's regexps joined with '|', in groups of at
  // most MAX_RE_SIZE bytes; each group is one Python regexp.
  Status compileRegexes(const MatchOptions& options, const std::vector<const KindPat*>& pats,
                        ByteView globSuffix) {
    std::vector<std::string> regexps;
    for (const KindPat* kp : pats) regexps.push_back(regexFor(kp->kind, kp->pat, globSuffix));
    std::vector<std::pair<size_t, size_t>> groups;  // [begin, end) into regexps
    size_t startidx = 0, groupsize = 0;
    for (size_t idx = 0; idx < regexps.size(); ++idx) {
      size_t piece = regexps[idx].size();
      if (piece > kMaxReSize) {
        return invalidArgument("matcher pattern is too long (" + std::to_string(piece) + " bytes)",
                               where(*pats[idx]));
      }
      if (groupsize + piece > kMaxReSize) {
        groups.emplace_back(startidx, idx);
        startidx = idx;
        groupsize = 0;
      }
      groupsize += piece + 1;
    }
    groups.emplace_back(startidx, regexps.size());
    auto join = [&](size_t b, size_t e) {
      std::string s;
      for (size_t i = b; i < e; ++i) s += (i > b ? "|" : "") + regexps[i];
      return s;
    };
    regexText_ = join(0, regexps.size());
    for (auto [b, e] : groups) {
      auto re = PyRegex::compile(join(b, e));
      if (re.ok()) {
        regexes_.push_back(std::move(re).value());
        continue;
      }
      if (re.error().kind != ErrorKind::kInvalidArgument) return std::move(re).takeError();
      return explainInvalid(options, pats, regexps, where(*pats[b]));
    }
    return okStatus();
  }

  // As hg: name the first pattern that fails on its own.
  static Error explainInvalid(const MatchOptions& options, const std::vector<const KindPat*>& pats,
                              const std::vector<std::string>& regexps, std::string groupWhere) {
    for (size_t i = 0; i < regexps.size(); ++i) {
      auto single = PyRegex::compile(regexps[i]);
      if (single.ok()) continue;
      if (single.error().kind != ErrorKind::kInvalidArgument) return std::move(single).takeError();
      const KindPat& kp = *pats[i];
      if (options.rejected) {
        *options.rejected = {kp.kind, kp.pat, single.error().what, kp.file, kp.lineno};
      }
      std::string what = "invalid pattern (" + std::string(kindName(kp.kind)) + "): " + kp.pat;
      return invalidArgument(kp.source.empty() ? what : kp.source + ": " + what, where(kp));
    }
    return invalidArgument("invalid pattern", std::move(groupWhere));
  }

  std::vector<Sub> subs_;
  std::vector<PyRegex> regexes_;
  std::optional<NameSet> rootfilesinDirs_;
  std::string regexText_;
};

class AlwaysMatcher final : public Matcher {
 public:
  bool matches(ByteView) const override { return true; }
  VisitChildren visitChildrenSet(ByteView) const override { return VisitChildren::all(); }
  bool always() const override { return true; }
};

class NeverMatcher final : public Matcher {
 public:
  bool matches(ByteView) const override { return false; }
  VisitChildren visitChildrenSet(ByteView) const override { return VisitChildren::none(); }
  bool isExact() const override { return true; }
  bool prefix() const override { return true; }
  bool empty() const override { return true; }
};

// A directory visit answer of visitdir: no, yes, or everything below.
enum class Visit { kNo, kYes, kAll };

VisitChildren childrenFromVisit(Visit v) {
  switch (v) {
    case Visit::kNo:
      return VisitChildren::none();
    case Visit::kYes:
      return VisitChildren::thisDir();
    case Visit::kAll:
      break;
  }
  return VisitChildren::all();
}

// match.patternmatcher: a command's positional patterns.
class PatternMatcher final : public Matcher {
 public:
  PatternMatcher(Compiled compiled, const std::vector<KindPat>& kindpats)
      : compiled_(std::move(compiled)), prefix_(allPaths(kindpats)) {
    std::vector<KindPat> filable;
    for (const KindPat& kp : kindpats) {
      if (kp.kind != Kind::kRootfilesin) filable.push_back(kp);
    }
    rootsAndDirs(filable, &files_, nullptr);
    fileset_.insert(files_.begin(), files_.end());
    dirs_ = ancestorsOf(fileset_);
  }

  bool matches(ByteView path) const override { return compiled_.matches(path); }
  std::vector<std::string> files() const override { return files_; }
  VisitChildren visitChildrenSet(ByteView dir) const override {
    if (prefix_ && fileset_.count(dir)) return VisitChildren::all();
    bool visit = dirs_.count(dir) || pathOrParentsInSet(dir, fileset_);
    return childrenFromVisit(visit ? Visit::kYes : Visit::kNo);
  }
  bool prefix() const override { return prefix_; }
  bool empty() const override { return compiled_.empty(); }

 private:
  Compiled compiled_;
  bool prefix_;
  std::vector<std::string> files_;
  NameSet fileset_, dirs_;
};

// match.includematcher: -I/-X patterns and ignore files.
class IncludeMatcher final : public Matcher {
 public:
  IncludeMatcher(Compiled compiled, const std::vector<KindPat>& kindpats)
      : compiled_(std::move(compiled)), prefix_(allPaths(kindpats)) {
    std::vector<std::string> roots, dirs;
    rootsAndDirs(kindpats, &roots, &dirs);
    roots_.insert(roots.begin(), roots.end());
    dirs_.insert(dirs.begin(), dirs.end());
    parents_ = ancestorsOf(dirs_);
    NameSet rootParents = ancestorsOf(roots_);
    parents_.insert(rootParents.begin(), rootParents.end());
    // _allparentschildren: the children of each parent on the way to a
    // root or dir.
    for (const NameSet* set : {&dirs_, &roots_, &parents_}) {
      for (const auto& path : *set) addChildren(path);
    }
  }

  bool matches(ByteView path) const override { return compiled_.matches(path); }
  VisitChildren visitChildrenSet(ByteView dir) const override {
    if (prefix_ && roots_.count(dir)) return VisitChildren::all();
    if (roots_.count("") || dirs_.count(dir) || pathOrParentsInSet(dir, roots_)) {
      return VisitChildren::thisDir();
    }
    if (parents_.count(dir)) {
      auto it = children_.find(dir);
      VisitChildren v;
      if (it != children_.end()) v.names = it->second;
      return v;
    }
    return VisitChildren::none();
  }
  bool empty() const override { return compiled_.empty(); }

 private:
  void addChildren(const std::string& path) {
    if (path.empty()) return;
    size_t end = path.size();
    for (size_t pos = path.rfind('/'); pos != std::string::npos;
         pos = pos == 0 ? std::string::npos : path.rfind('/', pos - 1)) {
      std::string dir = path.substr(0, pos);
      if (parents_.count(dir)) children_[dir].insert(path.substr(pos + 1, end - pos - 1));
      end = pos;
    }
    if (parents_.count("")) children_[""].insert(path.substr(0, end));
  }

  Compiled compiled_;
  bool prefix_;
  NameSet roots_, dirs_, parents_;
  std::map<std::string, NameSet, std::less<>> children_;
};

class IntersectionMatcher final : public Matcher {
 public:
  IntersectionMatcher(std::unique_ptr<Matcher> m1, std::unique_ptr<Matcher> m2)
      : m1_(std::move(m1)), m2_(std::move(m2)) {}

  bool matches(ByteView path) const override { return m1_->matches(path) && m2_->matches(path); }
  std::vector<std::string> files() const override {
    if (isExact()) {
      const Matcher* a = m1_.get();
      const Matcher* b = m2_.get();
      if (!a->isExact()) std::swap(a, b);
      std::vector<std::string> out;
      for (auto& f : a->files()) {
        if (b->matches(f)) out.push_back(std::move(f));
      }
      return out;
    }
    std::vector<std::string> out = m1_->files();
    for (auto& f : m2_->files()) out.push_back(std::move(f));
    return out;
  }
  VisitChildren visitChildrenSet(ByteView dir) const override {
    VisitChildren v1 = m1_->visitChildrenSet(dir);
    if (v1.empty()) return VisitChildren::none();
    VisitChildren v2 = m2_->visitChildrenSet(dir);
    if (v2.empty()) return VisitChildren::none();
    if (v1.kind == VisitChildren::Kind::kAll) return v2;
    if (v2.kind == VisitChildren::Kind::kAll) return v1;
    if (v1.kind == VisitChildren::Kind::kThis || v2.kind == VisitChildren::Kind::kThis) {
      return VisitChildren::thisDir();
    }
    VisitChildren both;
    std::set_intersection(v1.names.begin(), v1.names.end(), v2.names.begin(), v2.names.end(),
                          std::inserter(both.names, both.names.end()));
    return both;
  }
  bool always() const override { return m1_->always() && m2_->always(); }
  bool isExact() const override { return m1_->isExact() || m2_->isExact(); }

 private:
  std::unique_ptr<Matcher> m1_, m2_;
};

class DifferenceMatcher final : public Matcher {
 public:
  DifferenceMatcher(std::unique_ptr<Matcher> m1, std::unique_ptr<Matcher> m2)
      : m1_(std::move(m1)), m2_(std::move(m2)) {}

  bool matches(ByteView path) const override { return m1_->matches(path) && !m2_->matches(path); }
  std::vector<std::string> files() const override {
    std::vector<std::string> out = m1_->files();
    if (isExact()) std::erase_if(out, [&](const std::string& f) { return !matches(f); });
    return out;
  }
  VisitChildren visitChildrenSet(ByteView dir) const override {
    VisitChildren v2 = m2_->visitChildrenSet(dir);
    if (v2.kind == VisitChildren::Kind::kAll) return VisitChildren::none();
    VisitChildren v1 = m1_->visitChildrenSet(dir);
    if (v2.empty()) return v1;
    if (v1.kind != VisitChildren::Kind::kSet) return VisitChildren::thisDir();
    // m2's sets are ignored, as hg does: they can be wrong for m1's children.
    return v1;
  }
  bool isExact() const override { return m1_->isExact(); }

 private:
  std::unique_ptr<Matcher> m1_, m2_;
};

// match.intersectmatchers.
std::unique_ptr<Matcher> intersect(std::unique_ptr<Matcher> m1, std::unique_ptr<Matcher> m2) {
  if (m1->always()) return m2;
  if (m2->always()) return m1;
  return std::make_unique<IntersectionMatcher>(std::move(m1), std::move(m2));
}

enum class MatcherClass { kPattern, kInclude };

// match._buildkindpatsmatcher.
Result<std::unique_ptr<Matcher>> buildKindpats(MatcherClass cls, const MatchOptions& options,
                                               const std::vector<KindPat>& kindpats, int depth,
                                               std::string* regexText = nullptr) {
  for (const KindPat& kp : kindpats) {
    if (kp.kind == Kind::kSet) {
      return unsupported("fileset patterns (set:) are not evaluated natively: set:" + kp.pat,
                         where(kp));
    }
  }
  if (kindpats.empty()) return std::unique_ptr<Matcher>(std::make_unique<NeverMatcher>());
  ByteView suffix = cls == MatcherClass::kPattern ? "$" : "(?:/|$)";
  HG_ASSIGN_OR_RETURN(Compiled compiled, Compiled::build(options, kindpats, suffix, depth));
  if (regexText) *regexText = compiled.regexText();
  if (cls == MatcherClass::kPattern) {
    return std::unique_ptr<Matcher>(
        std::make_unique<PatternMatcher>(std::move(compiled), kindpats));
  }
  return std::unique_ptr<Matcher>(std::make_unique<IncludeMatcher>(std::move(compiled), kindpats));
}

Result<std::unique_ptr<Matcher>> buildAt(const MatchOptions& options,
                                         const std::vector<std::string>& patterns,
                                         const std::vector<std::string>& include,
                                         const std::vector<std::string>& exclude, Kind dflt,
                                         int depth) {
  PatternContext ctx{options.root, options.cwd, PathAuditor(options.root, options.auditFileSystem),
                     options.warnings};
  std::unique_ptr<Matcher> m;
  if (patterns.empty()) {
    m = std::make_unique<AlwaysMatcher>();
  } else {
    HG_ASSIGN_OR_RETURN(auto kindpats, normalizePatterns(patterns, dflt, ctx));
    // _kindpatsalwaysmatch: nothing but "" as relpath or glob ("." typed at the root).
    bool always = std::all_of(kindpats.begin(), kindpats.end(), [](const KindPat& kp) {
      return kp.pat.empty() && (kp.kind == Kind::kRelpath || kp.kind == Kind::kGlob);
    });
    if (always) {
      m = std::make_unique<AlwaysMatcher>();
    } else {
      HG_ASSIGN_OR_RETURN(m, buildKindpats(MatcherClass::kPattern, options, kindpats, depth));
    }
  }
  if (!include.empty()) {
    HG_ASSIGN_OR_RETURN(auto kindpats, normalizePatterns(include, Kind::kGlob, ctx));
    HG_ASSIGN_OR_RETURN(auto im, buildKindpats(MatcherClass::kInclude, options, kindpats, depth));
    m = intersect(std::move(m), std::move(im));
  }
  if (!exclude.empty()) {
    HG_ASSIGN_OR_RETURN(auto kindpats, normalizePatterns(exclude, Kind::kGlob, ctx));
    HG_ASSIGN_OR_RETURN(auto em, buildKindpats(MatcherClass::kInclude, options, kindpats, depth));
    m = std::make_unique<DifferenceMatcher>(std::move(m), std::move(em));
  }
  return m;
}

}  // namespace

Result<std::unique_ptr<Matcher>> buildMatcher(const MatchOptions& options,
                                              const std::vector<std::string>& patterns,
                                              const std::vector<std::string>& include,
                                              const std::vector<std::string>& exclude, Kind dflt) {
  return buildAt(options, patterns, include, exclude, dflt, 0);
}

Result<std::unique_ptr<Matcher>> buildIncludeMatcher(const MatchOptions& options,
                                                     const std::vector<KindPat>& kindpats,
                                                     std::string* regexText) {
  return buildKindpats(MatcherClass::kInclude, options, kindpats, 0, regexText);
}

}  // namespace hgvfs::match
