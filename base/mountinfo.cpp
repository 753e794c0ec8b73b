#include "base/mountinfo.h"

#include <fstream>
#include <sstream>

namespace hgvfs {
namespace {

// mountinfo writes space, tab, newline and backslash as \ooo; anything else
// after a backslash is kept as it is.
std::string unescapeMountField(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (size_t k = 1; k <= 3; ++k) {
        char c = s[i + k];
        if (c < '0' || c > '7') ok = false;
        v = v * 8 + (c - '0');
      }
      if (ok && v < 256) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

std::optional<MountInfo> parseMountInfoLine(const std::string& line) {
  // id parent major:minor root mountpoint options [optional...] - fstype source superopts
  std::istringstream ss(line);
  std::string id, parent, dev, root, mp, tok, type, source;
  if (!(ss >> id >> parent >> dev >> root >> mp)) return std::nullopt;
  bool separator = false;
  while (ss >> tok) {
    if (tok == "-") {
      separator = true;
      break;
    }
  }
  if (!separator || !(ss >> type)) return std::nullopt;
  ss >> source;
  return MountInfo{unescapeMountField(mp), type, unescapeMountField(source)};
}

std::vector<MountInfo> readMountInfo() {
  std::ifstream in("/proc/self/mountinfo");
  std::vector<MountInfo> out;
  for (std::string line; std::getline(in, line);) {
    if (auto m = parseMountInfoLine(line)) out.push_back(std::move(*m));
  }
  return out;
}

std::vector<std::string> mountTypesAt(const std::string& path) {
  std::vector<std::string> types;
  for (auto& m : readMountInfo()) {
    if (m.mountPoint == path) types.push_back(std::move(m.fsType));
  }
  return types;
}

std::optional<std::string> mountTypeAt(const std::string& path) {
  auto types = mountTypesAt(path);
  if (types.empty()) return std::nullopt;
  return types.back();
}

std::string innermostMountOf(const std::string& dir, const std::string& fsType) {
  std::string best;
  for (const auto& m : readMountInfo()) {
    if (m.fsType != fsType) continue;
    const std::string& p = m.mountPoint;
    bool inside = dir == p || p == "/" || dir.rfind(p + "/", 0) == 0;
    if (inside && p.size() > best.size()) best = p;
  }
  return best;
}

}  // namespace hgvfs
