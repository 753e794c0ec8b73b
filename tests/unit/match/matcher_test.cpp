// Matchers (match/matcher.h) against Mercurial's own match.match().
//
// Every expectation comes from hg: an oracle script builds hg's matcher for
// the same patterns, -I and -X in the same directory and answers the three
// questions a status walk asks (matchfn, files(), visitchildrenset()), or
// says how hg refused the patterns. Hand-picked cases pin each pattern kind;
// generated ones cover their combinations.

#include "match/matcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "match/patterns.h"
#include "tests/support/test_support.h"

namespace hgvfs::match {
namespace {

namespace fs = std::filesystem;
using test::mercurialPython;
using test::run;
using test::TempDir;
using test::writeFile;

constexpr const char* kOracle = R"PY(
import sys, warnings
warnings.simplefilter('ignore')
from mercurial import match as matchmod, error

def h(b):
    return b.hex()

root = None
rounds = []
for line in open(sys.argv[1], 'rb').read().split(b'\n'):
    if not line:
        continue
    f = line.split(b' ')
    tag, val = f[0], bytes.fromhex(f[1].decode()) if len(f) > 1 else b''
    if tag == b'ROOT':
        root = val
    elif tag == b'ROUND':
        rounds.append({b'CWD': b'', b'DEFAULT': b'relpath', b'PAT': [], b'INC': [],
                       b'EXC': [], b'PATH': [], b'DIR': []})
    elif tag in (b'CWD', b'DEFAULT'):
        rounds[-1][tag] = val
    else:
        rounds[-1][tag].append(val)

out = []
for r in rounds:
    out.append('ROUND')
    try:
        m = matchmod.match(root, r[b'CWD'], r[b'PAT'], r[b'INC'], r[b'EXC'], r[b'DEFAULT'])
        bits = ''.join('1' if m(p) else '0' for p in r[b'PATH'])
        visits = []
        for d in r[b'DIR']:
            v = m.visitchildrenset(d)
            if v == b'all':
                visits.append('A')
            elif v == b'this':
                visits.append('T')
            else:
                visits.append('S' + ','.join(sorted(h(x) for x in v)))
        files = m.files()
    except error.Abort as e:
        msg = e.message + (b'\n(' + e.hint + b')' if e.hint else b'')
        out.append('ERR ' + h(msg))
        continue
    except Exception as e:
        out.append('CRASH ' + h(repr(e).encode()))
        continue
    out.append('FILES ' + ','.join(h(f) for f in files))
    out.append('M ' + bits)
    out.extend('V ' + v for v in visits)
sys.stdout.write('\n'.join(out) + '\n')
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

struct Round {
  std::string cwd;
  Kind dflt = Kind::kRelpath;
  std::vector<std::string> patterns, include, exclude;
  std::vector<std::string> paths, dirs;
};

struct Answer {
  bool refused = false, crashed = false;
  std::string message;
  std::string files;  // hex, comma-separated, hg's order
  std::string bits;
  std::vector<std::string> visits;
};

// A working copy for canonpath's checks: directories, a symlink and a
// nested repository.
class Fixture {
 public:
  Fixture() {
    root_ = fs::canonical(dir_.path()).string() + "/wc";
    for (const char* d : {"a/b", "b", "nest/.hg", "c d"}) fs::create_directories(root_ + "/" + d);
    fs::create_symlink("a", root_ + "/lnk");
    writeFile(root_ + "/list", "a/b\n\nglob:*.c\r\nre:^b/\npath:c d\n");
    static constexpr char kList0[] = "rootfilesin:a\0relglob:x*\0";
    writeFile(root_ + "/list0", std::string(kList0, sizeof kList0 - 1));
    writeFile(root_ + "/rules",
              "syntax: glob\n*.c\nrootglob:a/*\nre:^A\nrelre:b$\nsyntax: bogus\ninclude:rules2\n");
    writeFile(root_ + "/rules2", "path:b\n");
  }
  const std::string& root() const { return root_; }

