// The .hgignore matcher (match/ignore.h) and PyRegex (match/py_regex.h)
// against stock hg.
//
// Nothing here is a hand-written expectation of what hg ignores: every
// answer is asked of the real hg, either through `hg status -i -u` on files
// created for the purpose, or through an oracle script that asks Mercurial's
// own dirstate (`_ignore`, `_dirignore`) and Python's `re` directly, so the
// randomized cases can check thousands of paths and patterns quickly.
//
// Tracked files: hg never reports a tracked file as ignored, whatever the
// patterns say; that rule belongs to the status engine, and
// TrackedFilesAreTheCallersBusiness pins that the matcher does not apply it.

#include "match/ignore.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "match/py_regex.h"
#include "tests/support/test_support.h"

namespace hgvfs::match {
namespace {

namespace fs = std::filesystem;
using test::hg;
using test::mercurialPython;
using test::readFile;
using test::run;
using test::TempDir;
using test::writeFile;

// Asks Mercurial and Python's re; inputs and outputs are hex so any byte
// survives the trip.
constexpr const char* kOracle = R"PY(
import sys, warnings
warnings.simplefilter('ignore')

def h(b):
    return b.hex()

def regex_mode(path):
    import re
    data = open(path, 'rb').read().split(b'\n')
    n = int(data[0])
    subjects = [bytes.fromhex(x.decode()) for x in data[1:1 + n]]
    out = []
    for line in data[1 + n:]:
        if not line:
            continue
        pat = bytes.fromhex(line.decode())
        try:
            r = re.compile(pat)
            out.append('OK ' + ''.join('1' if r.match(s) else '0' for s in subjects))
        except re.error as e:
            out.append('ERR ' + h(str(e).encode('latin-1')))
        except Exception as e:
            out.append('ERR ' + h((type(e).__name__ + ': ' + str(e)).encode('latin-1')))
    sys.stdout.write('\n'.join(out) + '\n')

def ignore_mode(root, path):
    from mercurial import ui as uimod, hg
    out = []
    rounds = []
    for line in open(path, 'rb').read().split(b'\n'):
        f = line.split(b' ')
        if f[0] == b'ROUND':
            rounds.append(([], []))
        elif f[0] == b'CFG':
            rounds[-1][0].append((bytes.fromhex(f[1].decode()), bytes.fromhex(f[2].decode())))
        elif f[0] == b'PATH':
            rounds[-1][1].append(bytes.fromhex(f[1].decode()) if len(f) > 1 else b'')
    for cfg, paths in rounds:
        out.append('ROUND')
        u = uimod.ui.load()
        for k, v in cfg:
            u.setconfig(b'ui', k, v)
        repo = hg.repository(u, root)
        repo.ui.pushbuffer(error=True)
        try:
            ds = repo.dirstate
            ign = ds._ignore
            pats = getattr(ign, '_pats', None)
            res = []
            for p in paths:
                res.append('R %d%d' % (ds._dirignore(p), ign(p)))
            out.append('PATS ' + ('-' if pats is None else h(pats)))
            out.extend(res)
        except BaseException as e:
            msg = getattr(e, 'message', None) or str(e).encode()
            out.append('ERR ' + h(msg if isinstance(msg, bytes) else msg.encode()))
        for w in repo.ui.popbuffer().split(b'\n'):
            if w:
                out.append('WARN ' + h(w))
    sys.stdout.write('\n'.join(out) + '\n')

if sys.argv[1] == 'regex':
    regex_mode(sys.argv[2])
else:
    ignore_mode(sys.argv[2].encode(), sys.argv[3])
)PY";

std::string hex(const std::string& bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::string unhex(const std::string& s) {
  std::string out;
  for (size_t i = 0; i + 1 < s.size(); i += 2) {
    out += static_cast<char>(std::stoi(s.substr(i, 2), nullptr, 16));
  }
  return out;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

void setHgEnvironment() {
  setenv("HGPLAIN", "1", 1);
  setenv("HGRCPATH", "", 1);
  setenv("HGENCODING", "utf-8", 1);
}

void makeFile(const std::string& root, const std::string& rel, const std::string& content = "x\n") {
  fs::path p = fs::path(root) / rel;
  fs::create_directories(p.parent_path());
  writeFile(p.string(), content);
}

// A fresh repository made by `hg init`.
class Repo {
 public:
  Repo() {
    setHgEnvironment();
    root_ = dir_.path() + "/repo";
    auto r = hg({"init", root_});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    root_ = fs::canonical(root_).string();  // hg's repo.root is realpath'd
  }
  const std::string& root() const { return root_; }
  std::string scratch() const { return dir_.path(); }

  // `hg status -i -u`: path -> 'I' or '?'.
  std::map<std::string, char> status(const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args{"status", "-i", "-u", "--print0"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = hg(args, root_);
    EXPECT_EQ(r.exitCode, 0) << r.err;
    std::map<std::string, char> out;
    size_t pos = 0;
    while (pos < r.out.size()) {
      size_t end = r.out.find('\0', pos);
      if (end == std::string::npos) end = r.out.size();
      std::string entry = r.out.substr(pos, end - pos);
      pos = end + 1;
      if (entry.size() > 2) out[entry.substr(2)] = entry[0];
    }
    return out;
  }

 private:
  TempDir dir_;
  std::string root_;
};

// One oracle round: ui config values and the paths to ask about.
struct OracleRound {
  std::vector<std::pair<std::string, std::string>> config;  // ui.<key> = value
  std::vector<std::string> paths;
};
struct OracleAnswer {
  bool error = false;
  std::string errorText;
  std::optional<std::string> pats;          // includematcher._pats
  std::vector<std::pair<bool, bool>> bits;  // (_dirignore, _ignore) per path
  std::set<std::string> warnings;
};

std::vector<OracleAnswer> askOracle(const std::string& root, const std::string& scratch,
                                    const std::vector<OracleRound>& rounds) {
  std::string script = scratch + "/oracle.py";
  writeFile(script, kOracle);
  std::string input;
  for (const auto& round : rounds) {
    input += "ROUND\n";
    for (const auto& [k, v] : round.config) input += "CFG " + hex(k) + " " + hex(v) + "\n";
    for (const auto& p : round.paths) input += "PATH " + hex(p) + "\n";
  }
  writeFile(scratch + "/oracle.in", input);
  setHgEnvironment();
  auto r = run({mercurialPython(), script, "ignore", root, scratch + "/oracle.in"});
  EXPECT_EQ(r.exitCode, 0) << r.err;
  std::vector<OracleAnswer> out;
  for (const auto& line : lines(r.out)) {
    if (line == "ROUND") {
      out.emplace_back();
    } else if (line.rfind("PATS ", 0) == 0) {
      std::string v = line.substr(5);
      if (v != "-") out.back().pats = unhex(v);
    } else if (line.rfind("R ", 0) == 0) {
      out.back().bits.emplace_back(line[2] == '1', line[3] == '1');
    } else if (line.rfind("ERR ", 0) == 0) {
      out.back().error = true;
      out.back().errorText = unhex(line.substr(4));
    } else if (line.rfind("WARN ", 0) == 0) {
      out.back().warnings.insert(unhex(line.substr(5)));
    }
  }
  EXPECT_EQ(out.size(), rounds.size()) << r.err;
  return out;
}

std::vector<std::string> uiValues(const OracleRound& round) {
  std::vector<std::string> v;
  for (const auto& [k, value] : round.config) v.push_back(value);
  return v;
}

// Every ancestor directory of every path, "" included.
std::vector<std::string> withAncestors(const std::vector<std::string>& paths) {
  std::set<std::string> all(paths.begin(), paths.end());
  for (const auto& p : paths) {
    all.insert("");
    for (size_t pos = p.find('/'); pos != std::string::npos; pos = p.find('/', pos + 1)) {
      all.insert(p.substr(0, pos));
    }
  }
  return {all.begin(), all.end()};
}

// Compares the matcher with the oracle's answers for one round; returns the
// number of mismatches (each one also reported).
int compareRound(const IgnoreMatcher& m, const OracleRound& round, const OracleAnswer& answer,
                 const std::string& context) {
  int bad = 0;
  if (answer.pats) {
    EXPECT_EQ(printable(m.hgRegex()), printable(*answer.pats)) << context;
  }
  IgnoreDirCache cache;
  for (size_t i = 0; i < round.paths.size() && i < answer.bits.size(); ++i) {
    const std::string& p = round.paths[i];
    auto [dirignore, ignore] = answer.bits[i];
    bool ours = m.ignored(p);
    if (ours != dirignore || m.matchesSelf(p) != ignore || m.ignored(p, cache) != dirignore ||
        m.directoryIgnored(p) != dirignore) {
      ++bad;
      ADD_FAILURE() << context << "\npath " << printable(p) << ": hg _dirignore=" << dirignore
                    << " _ignore=" << ignore << ", ours ignored=" << ours
                    << " matchesSelf=" << m.matchesSelf(p);
      if (bad > 5) break;
    }
  }
  return bad;
}

// ---------------------------------------------------------------------------
// A hand-made .hgignore that uses every syntax, against `hg status`.

TEST(IgnoreMatcher, EverySyntaxAgainstHgStatus) {
  Repo repo;
  const std::string& root = repo.root();
  writeFile(root + "/.hgignore",
            "# a comment\n"
            "syntax: regexp\n"
            "\\.orig$\n"
            "^build/\n"
            "(?i)readme\\.bak$\n"
            "foo\\#bar   # escaped hash, then a comment\n"
            "^dir with space/\n"
            "caf\xe9$\n"
            "\\\\\\\\#not a comment after two backslashes\n"
            "^ignoredir$\n"
            "a|^b_anchored\n"
            "syntax: glob\n"
            "*.o\n"
            "**/tmp/**\n"
            "logs/*.log\n"
            "{x,y}.dat\n"
            "[!a]z.txt\n"
            "?q.txt\n"
            "rootglob:top/*.c\n"
            "relglob:deep/*.h\n"
            "relre:^relre_\n"
            "re:^re_\n"
            "path:pathdir\n"
            "rootfilesin:rfdir\n"
            "include:extra/ignore-more\n"
            "subinclude:sub/.hgignore\n"
            "syntax: rootglob\n"
            "anchored/*.tmp\n"
            "syntax: bogus\n"
            "includes_glob_not_regexp\n");
  makeFile(root, "extra/ignore-more",
           "syntax: glob\n"
           "*.extra\n"
           "include:extra/nested\n");
  makeFile(root, "extra/nested", "^nested_only$\n");
  makeFile(root, "sub/.hgignore",
           "^local$\n"
           "syntax: glob\n"
           "*.sub\n");
  makeFile(root, "ui-ignore", "^ui_ignored\n");
  makeFile(root, "hgrc-ignore", "syntax: glob\nhgrc_ignored*\n");
  writeFile(root + "/.hg/hgrc", "[ui]\nignore.second = " + root + "/hgrc-ignore\n");

  const std::vector<std::string> files = {"a.orig",
                                          "x/b.orig",
                                          "a.orig.keep",
                                          "build/out",
                                          "sub/build/out",
                                          "buildx",
                                          "README.BAK",
                                          "docs/readme.bak",
                                          "readme.bak.not",
                                          "foo#bar",
                                          "x/foo#barbaz",
                                          "foobar",
                                          "dir with space/f",
                                          "dir with space2/f",
                                          "caf\xe9",
                                          "caf\xe9x",
                                          "\\\\",
                                          "ignoredir/x/keep.txt",
                                          "ignoredirx/k",
                                          "a",
                                          "xa",
                                          "b_anchored",
                                          "x/b_anchored",
                                          "bb",
                                          "a.o",
                                          "d/e/f.o",
                                          "o",
                                          "b.o/inside",
                                          "tmp/a",
                                          "x/tmp/y/z",
                                          "tmpx/a",
                                          "logs/a.log",
                                          "logs/sub/b.log",
                                          "x/logs/c.log",
                                          "x.dat",
                                          "y.dat",
                                          "z.dat",
                                          "q/x.dat",
                                          "az.txt",
                                          "bz.txt",
                                          "z.txt",
                                          "xq.txt",
                                          "q.txt",
                                          "top/a.c",
                                          "x/top/a.c",
                                          "deep/a.h",
                                          "x/deep/a.h",
                                          "relre_a",
                                          "x/relre_b",
                                          "re_a",
                                          "x/re_b",
                                          "path:pathdir",
                                          "pathdir/x",
                                          "rootfilesin:rfdir",
                                          "rfdir/x",
                                          "a.extra",
                                          "nested_only",
                                          "x/nested_only",
                                          "sub/local",
                                          "sub/x/local",
                                          "local",
                                          "a.sub",
                                          "sub/a.sub",
                                          "sub/d/b.sub",
                                          "anchored/a.tmp",
                                          "x/anchored/a.tmp",
                                          "keep.txt",
                                          ".hidden",
                                          "..dots",
                                          "e..f",
                                          "\xff\xfe.bin",
                                          "bin\x80"
                                          "ary/\xc3(",
                                          "ui_ignored.txt",
                                          "x/ui_ignored",
                                          "hgrc_ignored.txt",
                                          "includes_glob_not_regexp/x",
                                          "x/includes_glob_not_regexp"};
  for (const auto& f : files) makeFile(root, f);

  const std::string uiIgnore = root + "/ui-ignore";
  const std::string missing = root + "/no-such-ignore-file";
  auto status = repo.status(
      {"--config", "ui.ignore=" + uiIgnore, "--config", "ui.ignore.missing=" + missing});

  auto m = IgnoreMatcher::load(
      root, IgnoreMatcher::ignoreFiles(root, {root + "/hgrc-ignore", uiIgnore, missing}));
  ASSERT_TRUE(m.ok()) << m.error().message();

  int ignoredCount = 0;
  for (const auto& f : files) {
    auto it = status.find(f);
    ASSERT_NE(it, status.end()) << "hg status does not list " << printable(f);
    EXPECT_EQ(m->ignored(f), it->second == 'I') << printable(f) << " hg says " << it->second;
    ignoredCount += it->second == 'I';
  }
  // The fixture must exercise both answers, heavily.
  EXPECT_GT(ignoredCount, 40);
  EXPECT_GT(static_cast<int>(files.size()) - ignoredCount, 15);

  // Directories, the top-level regexp and warnings, through hg's dirstate.
  OracleRound round;
  round.config = {
      {"ignore.second", root + "/hgrc-ignore"}, {"ignore", uiIgnore}, {"ignore.missing", missing}};
  round.paths = withAncestors(files);
  auto answers = askOracle(root, repo.scratch(), {round});
  ASSERT_EQ(answers.size(), 1u);
  ASSERT_FALSE(answers[0].error) << answers[0].errorText;
  EXPECT_EQ(compareRound(*m, round, answers[0], "fixture"), 0);
  std::set<std::string> ours(m->warnings().begin(), m->warnings().end());
  EXPECT_EQ(ours, answers[0].warnings);
  EXPECT_TRUE(ours.count(root + "/.hgignore: ignoring invalid syntax 'bogus'")) << *ours.begin();
  EXPECT_TRUE(
      ours.count("skipping unreadable pattern file '" + missing + "': No such file or directory"));
}

// subinclude: paths relative to the subincluded file's directory, includes
// inside it relative to that directory, and hg's quirk that only the first
// subinclude of a directory counts.
TEST(IgnoreMatcher, SubincludesAgainstHgStatus) {
  Repo repo;
  const std::string& root = repo.root();
  writeFile(root + "/.hgignore",
            "subinclude:a/.hgignore\n"
            "subinclude:a/second-for-same-dir\n"
            "subinclude:b/c/rules\n");
  makeFile(root, "a/.hgignore",
           "^only_here$\n"
           "include:inc\n"
           "subinclude:deeper/.hgignore\n");
  makeFile(root, "a/inc", "syntax: rootglob\nrooted_in_a/*\n");
  makeFile(root, "a/deeper/.hgignore", "syntax: glob\n*.deep\n");
  makeFile(root, "a/second-for-same-dir", "never_applied\n");
  makeFile(root, "b/c/rules", "^x$\n");
  const std::vector<std::string> files = {"only_here",
                                          "a/only_here",
                                          "a/z/only_here",
                                          "a/rooted_in_a/f",
                                          "rooted_in_a/f",
                                          "a/q/rooted_in_a/f",
                                          "a/f.deep",
                                          "a/deeper/f.deep",
                                          "a/deeper/g/f.deep",
                                          "a/never_applied",
                                          "b/x",
                                          "b/c/x/y",
                                          "b/c/y/x",
                                          "b/c/xy",
                                          "x"};
  for (const auto& f : files) makeFile(root, f);
  auto status = repo.status();
  auto m = IgnoreMatcher::load(root, IgnoreMatcher::ignoreFiles(root, {}));
  ASSERT_TRUE(m.ok()) << m.error().message();
  for (const auto& f : files) {
    ASSERT_TRUE(status.count(f)) << f;
    EXPECT_EQ(m->ignored(f), status[f] == 'I') << f << " hg says " << status[f];
  }
  EXPECT_EQ(status["a/deeper/f.deep"], 'I');  // the fixture reaches the nested subinclude
  EXPECT_EQ(status["a/never_applied"], '?');  // and shows the first-wins quirk
}

TEST(IgnoreMatcher, InvalidRegexpNamesFileAndLine) {
  Repo repo;
  const std::string& root = repo.root();
  writeFile(root + "/.hgignore", "fine\n# comment\nsyntax: glob\n*.o\nre:bro(ken\n");
  makeFile(root, "f");
  auto r = hg({"status"}, root);
  EXPECT_EQ(r.exitCode, 255);
  EXPECT_NE(r.err.find("invalid pattern (relre): bro(ken"), std::string::npos) << r.err;

  auto m = IgnoreMatcher::load(root, IgnoreMatcher::ignoreFiles(root, {}));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(m.error().where, root + "/.hgignore:5");
  EXPECT_EQ(m.error().what,
            "invalid pattern (relre): bro(ken: missing ), unterminated subpattern at position 5");
}

// hg joins the patterns with '|' before compiling, so two halves of a group
// on separate lines are valid together; an invalid include is an error too.
TEST(IgnoreMatcher, JoinedPatternsAreOneRegexp) {
  Repo repo;
  const std::string& root = repo.root();
  writeFile(root + "/.hgignore", "a(\n)b\n");
  for (const auto& f : {"ab", "xab", "a", "b", "xb"}) makeFile(root, f);
  auto status = repo.status();
  auto m = IgnoreMatcher::load(root, IgnoreMatcher::ignoreFiles(root, {}));
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(m->hgRegex(), ".*a(|.*)b");
  for (const auto& [f, s] : status) EXPECT_EQ(m->ignored(f), s == 'I') << f;

  writeFile(root + "/.hgignore", "include:other\n");
  writeFile(root + "/other", "ok\n[z-a]\n");
  EXPECT_EQ(hg({"status"}, root).exitCode, 255);
  auto bad = IgnoreMatcher::load(root, IgnoreMatcher::ignoreFiles(root, {}));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().where, root + "/other:2");
}

// hg recurses until Python's stack overflows; the matcher says why it stops.
TEST(IgnoreMatcher, IncludeCycleIsAnError) {
  Repo repo;
  const std::string& root = repo.root();
  writeFile(root + "/.hgignore", "include:other\n");
  writeFile(root + "/other", "x\ninclude:.hgignore\n");
  EXPECT_NE(hg({"status"}, root).exitCode, 0);
  auto m = IgnoreMatcher::load(root, IgnoreMatcher::ignoreFiles(root, {}));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().kind, ErrorKind::kUnsupported) << m.error().message();
}

TEST(IgnoreMatcher, TrackedFilesAreTheCallersBusiness) {
  Repo repo;
  const std::string& root = repo.root();
  makeFile(root, "tracked.o");
  ASSERT_EQ(hg({"add", "tracked.o"}, root).exitCode, 0);
  ASSERT_EQ(hg({"commit", "-m", "c"}, root).exitCode, 0);
  writeFile(root + "/.hgignore", "syntax: glob\n*.o\n");
  makeFile(root, "untracked.o");
  auto status = repo.status();
  EXPECT_EQ(status.count("tracked.o"), 0u);  // hg: tracked files are never ignored
  EXPECT_EQ(status["untracked.o"], 'I');
  auto m = IgnoreMatcher::load(root, IgnoreMatcher::ignoreFiles(root, {}));
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->ignored("tracked.o"));  // the matcher only answers for untracked paths
  EXPECT_TRUE(m->ignored("untracked.o"));
}

TEST(IgnoreMatcher, NoIgnoreFileIgnoresNothing) {
  Repo repo;
  auto m = IgnoreMatcher::load(repo.root(), IgnoreMatcher::ignoreFiles(repo.root(), {}));
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->empty());
  EXPECT_FALSE(m->ignored("anything/at/all"));
  EXPECT_FALSE(m->directoryIgnored(""));
}

