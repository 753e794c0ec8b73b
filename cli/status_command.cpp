// `hgvfs status`: asks the daemon of the mount around the current directory
// (control/client.h) and prints the answer exactly as `hg status` prints
// it: the same categories in the same order (M A R ! ? I C), paths relative
// to the repository root, or to the current directory when patterns are
// given, copy sources under their destination, -n, -0 and -T json.
// No Python is started.
//
// Patterns and -I/-X are Mercurial's (match/matcher.h), and what they let
// through is what hg's own walk would show (match/dirstate_walk.h): the
// daemon answers for the whole working copy and this filters its answer.
// What is not done natively (filesets, --rev with patterns, --rev with
// copies (hg traces them through every ancestor of each file revision),
// subrepositories,
// paths that reach through a symlink or into a nested repository, patterns
// hg itself would crash on) is handed to stock `hg status` with the same
// arguments, before anything is printed.

#include "cli/status_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/hgrc.h"
#include "base/io.h"
#include "base/mountinfo.h"
#include "cli/help.h"
#include "control/client.h"
#include "match/dirstate_walk.h"
#include "match/matcher.h"
#include "match/paths.h"

namespace hgvfs::cli {
namespace {

int fail(const std::string& message) {
  std::fprintf(stderr, "hgvfs: %s\n", message.c_str());
  return 255;
}

// hg's own abort: "abort: MESSAGE" (a hint on its own line), exit 255.
int abortLikeHg(const std::string& message) {
  std::string text = "abort: " + message + "\n";
  std::fwrite(text.data(), 1, text.size(), stderr);
  return 255;
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

// The arguments this process was started with after "status", exactly as
// given (the parser has rewritten -0 and reordered them).
std::vector<std::string> statusArguments() {
  auto cmdline = readFile("/proc/self/cmdline");
  std::vector<std::string> argv;
  if (cmdline.ok()) {
    size_t start = 0;
    while (start < cmdline->size()) {
      size_t nul = cmdline->find('\0', start);
      if (nul == std::string::npos) nul = cmdline->size();
      argv.push_back(cmdline->substr(start, nul - start));
      start = nul + 1;
    }
  }
  auto it = std::find(argv.begin() + std::min<size_t>(1, argv.size()), argv.end(), "status");
  if (it == argv.end()) return {};
  return {it + 1, argv.end()};
}

// Hands the whole command to stock `hg status` (found on PATH) in the same
// directory; returns only if hg cannot be started.
int runStockHg(const std::string& why) {
  std::vector<std::string> args{"hg", "status"};
  for (auto& a : statusArguments()) args.push_back(std::move(a));
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  ::execvp("hg", argv.data());
  return fail("cannot run hg status (needed for " + why + "): " + std::strerror(errno));
}

bool isDirectory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// What `hg status` shows of the daemon's answer when patterns, -I or -X
// were given; `fallback` says why hg must answer instead.
class PatternFilter {
 public:
  PatternFilter(const match::Matcher& matcher, const std::string& mountPoint,
                const control::StatusReply& reply)
      : mountPoint_(mountPoint), reply_(reply) {
    match::WalkView::Probe probe;
    probe.lstat = [this](const std::string& rel) { return lstat(rel); };
    probe.inDirstate = [this](const std::string& rel) { return tracked(rel); };
    probe.dirstateHasDir = [this](const std::string& dir) { return trackedMissingUnder(dir); };
    walk_.emplace(matcher, probe);
  }

  const std::string& fallback() const { return fallback_; }
  // The named files on disk that the reply does not list as tracked: hg
  // reads the ignore files to classify them, whatever it was asked to list.
  std::vector<std::string> namedUntracked() const {
    std::vector<std::string> out;
    for (const auto& f : walk_->explicitFound()) {
      if (!tracked(f)) out.push_back(f);
    }
    return out;
  }
  const std::vector<std::pair<std::string, std::string>>& bad() const { return walk_->bad(); }
  // `category` indexes "MAR!?IC".
  bool shows(int category, const std::string& path) {
    return category == 4 || category == 5 ? walk_->showsUntracked(path) : walk_->showsTracked(path);
  }

 private:
  match::PathKind lstat(const std::string& rel) {
    match::PathKind kind;
    if (rel == "." || rel == ".." || rel.rfind("../", 0) == 0 || rel.rfind('/', 0) == 0) {
      fallback_ = "the path " + rel;
      kind.type = match::PathKind::kFile;
      return kind;
    }
    struct stat st {};
    if (::lstat((mountPoint_ + "/" + rel).c_str(), &st) != 0) {
      kind.err = errno;
      return kind;
    }
    kind.mode = st.st_mode;
    if (S_ISDIR(st.st_mode)) {
      kind.type = match::PathKind::kDirectory;
    } else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
      kind.type = match::PathKind::kFile;
    } else {
      kind.type = match::PathKind::kOther;
    }
    // hg's walk reaches through a symlinked or nested-repository directory
    // that the daemon's walk (and hg's own traversal) never enters.
    for (size_t slash = rel.find('/'); slash != std::string::npos;
         slash = rel.find('/', slash + 1)) {
      std::string dir = mountPoint_ + "/" + rel.substr(0, slash);
      struct stat ds {};
      if (::lstat(dir.c_str(), &ds) == 0 && (S_ISLNK(ds.st_mode) || isDirectory(dir + "/.hg"))) {
        fallback_ = "a path under " + rel.substr(0, slash);
      }
    }
    return kind;
  }

  bool tracked(const std::string& rel) const {
    for (const auto* list :
         {&reply_.modified, &reply_.added, &reply_.removed, &reply_.deleted, &reply_.clean}) {
      if (std::find(list->begin(), list->end(), rel) != list->end()) return true;
    }
    return false;
  }

  // A path missing from disk is in the dirstate exactly when it is ! or R,
  // and so is everything under a missing directory.
  bool trackedMissingUnder(const std::string& dir) const {
    std::string prefix = dir + "/";
    for (const auto* list : {&reply_.removed, &reply_.deleted}) {
      for (const auto& p : *list) {
        if (p.rfind(prefix, 0) == 0) return true;
      }
    }
    return false;
  }

  const std::string& mountPoint_;
  const control::StatusReply& reply_;
  std::optional<match::WalkView> walk_;
  std::string fallback_;
};

void printWarnings(const std::vector<Bytes>& warnings) {
  for (const auto& w : warnings) std::fprintf(stderr, "%s\n", w.c_str());
}

void printBad(const PatternFilter* filter, const std::string& cwdRel) {
  if (!filter) return;
  for (const auto& [path, message] : filter->bad()) {
    std::string line = match::pathTo(cwdRel, path) + ": " + message + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
}

// commands.status: which categories ("MAR!?IC") hg shows for these flags.
struct Shown {
  bool show[7] = {};
  bool copies = false;
};

Shown whatToShow(const StatusArgs& args) {
  Shown s;
  bool asked[7] = {args.modified, args.added,   args.removed, args.deleted,
                   args.unknown,  args.ignored, args.clean};
  bool any = false;
  for (int i = 0; i < 7; ++i) {
    s.show[i] = asked[i];
    any = any || asked[i];
  }
  if (args.all) {
    for (int i = 0; i < 7; ++i) {
      if (!args.quiet || i < 4 || i == 6) s.show[i] = true;
    }
    any = true;
  }
  if (!any) {
    for (int i = 0; i < (args.quiet ? 4 : 5); ++i) s.show[i] = true;
  }
  s.copies = (args.copies || args.all) && !args.noStatus;
  return s;
}

// The patterns, -I and -X as Mercurial reads them (match.match: relpath by
// default, relative to the current directory; -I/-X default to glob) into
// `matcher` (left null without any). Returns an exit code when the command
// ends here: hg's abort, or stock hg's answer.
std::optional<int> readPatterns(const StatusArgs& args, const std::string& mountPoint,
                                const std::string& cwdRel,
                                std::unique_ptr<match::Matcher>& matcher) {
  if (args.patterns.empty() && args.include.empty() && args.exclude.empty()) return std::nullopt;
  if (!args.rev.empty()) return runStockHg("--rev with patterns");
  struct stat st {};
  if (::lstat((mountPoint + "/.hgsub").c_str(), &st) == 0) return runStockHg("subrepositories");
  match::MatchOptions options;
  options.root = mountPoint;
  options.cwd = cwdRel;
  auto built = match::buildMatcher(options, args.patterns, args.include, args.exclude,
                                   match::Kind::kRelpath);
  if (!built.ok()) {
    if (built.error().kind == ErrorKind::kInvalidArgument) return abortLikeHg(built.error().what);
    return runStockHg(built.error().message());
  }
  matcher = std::move(built).value();
  return std::nullopt;
}

// Without -u or -i, hg still reads the ignore files to classify a named
// file it does not track, and prints their warnings after the walk's: those
// warnings, or an exit code when only stock hg can tell.
std::optional<int> namedFileWarnings(const Shown& shown, const PatternFilter& filter,
                                     control::Client& client, std::vector<Bytes>& warnings) {
  std::vector<std::string> named = filter.namedUntracked();
  if (shown.show[4] || shown.show[5] || named.empty()) return std::nullopt;
  auto withUnknown = client.status(control::StatusRequest{});
  if (!withUnknown.ok()) return runStockHg("ignore files the daemon refuses");
  if (withUnknown->warnings.empty()) return std::nullopt;
  const auto& unknown = withUnknown->unknown;
  bool seen = std::any_of(named.begin(), named.end(), [&](const std::string& f) {
    return std::find(unknown.begin(), unknown.end(), f) != unknown.end();
  });
  // A named file neither unknown nor listed may be clean or ignored; only hg
  // knows whether it reads the ignore files then.
  if (!seen) return runStockHg("ignore-file warnings");
  warnings = withUnknown->warnings;
  return std::nullopt;
}

// The lines hg prints for the daemon's answer (or its JSON).
std::string formatStatus(const StatusArgs& args, const Shown& shown,
                         const control::StatusReply& answer, PatternFilter* filter,
                         const std::string& relativeBase) {
  static const char kChars[] = "MAR!?IC";
  std::map<std::string, std::string> copySource;
  if (shown.copies) copySource.insert(answer.copies.begin(), answer.copies.end());
  const char end = args.print0 ? '\0' : '\n';
  std::string out;
  bool json = args.template_ == "json";
  bool firstJson = true;
  if (json) out += "[";
  const std::vector<Bytes>* lists[7] = {&answer.modified, &answer.added,   &answer.removed,
                                        &answer.deleted,  &answer.unknown, &answer.ignored,
                                        &answer.clean};
  for (int i = 0; i < 7; ++i) {
    if (!shown.show[i]) continue;
    for (const std::string& path : *lists[i]) {
      if (filter && !filter->shows(i, path)) continue;
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
      out += match::pathTo(relativeBase, path);
      out.push_back(end);
      if (withSource) {
        out += "  " + match::pathTo(relativeBase, src->second);
        out.push_back(end);
      }
    }
  }
  if (json) out += "\n]\n";
  return out;
}

}  // namespace

void addStatusCommand(CLI::App& app, StatusArgs& statusArgs, int& exitCode) {
  auto* status = app.add_subcommand(
      "status", "Show changed files in the mount, exactly as hg status does (no Python)");
  status->footer(
      "Patterns (hg help patterns) are matched natively: path:, relpath:, glob:, relglob:,\n"
      "rootglob:, rootfilesin:, re:, relre:, listfile:, listfile0:, include: and subinclude:,\n"
      "as PATTERN and in -I/-X. Fileset patterns (set:), patterns with --rev, copies with\n"
      "--rev (-C, -A), repositories with subrepositories, and the few cases hg itself would\n"
      "fail on are handed to stock `hg status` (found on PATH) with the same arguments.");
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
  setHelpDetails("status",
                 "Run inside a mount. The daemon answers for the whole working copy; the "
                 "output, exit code and options are hg status's.",
                 {"hgvfs status                 # what changed in the mount",
                  "hgvfs status -mard --rev tip # compared with tip",
                  "hgvfs status -T json src/    # for tools, below src/"});
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
  std::string mountPoint = innermostMountOf(cwd, "fuse.hgvfs");
  if (mountPoint.empty()) return fail("not inside an hgvfs mount (" + cwd + ")");
  std::string cwdRel = cwd == mountPoint ? "" : cwd.substr(mountPoint.size() + 1);
  if (cwdRel == ".hg" || cwdRel.rfind(".hg/", 0) == 0) cwdRel.clear();
  if (!args.template_.empty() && args.template_ != "json") {
    return fail("only -T json is supported (got '" + args.template_ + "')");
  }
  std::unique_ptr<match::Matcher> matcher;
  if (auto done = readPatterns(args, mountPoint, cwdRel, matcher)) return *done;
  Shown shown = whatToShow(args);
  // Copies against another revision follow each file's whole filelog
  // history in hg (copies.pathcopies); the daemon traces only the copy
  // records on one line of it, so hg answers.
  if (!args.rev.empty() && shown.copies) return runStockHg("copies with --rev");

  auto hgrc = Hgrc::read(mountPoint + "/.hg/hgrc");
  if (!hgrc.ok()) return fail(hgrc.error().message());
  std::string socket = hgrc->get("hgvfs", "socket").value_or("");
  if (socket.empty()) return fail("no daemon socket named in " + mountPoint + "/.hg/hgrc");
  control::StatusRequest request;
  // With only ignored files listed, hg still walks to the unknown ones, and
  // whether it meets any decides if it reads the ignore files (below).
  request.unknown = shown.show[4] || shown.show[5];
  request.ignored = shown.show[5];
  request.clean = shown.show[6];
  if (!args.rev.empty()) request.rev = args.rev;
  auto client = control::Client::connect(socket);
  if (!client.ok()) return fail(client.error().message());
  auto reply = client->status(request);
  if (!reply.ok()) return fail(reply.error().message());
  const control::StatusReply& answer = *reply;

  std::optional<PatternFilter> filter;
  std::vector<Bytes> lateWarnings;
  if (matcher && !matcher->always()) {
    filter.emplace(*matcher, mountPoint, answer);
    if (!filter->fallback().empty()) return runStockHg(filter->fallback());
    if (auto done = namedFileWarnings(shown, *filter, *client, lateWarnings)) return *done;
  }
  // hg reads the ignore files, printing their warnings, before its walk
  // stats the named paths when unknown files are listed; when ignored files
  // are, only once it meets an untracked path, after the walk's warnings.
  auto seesUntracked = [&] {
    for (int i : {4, 5}) {
      for (const auto& p : i == 4 ? answer.unknown : answer.ignored) {
        if (!filter || filter->shows(i, p)) return true;
      }
    }
    return false;
  };
  PatternFilter* f = filter ? &*filter : nullptr;
  if (shown.show[5]) {
    printBad(f, cwdRel);
    if (seesUntracked()) printWarnings(answer.warnings);
  } else {
    printWarnings(answer.warnings);
    printBad(f, cwdRel);
    printWarnings(lateWarnings);
  }
  // hg prints paths relative to the current directory when it was given
  // positional patterns (ui.relative-paths=legacy), whatever they match.
  std::string out = formatStatus(args, shown, answer, f, args.patterns.empty() ? "" : cwdRel);
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace hgvfs::cli