  std::vector<Answer> ask(const std::vector<Round>& rounds) const {
    std::string input = "ROOT " + hex(root_) + "\n";
    for (const Round& r : rounds) {
      input += "ROUND\nCWD " + hex(r.cwd) + "\nDEFAULT " + hex(kindName(r.dflt)) + "\n";
      for (const auto& p : r.patterns) input += "PAT " + hex(p) + "\n";
      for (const auto& p : r.include) input += "INC " + hex(p) + "\n";
      for (const auto& p : r.exclude) input += "EXC " + hex(p) + "\n";
      for (const auto& p : r.paths) input += "PATH " + hex(p) + "\n";
      for (const auto& d : r.dirs) input += "DIR " + hex(d) + "\n";
    }
    writeFile(dir_.path() + "/in", input);
    writeFile(dir_.path() + "/oracle.py", kOracle);
    setenv("HGPLAIN", "1", 1);
    setenv("HGRCPATH", "", 1);
    auto r = run({mercurialPython(), dir_.path() + "/oracle.py", dir_.path() + "/in"}, root_);
    EXPECT_EQ(r.exitCode, 0) << r.err;
    std::vector<Answer> out;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
      std::string tag = line.substr(0, line.find(' '));
      std::string rest = line.size() > tag.size() ? line.substr(tag.size() + 1) : "";
      if (tag == "ROUND") {
        out.emplace_back();
      } else if (tag == "ERR") {
        out.back().refused = true;
        out.back().message = unhex(rest);
      } else if (tag == "CRASH") {
        out.back().crashed = true;
        out.back().message = unhex(rest);
      } else if (tag == "FILES") {
        out.back().files = rest;
      } else if (tag == "M") {
        out.back().bits = rest;
      } else if (tag == "V") {
        out.back().visits.push_back(rest);
      }
    }
    EXPECT_EQ(out.size(), rounds.size()) << r.err;
    return out;
  }