// ---------------------------------------------------------------------------
// Randomized: generated ignore files and paths, answered by hg's dirstate.

std::string pick(std::mt19937& rng, const std::vector<std::string>& v) {
  return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
}
int roll(std::mt19937& rng, int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); }

std::string randomPath(std::mt19937& rng) {
  static const std::vector<std::string> kComponents = {"a",  "b",   "ab", "ba",  "a.b", ".a",
                                                       "aa", "b.a", "A",  "a-b", "a b", "\xe9"};
  std::string p;
  int depth = 1 + roll(rng, 3);
  for (int i = 0; i < depth; ++i) p += (i ? "/" : "") + pick(rng, kComponents);
  return p;
}

// Mostly well-formed glob and regexp bodies over a small alphabet.
std::string randomBody(std::mt19937& rng) {
  static const std::vector<std::string> kAtoms = {
      "a",   "b", "a",  "b",   ".", "/",     "\\.",  "[ab]", "[^a]", "(a|b)", "(?:ab)", "\\b",
      "\\w", "*", "**", "**/", "?", "{a,b}", "[!a]", "-",    " ",    "\\*",   "$"};
  static const std::vector<std::string> kQuantifiers = {"", "", "", "*", "+", "?", "{1,2}", "*?"};
  std::string body = roll(rng, 4) == 0 ? "^" : "";
  if (roll(rng, 10) == 0) body = "(?i)" + body;
  int n = 1 + roll(rng, 4);
  for (int i = 0; i < n; ++i) {
    std::string atom = pick(rng, kAtoms);
    body += atom;
    if (atom.size() == 1 && std::isalpha(static_cast<unsigned char>(atom[0]))) {
      body += pick(rng, kQuantifiers);
    }
  }
  if (roll(rng, 6) == 0) body += "|" + pick(rng, kAtoms);
  return body;
}

