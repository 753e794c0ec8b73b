// `hgvfs status`: asks the daemon of the mount around the current directory
// (control_protocol.h) and prints the answer exactly as `hg status` prints
// it: the same categories in the same order (M A R ! ? I C), paths relative
// to the repository root, or to the current directory when patterns are
// given, copy sources under their destination, -n, -0 and -T json.
// No Python is started.

#include "cli/status_command.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fs/client_dir.h"
#include "fs/control_protocol.h"

namespace hgvfs::cli {
namespace {

using nlohmann::json;

int fail(const std::string& message) {
  std::fprintf(stderr, "hgvfs: %s\n", message.c_str());
  return 255;
}

// The innermost hgvfs mount holding `dir` (absolute, real path).
std::string mountAround(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string best;
  for (std::string line; std::getline(in, line);) {
    if (line.find(" - fuse.hgvfs ") == std::string::npos) continue;
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    std::string decoded;  // mountinfo writes space, tab, newline, backslash as \ooo
    for (size_t i = 0; i < point.size(); ++i) {
      if (point[i] == '\\' && i + 3 < point.size() + 1 && i + 3 <= point.size()) {
        decoded.push_back(static_cast<char>(std::stoi(point.substr(i + 1, 3), nullptr, 8)));
        i += 3;
      } else {
        decoded.push_back(point[i]);
      }
    }
    bool inside = dir == decoded || (dir.rfind(decoded + "/", 0) == 0) || decoded == "/";
    if (inside && decoded.size() > best.size()) best = decoded;
  }
  return best;
}

// `[hgvfs] socket = PATH` from the mount's .hg/hgrc.
std::string socketOf(const std::string& mountPoint) {
  std::ifstream in(mountPoint + "/.hg/hgrc");
  std::string section;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] == '[') {
      section = line.substr(1, line.find(']') - 1);
      continue;
    }
    size_t eq = line.find('=');
    if (section != "hgvfs" || eq == std::string::npos) continue;
    std::string key = line.substr(0, eq);
    key.erase(key.find_last_not_of(" \t") + 1);
    if (key != "socket") continue;
    std::string value = line.substr(eq + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t\r") + 1);
    return value;
  }
  return "";
}

hg::Result<std::string> ask(const std::string& socket, const std::string& request) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket.size() >= sizeof addr.sun_path) return hg::invalidArgument("socket path too long");
  std::memcpy(addr.sun_path, socket.c_str(), socket.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return hg::ioError(errno, strerror(errno));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd);
    return hg::ioError(err, std::string("cannot reach the daemon (") + strerror(err) + ")",
                       socket);
  }
  std::string line = request + "\n";
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::send(fd, line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return hg::ioError(EIO, "the daemon closed the connection");
    }
    done += static_cast<size_t>(n);
  }
  std::string reply;
  char buf[65536];
  while (reply.empty() || reply.back() != '\n') {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (reply.empty() || reply.back() != '\n') return hg::ioError(EIO, "no answer from the daemon");
  reply.pop_back();
  return reply;
}

// Mercurial's normpath of a '/'-separated relative path ("" for the root);
// nullopt when it leaves the repository.
std::optional<std::string> normalize(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string part = path.substr(start, slash == std::string::npos ? std::string::npos
                                                                      : slash - start);
    if (part == "..") {
      if (parts.empty()) return std::nullopt;
      parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "/") + p;
  return out;
}