 private:
  TempDir dir_;
  std::string root_;
};

std::string describe(const Round& r) {
  std::string s = "cwd '" + r.cwd + "' default " + kindName(r.dflt) + "; patterns:";
  for (const auto& p : r.patterns) s += " [" + printable(p) + "]";
  s += "; -I:";
  for (const auto& p : r.include) s += " [" + printable(p) + "]";
  s += "; -X:";
  for (const auto& p : r.exclude) s += " [" + printable(p) + "]";
  return s;
}

std::string visitText(const VisitChildren& v) {
  if (v.kind == VisitChildren::Kind::kAll) return "A";
  if (v.kind == VisitChildren::Kind::kThis) return "T";
  std::string s = "S";
  for (const auto& n : v.names) s += (s.size() > 1 ? "," : "") + hex(n);
  return s;
}

// Compares one round; returns the number of differences (each reported).
int compare(const Fixture& fx, const Round& r, const Answer& hg) {
  MatchOptions options;
  options.root = fx.root();
  options.cwd = r.cwd;
  auto m = buildMatcher(options, r.patterns, r.include, r.exclude, r.dflt);
  std::string context = describe(r);
  if (hg.refused || hg.crashed) {
    if (m.ok()) {
      ADD_FAILURE() << context << "\nhg: " << (hg.crashed ? "crashed: " : "abort: ") << hg.message
                    << "\nours: built a matcher";
      return 1;
    }
    if (hg.refused) {
      EXPECT_EQ(m.error().kind, ErrorKind::kInvalidArgument) << context << "\n" << m.error().what;
      EXPECT_EQ(m.error().what, hg.message) << context;
      return m.error().what == hg.message ? 0 : 1;
    }
    EXPECT_EQ(m.error().kind, ErrorKind::kUnsupported) << context << "\n" << hg.message;
    return m.error().kind == ErrorKind::kUnsupported ? 0 : 1;
  }
  if (!m.ok()) {
    ADD_FAILURE() << context << "\nhg built a matcher; ours: " << m.error().message();
    return 1;
  }
  int bad = 0;
  std::string files;
  std::vector<std::string> named = (*m)->files();
  for (size_t i = 0; i < named.size(); ++i) files += (i ? "," : "") + hex(named[i]);
  if (files != hg.files) {
    ++bad;
    ADD_FAILURE() << context << "\nfiles() hg " << hg.files << " ours " << files;
  }
  for (size_t i = 0; i < r.paths.size() && i < hg.bits.size(); ++i) {
    bool ours = (*m)->matches(r.paths[i]);
    if (ours != (hg.bits[i] == '1')) {
      ++bad;
      ADD_FAILURE() << context << "\npath " << printable(r.paths[i]) << ": hg " << hg.bits[i]
                    << " ours " << ours;
    }
  }
  for (size_t i = 0; i < r.dirs.size() && i < hg.visits.size(); ++i) {
    std::string ours = visitText((*m)->visitChildrenSet(r.dirs[i]));
    if (ours != hg.visits[i]) {
      ++bad;
      ADD_FAILURE() << context << "\nvisitchildrenset('" << printable(r.dirs[i]) << "'): hg "
                    << hg.visits[i] << " ours " << ours;
    }
  }
  return bad;
}

const std::vector<std::string> kPaths = {
    "a",      "b",      "a/b",   "a/b/c",  "a/x.c",   "x.c",     "b/x.c", "ab", "A",
    "A/b",    "a/A",    "c d",   "c d/e",  "lnk",     "lnk/b",   "a.c",   "ba", "b/a",
    "a/b/cd", "xa/x.c", "dir/a", "a/b\nc", "caf\xe9", "a/.hg/x", "nest/x"};

std::vector<std::string> dirsOf(const std::vector<std::string>& paths) {
  std::set<std::string> dirs{""};
  for (const auto& p : paths) {
    for (size_t pos = p.find('/'); pos != std::string::npos; pos = p.find('/', pos + 1)) {
      dirs.insert(p.substr(0, pos));
    }
  }
  dirs.insert({"a", "b", "c d", "zz", "a/b/c"});
  return {dirs.begin(), dirs.end()};
}

// listfile: names a file relative to the process's directory, as in hg:
// both sides run in the working copy's root.
class InDirectory {
 public:
  explicit InDirectory(const std::string& dir) : saved_(fs::current_path()) {
    fs::current_path(dir);
  }
  ~InDirectory() { fs::current_path(saved_); }