// Any bytes from the metacharacters: mostly invalid, to compare errors.
std::string randomNoise(std::mt19937& rng) {
  static const std::string kChars = "ab.*+?^$|()[]{}\\/-,!:#";
  std::string s;
  int n = 1 + roll(rng, 6);
  for (int i = 0; i < n; ++i) s += kChars[static_cast<size_t>(roll(rng, kChars.size()))];
  return s;
}

std::string randomIgnoreFile(std::mt19937& rng, bool noise) {
  static const std::vector<std::string> kSyntax = {"syntax: glob", "syntax: regexp",
                                                   "syntax: rootglob", "syntax: re"};
  static const std::vector<std::string> kPrefixes = {
      "", "", "", "re:", "glob:", "rootglob:", "relglob:", "relre:", "regexp:"};
  std::string text;
  int n = 1 + roll(rng, 5);
  for (int i = 0; i < n; ++i) {
    if (roll(rng, 4) == 0) text += pick(rng, kSyntax) + "\n";
    text += pick(rng, kPrefixes) + (noise ? randomNoise(rng) : randomBody(rng));
    if (roll(rng, 8) == 0) text += "  # comment";
    text += "\n";
  }
  return text;
}

TEST(IgnoreMatcher, RandomizedAgainstHgDirstate) {
  auto started = std::chrono::steady_clock::now();
  Repo repo;
  const std::string& root = repo.root();
  std::mt19937 rng(20240611);
  constexpr int kRounds = 400;
  std::vector<OracleRound> rounds;
  for (int i = 0; i < kRounds; ++i) {
    std::string file = root + "/ignore-" + std::to_string(i);
    writeFile(file, randomIgnoreFile(rng, /*noise=*/i % 4 == 3));
    OracleRound round;
    round.config = {{"ignore", file}};
    std::vector<std::string> paths;
    for (int j = 0; j < 25; ++j) paths.push_back(randomPath(rng));
    round.paths = withAncestors(paths);
    rounds.push_back(std::move(round));
  }
  auto answers = askOracle(root, repo.scratch(), rounds);
  ASSERT_EQ(answers.size(), rounds.size());
  int errors = 0, mismatches = 0;
  for (size_t i = 0; i < rounds.size(); ++i) {
    std::string file = rounds[i].config[0].second;
    std::string context = "round " + std::to_string(i) + ", ignore file:\n" + readFile(file);
    auto m = IgnoreMatcher::load(root, IgnoreMatcher::ignoreFiles(root, uiValues(rounds[i])));
    if (answers[i].error) {
      ++errors;
      EXPECT_FALSE(m.ok()) << context << "hg: " << answers[i].errorText;
      continue;
    }
    if (!m.ok()) {
      ADD_FAILURE() << context << "ours: " << m.error().message();
      ++mismatches;
      continue;
    }
    mismatches += compareRound(*m, rounds[i], answers[i], context);
    if (mismatches > 20) break;
  }
  // Both outcomes must be exercised.
  EXPECT_GT(errors, kRounds / 10);
  EXPECT_LT(errors, kRounds * 3 / 5);
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_LT(secs, 30);
}

