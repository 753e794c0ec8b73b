#include "match/ignore.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "match/paths.h"
#include "match/patterns.h"
#include "match/py_text.h"

namespace hgvfs::match {
namespace {

// util.expandpath: $VAR and ${VAR} from the environment, then ~ and ~user.
// (Here, not in paths.cpp: the static `hgvfs` front must not link getpwnam.)
std::string expandPath(ByteView path) {
  std::string s(path);
  for (size_t i = 0; (i = s.find('$', i)) != std::string::npos;) {
    size_t j = i + 1;
    std::string name;
    if (j < s.size() && s[j] == '{') {
      size_t close = s.find('}', j);
      if (close == std::string::npos) {
        ++i;
        continue;
      }
      name = s.substr(j + 1, close - j - 1);
      j = close + 1;
    } else {
      while (j < s.size() && (isAsciiLetter(s[j]) || isDigit(s[j]) || s[j] == '_')) ++j;
      name = s.substr(i + 1, j - i - 1);
      if (name.empty()) {
        ++i;
        continue;
      }
    }
    const char* value = name.empty() ? nullptr : std::getenv(name.c_str());
    if (!value) {
      i = j;
      continue;
    }
    s = s.substr(0, i) + value + s.substr(j);
    i += std::strlen(value);
  }
  if (!startsWith(s, "~")) return s;
  size_t slash = s.find('/', 1);
  if (slash == std::string::npos) slash = s.size();
  std::string home;
  if (slash == 1) {
    if (const char* h = std::getenv("HOME")) {
      home = h;
    } else if (const passwd* pw = getpwuid(getuid())) {
      home = pw->pw_dir;
    } else {
      return s;
    }
  } else {
    const passwd* pw = getpwnam(s.substr(1, slash - 1).c_str());
    if (!pw) return s;
    home = pw->pw_dir;
  }
  while (!home.empty() && home.back() == '/') home.pop_back();
  std::string out = home + s.substr(slash);
  return out.empty() ? "/" : out;
}

}  // namespace

IgnoreMatcher::IgnoreMatcher() = default;
IgnoreMatcher::IgnoreMatcher(IgnoreMatcher&&) noexcept = default;
IgnoreMatcher& IgnoreMatcher::operator=(IgnoreMatcher&&) noexcept = default;
IgnoreMatcher::~IgnoreMatcher() = default;

std::vector<std::string> IgnoreMatcher::ignoreFiles(
    const std::string& root, const std::vector<std::string>& uiIgnoreValues) {
  std::string rootdir = (!root.empty() && root.back() == '/') ? root : root + "/";
  std::vector<std::string> files;
  struct stat st;
  if (stat((rootdir + ".hgignore").c_str(), &st) == 0) files.push_back(rootdir + ".hgignore");
  for (const auto& value : uiIgnoreValues) files.push_back(pyJoin(rootdir, expandPath(value)));
  return files;
}

Result<IgnoreMatcher> IgnoreMatcher::load(const std::string& root,
                                          const std::vector<std::string>& files) {
  IgnoreMatcher m;
  RejectedPattern rejected;
  MatchOptions options;
  options.root = root;
  // hg's ignore matcher audits with the file system too; the daemon reads
  // these files through its own mount, so only names are checked here.
  options.auditFileSystem = false;
  options.warnings = &m.warnings_;
  options.strictSubincludes = false;
  options.rejected = &rejected;
  std::vector<std::string> includes;
  for (const auto& f : files) includes.push_back("include:" + f);
  PatternContext ctx{root, "", PathAuditor(root, false), &m.warnings_};
  auto kindpats = normalizePatterns(includes, Kind::kGlob, ctx);
  if (!kindpats.ok()) return std::move(kindpats).takeError();
  auto built = buildIncludeMatcher(options, *kindpats, &m.regex_);
  if (!built.ok()) {
    Error err = std::move(built).takeError();
    if (!rejected.reason.empty()) {
      // hg names the pattern; say why Python refused it, and where.
      err.what = "invalid pattern (" + std::string(kindName(rejected.kind)) + "): " + rejected.pat +
                 ": " + rejected.reason;
    }
    return err;
  }
  m.matcher_ = std::move(built).value();
  m.rootIgnored_ = m.matcher_->matches("");
  return m;
}

bool IgnoreMatcher::matchesSelf(ByteView path) const { return matcher_->matches(path); }

bool IgnoreMatcher::ignored(ByteView path) const {
  if (rootIgnored_ || matcher_->matches(path)) return true;
  for (size_t pos = path.rfind('/'); pos != ByteView::npos && pos > 0;
       pos = path.rfind('/', pos - 1)) {
    if (matcher_->matches(path.substr(0, pos))) return true;
  }
  return false;
}

bool IgnoreMatcher::ignored(ByteView path, IgnoreDirCache& cache) const {
  if (rootIgnored_ || matcher_->matches(path)) return true;
  // Find the deepest ancestor whose answer is cached, then fill in below it.
  std::vector<ByteView> unknown;
  bool result = false;
  for (size_t pos = path.rfind('/'); pos != ByteView::npos && pos > 0;
       pos = path.rfind('/', pos - 1)) {
    ByteView dir = path.substr(0, pos);
    auto it = std::find_if(cache.dirs_.rbegin(), cache.dirs_.rend(),
                           [&](const auto& e) { return e.first == dir; });
    if (it != cache.dirs_.rend()) {
      result = it->second;
      break;
    }
    unknown.push_back(dir);
  }
  constexpr size_t kCacheSize = 64;
  for (auto it = unknown.rbegin(); it != unknown.rend(); ++it) {
    result = result || matcher_->matches(*it);
    if (cache.dirs_.size() == kCacheSize) cache.dirs_.erase(cache.dirs_.begin());
    cache.dirs_.emplace_back(std::string(*it), result);
  }
  return result;
}

bool IgnoreMatcher::empty() const { return matcher_->empty(); }

}  // namespace hgvfs::match
