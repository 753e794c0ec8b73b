#include "match/paths.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "match/py_text.h"

namespace hgvfs::match {

std::string normpath(ByteView path) {
  if (path.empty()) return ".";
  size_t initialSlashes = 0;
  if (path[0] == '/') initialSlashes = (startsWith(path, "//") && !startsWith(path, "///")) ? 2 : 1;
  std::vector<ByteView> comps;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == ByteView::npos) slash = path.size();
    ByteView comp = path.substr(pos, slash - pos);
    pos = slash + 1;
    if (comp.empty() || comp == ".") continue;
    if (comp != ".." || (!initialSlashes && comps.empty()) ||
        (!comps.empty() && comps.back() == "..")) {
      comps.push_back(comp);
    } else if (!comps.empty()) {
      comps.pop_back();
    }
  }
  std::string out(initialSlashes, '/');
  for (size_t i = 0; i < comps.size(); ++i) {
    if (i) out += '/';
    out += comps[i];
  }
  return out.empty() ? "." : out;
}

std::string pyJoin(ByteView a, ByteView b) {
  if (startsWith(b, "/")) return std::string(b);
  std::string out(a);
  if (!out.empty() && out.back() != '/') out += '/';
  return out + std::string(b);
}

std::pair<std::string, std::string> pySplit(ByteView path) {
  size_t i = path.rfind('/') + 1;  // npos + 1 == 0
  std::string head(path.substr(0, i));
  if (!head.empty() && head.find_first_not_of('/') != std::string::npos) {
    while (head.back() == '/') head.pop_back();
  }
  return {head, std::string(path.substr(i))};
}

std::string pyDirname(ByteView path) { return pySplit(path).first; }

std::vector<ByteView> findDirs(ByteView path) {
  std::vector<ByteView> out;
  for (size_t pos = path.rfind('/'); pos != ByteView::npos;
       pos = pos == 0 ? ByteView::npos : path.rfind('/', pos - 1)) {
    out.push_back(path.substr(0, pos));
  }
  out.push_back(ByteView());
  return out;
}

std::string pathTo(ByteView cwd, ByteView path) {
  if (cwd.empty()) return std::string(path);
  std::vector<std::string> a = splitBytes(cwd, '/'), b = splitBytes(path, '/');
  size_t common = 0;
  while (common < a.size() && common < b.size() && a[common] == b[common]) ++common;
  std::string out;
  for (size_t i = common; i < a.size(); ++i) out += out.empty() ? ".." : "/..";
  for (size_t i = common; i < b.size(); ++i) {
    if (!out.empty() || i > common) out += '/';
    out += b[i];
  }
  return out.empty() ? "." : out;
}

namespace {

// encoding.hfsignoreclean(s.lower()): what HFS+ would take the name for.
std::string lowerClean(ByteView s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  if (out.find('\xe2') == std::string::npos && out.find('\xef') == std::string::npos) return out;
  static const char* const kIgnored[] = {
      "\xe2\x80\x8c", "\xe2\x80\x8d", "\xe2\x80\x8e", "\xe2\x80\x8f",
      "\xe2\x80\xaa", "\xe2\x80\xab", "\xe2\x80\xac", "\xe2\x80\xad",
      "\xe2\x80\xae", "\xe2\x81\xaa", "\xe2\x81\xab", "\xe2\x81\xac",
      "\xe2\x81\xad", "\xe2\x81\xae", "\xe2\x81\xaf", "\xef\xbb\xbf"};
  for (const char* c : kIgnored) out = replaceAll(std::move(out), c, "");
  return out;
}

std::string asciiUpper(ByteView s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  }
  return out;
}