// A few generated ignore files against `hg status` on real files.
TEST(IgnoreMatcher, RandomizedAgainstHgStatus) {
  std::mt19937 rng(7);
  for (int round = 0; round < 4; ++round) {
    Repo repo;
    const std::string& root = repo.root();
    std::string text;
    do {
      text = randomIgnoreFile(rng, false);
      writeFile(root + "/.hgignore", text);
    } while (!IgnoreMatcher::load(root, IgnoreMatcher::ignoreFiles(root, {})).ok());
    std::set<std::string> files;
    for (int j = 0; j < 40; ++j) {
      std::string p = randomPath(rng);
      std::error_code ec;
      fs::path full = fs::path(root) / p;
      // Skip a path that needs an existing file as a directory or vice versa.
      bool clash = fs::exists(full, ec);
      for (fs::path d = full.parent_path(); !clash && d != fs::path(root); d = d.parent_path()) {
        clash = fs::exists(d, ec) && !fs::is_directory(d, ec);
      }
      if (clash) continue;
      makeFile(root, p);
      files.insert(p);
    }
    auto status = repo.status();
    auto m = IgnoreMatcher::load(root, IgnoreMatcher::ignoreFiles(root, {}));
    ASSERT_TRUE(m.ok());
    for (const auto& f : files) {
      ASSERT_TRUE(status.count(f)) << f;
      EXPECT_EQ(m->ignored(f), status[f] == 'I') << printable(f) << "\n.hgignore:\n" << text;
    }
  }
}