 private:
  fs::path saved_;
};

// Compares every round with hg; returns hg's answers (to check that the
// rounds exercise what they mean to).
std::vector<Answer> runRounds(const Fixture& fx, std::vector<Round> rounds) {
  for (Round& r : rounds) {
    if (r.paths.empty()) r.paths = kPaths;
    if (r.dirs.empty()) r.dirs = dirsOf(r.paths);
  }
  auto answers = fx.ask(rounds);
  EXPECT_EQ(answers.size(), rounds.size());
  InDirectory in(fx.root());
  int bad = 0;
  for (size_t i = 0; i < rounds.size() && i < answers.size() && bad < 20; ++i) {
    bad += compare(fx, rounds[i], answers[i]);
  }
  EXPECT_EQ(bad, 0);
  return answers;
}

std::vector<Answer> runRounds(std::vector<Round> rounds) {
  Fixture fx;
  return runRounds(fx, std::move(rounds));
}

int count(const std::vector<Answer>& answers, bool Answer::*flag) {
  return static_cast<int>(
      std::count_if(answers.begin(), answers.end(), [&](const Answer& a) { return a.*flag; }));
}

Round patterns(std::vector<std::string> p, std::string cwd = "") {
  Round r;
  r.patterns = std::move(p);
  r.cwd = std::move(cwd);
  return r;
}

TEST(Matcher, EveryKindAsHgBuildsIt) {
  std::vector<Round> rounds = {
      patterns({"a"}),
      patterns({"a", "x.c"}),
      patterns({"re:(?i)A/B"}),
      patterns({"re:a/.*"}),
      patterns({"re:.*\\.c$"}),
      patterns({"relre:(?i)X\\.C$"}),
      patterns({"relre:^a"}),
      patterns({"relre:b$"}),
      patterns({"glob:*.c"}),
      patterns({"glob:**.c"}),
      patterns({"glob:a/**"}),
      patterns({"glob:**/c"}),
      patterns({"glob:{a,b}/x.c"}),
      patterns({"glob:a/[!x]*"}),
      patterns({"glob:[ab]"}),
      patterns({"glob:a\\*"}),
      patterns({"glob:*"}, "a"),
      patterns({"glob:../b"}, "a"),
      patterns({"relglob:x.c"}),
      patterns({"relglob:*.c"}),
      patterns({"relglob:b/*"}),
      patterns({"rootglob:*.c"}),
      patterns({"rootglob:a/*"}, "a/b"),
      patterns({"path:a"}),
      patterns({"path:a/b"}),
      patterns({"path:."}),
      patterns({"path:"}),
      patterns({"relpath:b"}, "a"),
      patterns({"b"}, "a"),
      patterns({"."}, "a"),
      patterns({"."}),
      patterns({""}),
      patterns({"rootfilesin:a"}),
      patterns({"rootfilesin:."}),
      patterns({"rootfilesin:a", "rootfilesin:b"}),
      patterns({"rootfilesin:a", "glob:b/*"}),
      patterns({"listfile:list"}),
      patterns({"listfile0:list0"}),
      patterns({"listfile:list"}, "a"),
      patterns({"include:rules"}),
      patterns({"include:rules"}, "a"),
      patterns({"path:lnk/b"}),
      patterns({"c d"}),
      patterns({"glob:c d/*"}),
      patterns({"caf\xe9"}),
  };
  runRounds(rounds);
}

TEST(Matcher, IncludeAndExclude) {
  std::vector<Round> rounds;
  auto add = [&](std::vector<std::string> p, std::vector<std::string> i, std::vector<std::string> x,
                 std::string cwd = "") {
    Round r = patterns(std::move(p), std::move(cwd));
    r.include = std::move(i);
    r.exclude = std::move(x);
    rounds.push_back(std::move(r));
  };
  add({}, {"a"}, {});
  add({}, {"path:a/b"}, {});
  add({}, {"glob:a/*.c"}, {});
  add({}, {"rootfilesin:a"}, {});
  add({}, {"rootfilesin:a/b"}, {});
  add({}, {"re:.*c"}, {});
  add({}, {"*.c"}, {}, "a");
  add({}, {}, {"a"});
  add({}, {}, {"path:a"});
  add({}, {}, {"re:.*\\.c$"});
  add({}, {"path:a"}, {"re:.*c$"});
  add({}, {"path:a", "path:b"}, {"rootfilesin:a"});
  add({"a"}, {"glob:**.c"}, {});
  add({"re:a"}, {"path:a/b"}, {"glob:a/b/c"});
  add({"rootfilesin:a"}, {"rootfilesin:a/b"}, {});
  add({"path:a"}, {"path:a/b"}, {"path:a/b/c"});
  add({}, {"listfile:list"}, {"include:rules"});
  add({}, {"include:rules"}, {});
  add({}, {"listfile:/dev/null"}, {});
  add({"listfile:/dev/null"}, {}, {});
  runRounds(rounds);
}

TEST(Matcher, RefusalsWordForWord) {
  auto answers = runRounds({
      patterns({"re:("}),
      patterns({"relre:a)"}),
      patterns({"glob:[z-a]"}),
      patterns({"re:a", "re:b("}),
      patterns({"re:(?P<n>a)", "re:(?P<n>b)"}),  // each is valid; joined they are not
      patterns({"re:" + std::string(20001, 'x')}),
      patterns({"../x"}),
      patterns({"glob:.."}),
      patterns({"/elsewhere"}),
      patterns({".hg/x"}),
      patterns({"a/.hg/x"}),
      patterns({"lnk/b"}),
      patterns({"nest/x"}),
      patterns({"glob:nest/*"}),
      patterns({"listfile:no-such-list"}),
      patterns({"include:no-such-rules"}),
      patterns({"set:added()"}),
      patterns({"a"}, "a/b"),
  });
  EXPECT_EQ(count(answers, &Answer::refused), 15);
  EXPECT_EQ(count(answers, &Answer::crashed), 1);  // set: without a context
  Fixture fx;
  // Hints and include prefixes are part of the message.
  // (A line starting "include" without a colon keeps its text, and so
  // falls to the default kind: here relpath, which must stay in the root.)
  writeFile(fx.root() + "/bad-rules", "syntax: glob\nincludes/../../x\n");
  Round r = patterns({"include:bad-rules"});
  r.paths = {"a"};
  r.dirs = {""};
  // Outside the root from a/b, inside from the root: hg hints at --cwd.
  fs::path top = fs::path(fx.root()).parent_path();
  Round hint = patterns({"../../../" + top.parent_path().filename().string() + "/" +
                         top.filename().string() + "/wc/x"},
                        "a/b");
  hint.paths = {"x"};
  hint.dirs = {""};
  auto messages = runRounds(fx, {r, hint});
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].message.rfind("bad-rules: includes/../../x not under root '", 0), 0u)
      << messages[0].message;
  EXPECT_NE(messages[1].message.find("\n(consider using '--cwd ../..')"), std::string::npos)
      << messages[1].message;
}