// The checks of pathauditor.__call__ that look at the name only.
std::optional<std::string> lexicalProblem(const std::string& path,
                                          const std::vector<std::string>& parts) {
  if (!path.empty() && path.back() == '/') return "path ends in directory separator: " + path;
  std::string first = lowerClean(parts[0]);
  if (first == ".hg" || first == ".hg." || first.empty() ||
      std::find(parts.begin(), parts.end(), "..") != parts.end()) {
    return "path contains illegal component: " + path;
  }
  for (const auto& p : parts) {
    size_t tilde = p.find('~');
    if (tilde == std::string::npos) continue;
    std::string last = p.substr(tilde + 1);
    std::string upper = asciiUpper(ByteView(p).substr(0, tilde));
    bool digits = !last.empty() && std::all_of(last.begin(), last.end(), [](char c) {
      return isDigit(static_cast<unsigned char>(c));
    });
    if (digits && (upper == "HG" || upper == "HG8B6C")) {
      return "path contains illegal component: " + path;
    }
  }
  if (lowerClean(path).find(".hg") == std::string::npos) return std::nullopt;
  std::vector<std::string> lparts;
  for (const auto& p : parts) lparts.push_back(lowerClean(p));
  for (const char* bad : {".hg", ".hg."}) {
    if (std::find(lparts.begin() + 1, lparts.end(), bad) == lparts.end()) continue;
    size_t pos = static_cast<size_t>(std::find(lparts.begin(), lparts.end(), bad) - lparts.begin());
    std::string base;
    for (size_t j = 0; j < pos; ++j) base = j ? pyJoin(base, parts[j]) : parts[j];
    return "path '" + path + "' is inside nested repo " + pyRepr(base);
  }
  return std::nullopt;
}

bool sameFile(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return stat(a.c_str(), &sa) == 0 && stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

}  // namespace

Status PathAuditor::check(ByteView name) const {
  std::string path(name);
  std::vector<std::string> parts = splitBytes(path, '/');
  if (auto problem = lexicalProblem(path, parts)) return invalidArgument(*problem);
  if (!fs_) return okStatus();
  // Prefixes from the root down, so a nested repository is found before
  // anything under it is looked at.
  std::string prefix;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    prefix = i ? prefix + "/" + parts[i] : parts[i];
    std::string full = pyJoin(root_, prefix);
    struct stat st;
    if (::lstat(full.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR || errno == EINVAL) continue;
      return unsupported(std::string("lstat: ") + std::strerror(errno), full);
    }
    if (S_ISLNK(st.st_mode)) {
      return invalidArgument("path " + pyRepr(path) + " traverses symbolic link " + pyRepr(prefix));
    }
    struct stat dotHg;
    if (S_ISDIR(st.st_mode) && ::stat((full + "/.hg").c_str(), &dotHg) == 0 &&
        S_ISDIR(dotHg.st_mode)) {
      return invalidArgument("path '" + path + "' is inside nested repo " + pyRepr(prefix));
    }
  }
  return okStatus();
}

namespace {

Result<std::string> canonPathOnce(const std::string& root, ByteView cwd, ByteView myname,
                                  const PathAuditor& auditor) {
  std::string rootsep = (!root.empty() && root.back() == '/') ? root : root + "/";
  std::string name(myname);
  if (!startsWith(name, "/")) name = pyJoin(pyJoin(root, cwd), myname);
  name = normpath(name);
  if (name != rootsep && startsWith(name, rootsep)) {
    std::string rel = name.substr(rootsep.size());
    HG_RETURN_IF_ERROR(auditor.check(rel));
    return rel;
  }
  if (name == root) return std::string();
  // Is `name` under the root by another way (a symlink)? Walk up until a
  // directory is the root itself.
  std::vector<std::string> rel;
  for (;;) {
    if (sameFile(name, root)) {
      if (rel.empty()) return std::string();
      std::reverse(rel.begin(), rel.end());
      std::string joined;
      for (const auto& p : rel) joined = joined.empty() ? p : pyJoin(joined, p);
      HG_RETURN_IF_ERROR(auditor.check(joined));
      return joined;
    }
    auto [dir, base] = pySplit(name);
    rel.push_back(base);
    if (dir == name) break;
    name = dir;
  }
  return invalidArgument(std::string(myname) + " not under root '" + root + "'");
}

}  // namespace

Result<std::string> canonPath(const std::string& root, ByteView cwd, ByteView name,
                              const PathAuditor& auditor) {
  auto rel = canonPathOnce(root, cwd, name, auditor);
  if (rel.ok() || rel.error().kind != ErrorKind::kInvalidArgument ||
      rel.error().what.find(" not under root '") == std::string::npos) {
    return rel;
  }
  // A common mistake is a path relative to the root typed elsewhere: hg
  // hints at --cwd when the name would have been fine from the root.
  Error err = std::move(rel).takeError();
  if (!cwd.empty() && canonPathOnce(root, "", name, auditor).ok()) {
    std::string up = pathTo(cwd, "");
    while (!up.empty() && up.back() == '/') up.pop_back();
    err.what += "\n(consider using '--cwd " + up + "')";
  }
  return err;
}

}  // namespace hgvfs::match