// ---------------------------------------------------------------------------
// PyRegex against Python's re, pattern by pattern.

std::string randomRegex(std::mt19937& rng) {
  static const std::vector<std::string> kTokens = {
      "a",      "b",      "A",      "a",      "b",          ".",           "^",    "$",    "*",
      "+",      "?",      "*?",     "+?",     "*+",         "{1,2}",       "{,2}", "{2}",  "{2,}",
      "{",      "}",      "{}",     "|",      "(",          ")",           "(?:",  "(?i)", "(?i:",
      "(?-i:",  "(?s:",   "(?m)",   "(?x)",   "(?x:",       "(?a)",        "(?L)", "(?u)", "(?t)",
      "(?P<n>", "(?P=n)", "(?P<m>", "(?P=m)", "(?=",        "(?!",         "(?<=", "(?<!", "(?>",
      "(?(1)",  "(?(n)",  "(?(2)",  "(?#c)",  "[",          "]",           "[^",   "[]",   "-",
      "\\",     "\\d",    "\\w",    "\\s",    "\\S",        "\\b",         "\\B",  "\\A",  "\\Z",
      "\\z",    "\\1",    "\\2",    "\\10",   "\\101",      "\\x41",       "\\x4", "\\0",  "\\07",
      "\\n",    "\\v",    "\\q",    "\\-",    "\\\xe9",     "[[:alpha:]]", "#",    " ",    "\n",
      "\xe9",   "_",      "a{3}",   "(a|bc)", "(?<=ab|cd)", "(?<=a|bc)",   ",",    "0",    "9"};
  std::string s;
  int n = 1 + roll(rng, 6);
  for (int i = 0; i < n; ++i) s += pick(rng, kTokens);
  return s;
}

