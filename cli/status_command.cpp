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

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

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
    return hg::ioError(err, std::string("cannot reach the daemon (") + strerror(err) + ")", socket);
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
    std::string part =
        path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
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
        case '\b':
          out += "\\b";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\r':
          out += "\\r";
          break;
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
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

// Mercurial's pattern kinds (match.py _regex, _globre) as regular
// expressions; matched from the start of the repository-relative path.
std::string reEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c >= 0x80) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string globRe(const std::string& pat) {
  std::string res;
  size_t i = 0, n = pat.size();
  int group = 0;
  while (i < n) {
    char c = pat[i++];
    if (std::string("*?[{},\\").find(c) == std::string::npos) {
      res += reEscape(std::string(1, c));
    } else if (c == '*') {
      if (i < n && pat[i] == '*') {
        ++i;
        if (i < n && pat[i] == '/') {
          ++i;
          res += "(?:.*/)?";
        } else {
          res += ".*";
        }
      } else {
        res += "[^/]*";
      }
    } else if (c == '?') {
      res += ".";
    } else if (c == '[') {
      size_t j = i;
      if (j < n && (pat[j] == '!' || pat[j] == ']')) ++j;
      while (j < n && pat[j] != ']') ++j;
      if (j >= n) {
        res += "\\[";
      } else {
        std::string stuff;
        for (size_t k = i; k < j; ++k)
          stuff += pat[k] == '\\' ? std::string("\\\\") : std::string(1, pat[k]);
        i = j + 1;
        if (!stuff.empty() && stuff[0] == '!') {
          stuff = "^" + stuff.substr(1);
        } else if (!stuff.empty() && stuff[0] == '^') {
          stuff = "\\" + stuff;
        }
        res += "[" + stuff + "]";
      }
    } else if (c == '{') {
      ++group;
      res += "(?:";
    } else if (c == '}' && group) {
      res += ")";
      --group;
    } else if (c == ',' && group) {
      res += "|";
    } else if (c == '\\') {
      if (i < n) {
        res += reEscape(std::string(1, pat[i++]));
      } else {
        res += "\\\\";
      }
    } else {
      res += reEscape(std::string(1, c));
    }
  }
  return res;
}

struct Pattern {
  std::string given;  // as typed
  std::string kind;   // path, relpath, glob, relglob, rootglob, rootfilesin, re, relre
  std::string pat;    // normalized (repository-relative where the kind is)
  std::regex re;
};

// Splits KIND:PAT for the kinds hg knows; others are the default kind.
std::pair<std::string, std::string> splitKind(const std::string& p, const std::string& dflt) {
  static const char* kKinds[] = {"re",      "glob",  "path",     "relglob",
                                 "relpath", "relre", "rootglob", "rootfilesin"};
  size_t colon = p.find(':');
  if (colon != std::string::npos) {
    std::string k = p.substr(0, colon);
    for (const char* known : kKinds) {
      if (k == known) return {k, p.substr(colon + 1)};
    }
  }
  return {dflt, p};
}

hg::Result<Pattern> compilePattern(const std::string& given, const std::string& dflt,
                                   const std::string& cwdRel, const std::string& mountPoint,
                                   const std::string& globSuffix) {
  auto [kind, pat] = splitKind(given, dflt);
  Pattern out{given, kind, pat, {}};
  if (kind == "glob" || kind == "relpath") {  // relative to the current directory
    std::string joined;
    if (!pat.empty() && pat[0] == '/') {
      if (pat != mountPoint && pat.rfind(mountPoint + "/", 0) != 0) {
        return hg::invalidArgument(pat + " not under root '" + mountPoint + "'");
      }
      joined = pat.substr(std::min(pat.size(), mountPoint.size() + 1));
    } else {
      joined = cwdRel.empty() ? pat : cwdRel + "/" + pat;
    }
    auto norm = normalize(joined);
    if (!norm) return hg::invalidArgument(given + " not under root '" + mountPoint + "'");
    out.pat = *norm;
  } else if (kind == "path" || kind == "rootfilesin" || kind == "rootglob") {
    auto norm = normalize(pat);
    if (!norm) return hg::invalidArgument(given + " not under root '" + mountPoint + "'");
    out.pat = *norm;
  }
  std::string re;
  const std::string& p2 = out.pat;
  if (p2.empty() && (kind == "glob" || kind == "relpath")) {
    re = "";
  } else if (kind == "re") {
    re = p2;
  } else if (kind == "path" || kind == "relpath") {
    re = p2 == "." || p2.empty() ? "" : reEscape(p2) + "(?:/|$)";
  } else if (kind == "rootfilesin") {
    re = (p2 == "." || p2.empty() ? "" : reEscape(p2) + "/") + "[^/]+$";
  } else if (kind == "relglob") {
    std::string g = globRe(p2);
    re = g.rfind("[^/]*", 0) == 0 ? ".*" + g.substr(5) + globSuffix : "(?:|.*/)" + g + globSuffix;
  } else if (kind == "relre") {
    re = p2.rfind("^", 0) == 0 ? p2 : ".*" + p2;
  } else {  // glob, rootglob
    re = globRe(p2) + globSuffix;
  }
  try {
    out.re = std::regex("^(?:" + re + ")", std::regex::ECMAScript | std::regex::optimize);
  } catch (const std::regex_error& e) {
    return hg::invalidArgument("invalid pattern " + given + ": " + e.what());
  }
  return out;
}

bool matchesPattern(const Pattern& p, const std::string& path) {
  return std::regex_search(path, p.re, std::regex_constants::match_continuous);
}

}  // namespace