std::string pick(std::mt19937& rng, const std::vector<std::string>& v) {
  return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
}
int roll(std::mt19937& rng, int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); }

std::string randomPattern(std::mt19937& rng) {
  static const std::vector<std::string> kPathKinds = {
      "", "glob:", "path:", "relglob:", "relpath:", "rootglob:", "glob:", "rootfilesin:", ""};
  static const std::vector<std::string> kGlobAtoms = {"a", "b",    "ab",   "*",     "**",
                                                      "?", "[ab]", "[!a]", "{a,b}", "{a,b/c}",
                                                      ".", "..",   "x.c",  "A",     "c"};
  static const std::vector<std::string> kReAtoms = {"a",  "b",      ".*",   "^",   "$",  "(?i)",
                                                    "/",  "[ab]",   "a|b",  "\\.", "c",  "(?:a/)?",
                                                    "x*", "(a)\\1", "[^/]", "\\b", "A+", "{1,2}"};
  int r = roll(rng, 10);
  if (r < 3) {
    std::string body;
    int n = 1 + roll(rng, 4);
    for (int i = 0; i < n; ++i) body += pick(rng, kReAtoms);
    return (roll(rng, 2) ? "re:" : "relre:") + body;
  }
  if (r == 3) return pick(rng, {"listfile:list", "listfile0:list0", "include:rules"});
  std::string body;
  int n = 1 + roll(rng, 3);
  for (int i = 0; i < n; ++i) body += (i ? "/" : "") + pick(rng, kGlobAtoms);
  if (roll(rng, 8) == 0) body += "/";
  return pick(rng, kPathKinds) + body;
}

TEST(Matcher, RandomizedAgainstHg) {
  std::mt19937 rng(4242);
  std::vector<Round> rounds;
  static const std::vector<std::string> kCwds = {"", "", "a", "a/b", "b"};
  for (int i = 0; i < 600; ++i) {
    Round r;
    r.cwd = pick(rng, kCwds);
    r.dflt = roll(rng, 4) ? Kind::kRelpath : Kind::kGlob;
    int np = roll(rng, 3), ni = roll(rng, 3) ? 0 : 1 + roll(rng, 2), nx = roll(rng, 3) ? 0 : 1;
    for (int j = 0; j < np; ++j) r.patterns.push_back(randomPattern(rng));
    for (int j = 0; j < ni; ++j) r.include.push_back(randomPattern(rng));
    for (int j = 0; j < nx; ++j) r.exclude.push_back(randomPattern(rng));
    rounds.push_back(std::move(r));
  }
  auto answers = runRounds(std::move(rounds));
  // Both outcomes, often.
  int refused = count(answers, &Answer::refused);
  EXPECT_GT(refused, 60);
  EXPECT_LT(refused, 300);
}

}  // namespace
}  // namespace hgvfs::match