// Mostly valid patterns: nested groups, lookarounds, backreferences, flags.
class RegexGrammar {
 public:
  explicit RegexGrammar(std::mt19937& rng) : rng_(rng) {}
  std::string pattern() {
    opened_ = 0;
    openRefs_.clear();
    closedRefs_.clear();
    static const std::vector<std::string> kLeading = {"",     "",     "",     "(?i)",
                                                      "(?m)", "(?s)", "(?x)", "(?ms)"};
    return pick(rng_, kLeading) + alternation(0);
  }

 private:
  std::string alternation(int depth, bool repeated = false) {
    std::string s = sequence(depth, repeated);
    while (roll(rng_, 5) == 0) s += "|" + sequence(depth, repeated);
    return s;
  }
  std::string sequence(int depth, bool repeated) {
    std::string s;
    int n = 1 + roll(rng_, 3);
    for (int i = 0; i < n; ++i) s += term(depth, repeated);
    return s;
  }
  // `repeated`: inside a quantified item. Conditionals and backreferences
  // are generated only outside those, on groups outside those (see the
  // PyRegex note in py_regex.h on captures inside repeats).
  std::string term(int depth, bool repeated) {
    static const std::vector<std::string> kAnchors = {"^", "$", "\\A", "\\Z", "\\b", "\\B"};
    // No possessive "*+" and no atomic "(?>": Python 3.11.2's are buggy (see py_regex.h).
    static const std::vector<std::string> kQuantifiers = {"*",  "+",  "?",  "{2}",  "{0,2}",
                                                          "*?", "+?", "??", "{1,}", "{,1}"};
    if (roll(rng_, 7) == 0) return pick(rng_, kAnchors);
    bool quantified = roll(rng_, 3) == 0;
    std::string a = atom(depth, repeated || quantified);
    if (quantified) a += pick(rng_, kQuantifiers);
    return a;
  }
  std::string fixedWidth() {
    static const std::vector<std::string> kFixed = {"a",    "b",   "ab",        "\\n", ".",
                                                    "[ab]", "a|b", "(?:ab|ba)", "\\w", "a{2}"};
    return pick(rng_, kFixed);
  }
  std::string atom(int depth, bool repeated) {
    static const std::vector<std::string> kLiterals = {"a",     "b",     "A",   "\\n", "\\-", "_",
                                                       "\\x61", "\\141", "\\t", " ",   "\xe9"};
    static const std::vector<std::string> kClasses = {"[ab]", "[^a]",   "[a-c]", "[\\n]", "[\\w-]",
                                                      "[]a]", "[^\\s]", "\\d",   "\\W",   "[A-a]"};
    int kind = depth >= 3 ? roll(rng_, 3) : roll(rng_, 11);
    switch (kind) {
      case 0:
      case 1:
        return pick(rng_, kLiterals);
      case 2:
        return roll(rng_, 2) ? "." : pick(rng_, kClasses);
      case 3: {
        int id = ++opened_;
        if (!repeated) openRefs_.push_back(id);
        std::string s = "(" + alternation(depth + 1, repeated) + ")";
        if (!repeated) closedRefs_.push_back(id);
        return s;
      }
      case 4:
        return "(?:" + alternation(depth + 1, repeated) + ")";
      case 5:
        return std::string(roll(rng_, 2) ? "(?=" : "(?!") + alternation(depth + 1, repeated) + ")";
      case 6:
        return std::string(roll(rng_, 2) ? "(?<=" : "(?<!") + fixedWidth() + ")";
      case 7: {
        static const std::vector<std::string> kFlags = {
            "(?i:", "(?-i:", "(?s:", "(?m:", "(?x:", "(?i-s:"};
        return pick(rng_, kFlags) + alternation(depth + 1, repeated) + ")";
      }
      case 8:
        if (closedRefs_.empty() || repeated) return "a";
        return "\\" + std::to_string(closedRefs_[roll(rng_, closedRefs_.size())]);
      case 9:
        if (openRefs_.empty() || repeated) return "b";
        return "(?(" + std::to_string(openRefs_[roll(rng_, openRefs_.size())]) + ")" +
               sequence(depth + 1, repeated) + "|" + sequence(depth + 1, repeated) + ")";
      default:
        return "(?:" + alternation(depth + 1, repeated) + ")";
    }
  }