void addStatusCommand(CLI::App& app, StatusArgs& statusArgs, int& exitCode) {
  auto* status = app.add_subcommand(
      "status", "Show changed files in the mount, exactly as hg status does (no Python)");
  status->add_flag("-m,--modified", statusArgs.modified, "show only modified files");
  status->add_flag("-a,--added", statusArgs.added, "show only added files");
  status->add_flag("-r,--removed", statusArgs.removed, "show only removed files");
  status->add_flag("-d,--deleted", statusArgs.deleted, "show only missing files (!)");
  status->add_flag("-u,--unknown", statusArgs.unknown, "show only unknown files (?)");
  status->add_flag("-i,--ignored", statusArgs.ignored, "show only ignored files");
  status->add_flag("-c,--clean", statusArgs.clean, "show only files without changes");
  status->add_flag("-A,--all", statusArgs.all, "show status of all files");
  status->add_flag("-q,--quiet", statusArgs.quiet, "hide unknown files");
  status->add_flag("-n,--no-status", statusArgs.noStatus, "hide status prefix");
  status->add_flag("--print0", statusArgs.print0, "end filenames with NUL (also -0)");
  status->add_flag("-C,--copies", statusArgs.copies, "show source of copied files");
  status->add_option("-T,--template", statusArgs.template_, "json");
  status->add_option("--rev", statusArgs.rev, "compare the working copy with REV");
  status->add_option("-I,--include", statusArgs.include,
                     "include names matching the given patterns");
  status->add_option("-X,--exclude", statusArgs.exclude,
                     "exclude names matching the given patterns");
  status->add_option("PATTERN", statusArgs.patterns, "files or directories");
  status->callback([&] { exitCode = statusCommand(statusArgs); });
}

std::vector<std::string> reversedArguments(int argc, char** argv) {
  // hg spells --print0 as -0, which is not an option name CLI11 accepts.
  std::vector<std::string> in(argv + 1, argv + argc), args;
  bool inStatus = false;
  for (size_t i = 0; i < in.size(); ++i) {
    std::string a = in[i];
    if (a == "status") inStatus = true;
    bool valueNext = i > 0 && (in[i - 1] == "-T" || in[i - 1] == "-I" || in[i - 1] == "-X" ||
                               in[i - 1] == "--rev" || in[i - 1] == "--template" ||
                               in[i - 1] == "--include" || in[i - 1] == "--exclude");
    // A cluster of short flags such as -mardui0.
    if (inStatus && !valueNext && a.size() > 1 && a[0] == '-' && a[1] != '-' &&
        a.find('0') != std::string::npos &&
        a.find_first_not_of("mardiucAqnC0", 1) == std::string::npos) {
      a.erase(std::remove(a.begin() + 1, a.end(), '0'), a.end());
      if (a.size() > 1) args.push_back(a);
      args.push_back("--print0");
      continue;
    }
    args.push_back(a);
  }
  std::reverse(args.begin(), args.end());
  return args;
}

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

  // Patterns: as Mercurial reads them (relpath by default, relative to the
  // current directory; -I/-X default to glob).
  std::vector<Pattern> patterns, includes, excludes;
  for (const auto& p : args.patterns) {
    auto compiled = compilePattern(p, "relpath", cwdRel, mountPoint, "$");
    if (!compiled.ok()) return fail("abort: " + compiled.error().what);
    patterns.push_back(std::move(compiled).value());
  }
  for (const auto& [list, out] :
       {std::pair{&args.include, &includes}, std::pair{&args.exclude, &excludes}}) {
    for (const auto& p : *list) {
      auto compiled = compilePattern(p, "glob", cwdRel, mountPoint, "(?:/|$)");
      if (!compiled.ok()) return fail("abort: " + compiled.error().what);
      out->push_back(std::move(compiled).value());
    }
  }
  bool relative = !patterns.empty() || !includes.empty() || !excludes.empty();

  // What to show (commands.status in Mercurial).
  static const char* kStates[] = {"modified", "added",   "removed", "deleted",
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
  json request{{"version", fs::kControlProtocolVersion},
               {"op", "status"},
               {"unknown", show[4]},
               {"ignored", show[5]},
               {"clean", show[6]}};
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
    if (!patterns.empty() && std::none_of(patterns.begin(), patterns.end(), [&](const Pattern& p) {
          return matchesPattern(p, path);
        })) {
      return false;
    }
    if (!includes.empty() && std::none_of(includes.begin(), includes.end(), [&](const Pattern& p) {
          return matchesPattern(p, path);
        })) {
      return false;
    }
    return std::none_of(excludes.begin(), excludes.end(),
                        [&](const Pattern& p) { return matchesPattern(p, path); });
  };
  std::map<std::string, std::string> copySource;
  if (copies && answer.contains("copies")) {
    for (const auto& [dest, src] : answer["copies"].items()) {
      auto d = fs::jsonStringToBytes(dest);
      auto s = fs::jsonStringToBytes(src.get<std::string>());
      if (d.ok() && s.ok()) copySource[*d] = *s;
    }
  }
  std::string relativeBase = relative ? cwdRel : "";
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
        if (matchesPattern(patterns[k], path)) patternHit[k] = true;
      }
      auto src = copySource.find(path);
      bool withSource = src != copySource.end() && (i == 0 || i == 1 || i == 3);
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
    const Pattern& p = patterns[k];
    if (patternHit[k] || (p.kind != "relpath" && p.kind != "path")) continue;
    struct stat st {};
    std::string onDisk = mountPoint + (p.pat.empty() ? "" : "/" + p.pat);
    if (::lstat(onDisk.c_str(), &st) != 0) {
      std::fprintf(stderr, "%s: No such file or directory\n", pathTo(p.pat, cwdRel).c_str());
    }
  }
  return 0;
}

}  // namespace hgvfs::cli