// hg's repo.pathto: `path` (repository-relative) as seen from `cwd`.
std::string pathTo(const std::string& path, const std::string& cwd) {
  if (cwd.empty()) return path;
  auto split = [](const std::string& s) {
    std::vector<std::string> v;
    size_t start = 0;
    while (true) {
      size_t slash = s.find('/', start);
      v.push_back(s.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    return v;
  };
  auto a = split(cwd), b = split(path);
  size_t common = 0;
  while (common < a.size() && common < b.size() && a[common] == b[common]) ++common;
  std::string out;
  for (size_t i = common; i < a.size(); ++i) out += "../";
  for (size_t i = common; i < b.size(); ++i) out += b[i] + (i + 1 < b.size() ? "/" : "");
  if (!out.empty() && out.back() == '/') out.pop_back();
  return out;
}

// Mercurial's JSON string escaping (encoding.jsonescape): valid UTF-8 as
// is, other bytes as U+DCxx (UTF-8b), control characters escaped.
size_t utf8Length(const std::string& s, size_t pos) {
  unsigned char c = static_cast<unsigned char>(s[pos]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || pos + n > s.size()) return 0;
  uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
  for (size_t i = 1; i < n; ++i) {
    unsigned char d = static_cast<unsigned char>(s[pos + i]);
    if ((d & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3f);
  }
  static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

std::string jsonEscape(const std::string& s) {
  std::string out;
  for (size_t pos = 0; pos < s.size();) {
    size_t n = utf8Length(s, pos);
    if (n == 0) {  // not UTF-8: the byte as a lone surrogate U+DC00+byte
      uint32_t cp = 0xdc00 + static_cast<unsigned char>(s[pos]);
      out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
      ++pos;
      continue;
    }
    if (n == 1) {
      char c = s[pos];
      switch (c) {
        case '\b': out += "\\b"; break;
        case '\t': out += "\\t"; break;
        case '\n': out += "\\n"; break;
        case '\f': out += "\\f"; break;
        case '\r': out += "\\r"; break;
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        default:
          if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
            out += buf;
          } else {
            out.push_back(c);
          }
      }
    } else {
      out.append(s, pos, n);
    }
    pos += n;
  }
  return out;
}

}  // namespace

int statusCommand(const StatusArgs& args) {
  char cwdBuf[PATH_MAX];
  if (!::getcwd(cwdBuf, sizeof cwdBuf)) return fail(std::string("getcwd: ") + strerror(errno));
  std::string cwd = cwdBuf;
  std::string mountPoint = mountAround(cwd);
  if (mountPoint.empty()) return fail("not inside an hgvfs mount (" + cwd + ")");
  std::string cwdRel = cwd == mountPoint ? "" : cwd.substr(mountPoint.size() + 1);
  if (cwdRel == ".hg" || cwdRel.rfind(".hg/", 0) == 0) cwdRel.clear();
  if (!args.template_.empty() && args.template_ != "json") {
    return fail("only -T json is supported (got '" + args.template_ + "')");
  }

  // Patterns: paths relative to the current directory, optionally with
  // path: (relative to the root) or relpath:.
  std::vector<std::pair<std::string, std::string>> patterns;  // as given, repo-relative
  for (const auto& p : args.patterns) {
    std::string spec = p, kind = "relpath";
    size_t colon = p.find(':');
    if (colon != std::string::npos && colon > 0 &&
        p.find_first_not_of("abcdefghijklmnopqrstuvwxyz", 0) == colon) {
      kind = p.substr(0, colon);
      spec = p.substr(colon + 1);
    }
    std::string joined;
    if (kind == "path") {
      joined = spec;
    } else if (kind == "relpath") {
      if (!spec.empty() && spec[0] == '/') {
        if (spec != mountPoint && spec.rfind(mountPoint + "/", 0) != 0) {
          return fail("abort: " + spec + " not under root '" + mountPoint + "'");
        }
        joined = spec.substr(std::min(spec.size(), mountPoint.size() + 1));
      } else {
        joined = cwdRel.empty() ? spec : cwdRel + "/" + spec;
      }
    } else {
      return fail("pattern kind '" + kind + ":' is not supported by hgvfs status (use hg status)");
    }
    auto norm = normalize(joined);
    if (!norm) return fail("abort: " + p + " not under root '" + mountPoint + "'");
    patterns.emplace_back(p, *norm);
  }

  // What to show (commands.status in Mercurial).
  static const char* kStates[] = {"modified", "added", "removed", "deleted",
                                  "unknown",  "ignored", "clean"};
  static const char kChars[] = "MAR!?IC";
  bool asked[7] = {args.modified, args.added,   args.removed, args.deleted,
                   args.unknown,  args.ignored, args.clean};
  bool show[7] = {};
  bool any = false;
  for (int i = 0; i < 7; ++i) {
    show[i] = asked[i];
    any = any || asked[i];
  }
  if (args.all) {
    for (int i = 0; i < 7; ++i) {
      if (!args.quiet || i < 4 || i == 6) show[i] = true;
    }
    any = true;
  }
  if (!any) {
    for (int i = 0; i < (args.quiet ? 4 : 5); ++i) show[i] = true;
  }
  bool copies = (args.copies || args.all) && !args.noStatus;

  std::string socket = socketOf(mountPoint);
  if (socket.empty()) return fail("no daemon socket named in " + mountPoint + "/.hg/hgrc");
  json request{{"version", fs::kControlProtocolVersion}, {"op", "status"},
               {"unknown", show[4]}, {"ignored", show[5]}, {"clean", show[6]}};
  if (!args.rev.empty()) request["rev"] = args.rev;
  auto reply = ask(socket, request.dump());
  if (!reply.ok()) return fail(reply.error().message());
  json answer;
  try {
    answer = json::parse(*reply);
  } catch (const std::exception& e) {
    return fail(std::string("malformed answer from the daemon: ") + e.what());
  }
  if (!answer.value("ok", false)) return fail(answer.value("error", "the daemon failed"));
  if (answer.contains("warnings")) {
    for (const auto& w : answer["warnings"]) {
      auto text = fs::jsonStringToBytes(w.get<std::string>());
      if (text.ok()) std::fprintf(stderr, "%s\n", text->c_str());
    }
  }

  auto matches = [&](const std::string& path) {
    if (patterns.empty()) return true;
    for (const auto& [given, p] : patterns) {
      if (p.empty() || path == p || path.rfind(p + "/", 0) == 0) return true;
    }
    return false;
  };
  std::map<std::string, std::string> copySource;
  if (copies && answer.contains("copies")) {
    for (const auto& [dest, src] : answer["copies"].items()) {
      auto d = fs::jsonStringToBytes(dest);
      auto s = fs::jsonStringToBytes(src.get<std::string>());
      if (d.ok() && s.ok()) copySource[*d] = *s;
    }
  }
  std::string printCwd = patterns.empty() ? "" : cwdRel;
  std::string relativeBase = patterns.empty() ? "" : cwdRel;
  const char end = args.print0 ? '\0' : '\n';
  std::string out;
  bool json = args.template_ == "json";
  bool firstJson = true;
  size_t matched = 0;
  std::vector<bool> patternHit(patterns.size(), false);
  if (json) out += "[";
  for (int i = 0; i < 7; ++i) {
    if (!show[i] || !answer.contains(kStates[i])) continue;
    for (const auto& item : answer[kStates[i]]) {
      auto bytes = fs::jsonStringToBytes(item.get<std::string>());
      if (!bytes.ok()) return fail(bytes.error().message());
      const std::string& path = *bytes;
      if (!matches(path)) continue;
      ++matched;
      for (size_t k = 0; k < patterns.size(); ++k) {
        const std::string& p = patterns[k].second;
        if (p.empty() || path == p || path.rfind(p + "/", 0) == 0) patternHit[k] = true;
      }
      auto src = copySource.find(path);
      bool withSource = src != copySource.end() && (i == 0 || i == 1);
      if (json) {
        out += firstJson ? "\n" : ",\n";
        firstJson = false;
        out += " {\n  \"itemtype\": \"file\",\n  \"path\": \"" + jsonEscape(path) + "\",\n";
        if (withSource) out += "  \"source\": \"" + jsonEscape(src->second) + "\",\n";
        out += std::string("  \"status\": \"") + kChars[i] + "\"\n }";
        continue;
      }
      if (!args.noStatus) {
        out.push_back(kChars[i]);
        out.push_back(' ');
      }
      out += pathTo(path, relativeBase);
      out.push_back(end);
      if (withSource) {
        out += "  " + pathTo(src->second, relativeBase);
        out.push_back(end);
      }
    }
  }
  if (json) out += "\n]\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  // A named path that matched nothing and does not exist: hg warns.
  for (size_t k = 0; k < patterns.size(); ++k) {
    if (patternHit[k]) continue;
    struct stat st {};
    std::string onDisk = mountPoint + (patterns[k].second.empty() ? "" : "/" + patterns[k].second);
    if (::lstat(onDisk.c_str(), &st) != 0) {
      std::fprintf(stderr, "%s: No such file or directory\n",
                   pathTo(patterns[k].second, cwdRel).c_str());
    }
  }
  (void)printCwd;
  return 0;
}

}  // namespace hgvfs::cli