  std::mt19937& rng_;
  int opened_ = 0;
  std::vector<int> openRefs_, closedRefs_;  // referenceable group numbers
};

TEST(PyRegex, RandomizedAgainstPythonRe) {
  std::mt19937 rng(99);
  std::vector<std::string> subjects = {"",     "a",  "b",   "A",   "ab",  "aa",  "ba",
                                       "abc",  "cd", "a\n", "\n",  "aab", "a b", "_",
                                       "\xe9", "AB", "aA",  "bcd", "0",   "a-b"};
  for (int i = 0; i < 20; ++i) {
    std::string s;
    int n = roll(rng, 6);
    for (int j = 0; j < n; ++j) s += "abAc\n _-"[roll(rng, 8)];
    subjects.push_back(s);
  }
  // Seeds for corners the generators reach rarely.
  std::vector<std::string> patterns = {
      "(?m)a\n^",       "(?m)\n^$",      "(?m)a$",      "a$",           "a\\Z",
      "a\n\\Z",         "\\B",           "^\\B",        "\\b",          "(?x)a b",
      "(?x)[ ]",        "(?x)a\\ b",     "(?x)a#c\nb",  "a{,2}b",       "x{70000}",
      "a{3,70000}",     "[[:alpha:]]",   "\\v",         "(?i)\xe9",     "(?i)[^a]",
      "(?P<n>a)(?P=n)", "(?<=(?P<n>a))", "(a)(?<=\\1)", "(?(1)a|b)(c)", "(a)|\\1",
      "(?<=a|bc)",      "(?<=(?:a|b)c)", "(?t)a*",      "(?=a)b?a",     "(?=a)(?:x|b?)a"};
  for (int i = 0; i < 3000; ++i) patterns.push_back(randomRegex(rng));
  RegexGrammar grammar(rng);
  for (int i = 0; i < 4000; ++i) patterns.push_back(grammar.pattern());

  TempDir dir;
  std::string input = std::to_string(subjects.size()) + "\n";
  for (const auto& s : subjects) input += hex(s) + "\n";
  for (const auto& p : patterns) input += hex(p) + "\n";
  writeFile(dir.path() + "/in", input);
  writeFile(dir.path() + "/oracle.py", kOracle);
  auto r = run({mercurialPython(), dir.path() + "/oracle.py", "regex", dir.path() + "/in"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  auto answers = lines(r.out);
  ASSERT_EQ(answers.size(), patterns.size());
  int ok = 0, bad = 0;
  for (size_t i = 0; i < patterns.size() && bad < 15; ++i) {
    auto re = PyRegex::compile(patterns[i]);
    std::string ours;
    if (re.ok()) {
      ours = "OK ";
      for (const auto& s : subjects) ours += re->match(s) ? '1' : '0';
      ++ok;
    } else {
      ours = "ERR " + hex(re.error().what);
    }
    if (ours != answers[i]) {
      ++bad;
      std::string theirs = answers[i];
      if (theirs.rfind("ERR ", 0) == 0) theirs = "ERR " + unhex(theirs.substr(4));
      if (ours.rfind("ERR ", 0) == 0) ours = "ERR " + re.error().what;
      ADD_FAILURE() << "pattern " << printable(patterns[i]) << "\n python: " << theirs
                    << "\n ours:   " << ours
                    << (re.ok() ? "\n pcre2:  " + printable(re->pcre2Pattern()) : "");
    }
  }
  EXPECT_EQ(bad, 0);
  EXPECT_GT(ok, 3000);  // enough valid patterns to compare matching, not only errors
}

}  // namespace
}  // namespace hgvfs::match
