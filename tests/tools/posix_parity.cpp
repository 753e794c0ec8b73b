// posix_parity: runs the same system calls in two directories, DIR_A (an hgvfs
// mount) and DIR_B (a plain directory on a local disk file system), and
// reports every place where they behave differently: return values, errno,
// bytes read back, and afterwards the two resulting trees.
//
//   posix_parity DIR_A DIR_B [--seed N] [--steps N] [--scenario NAME...]
//   posix_parity --self-test DIR_A DIR_B     (two plain directories)
//   posix_parity --list
//
// Exit status: 0 no mismatch, 1 mismatches (or a failed self-test), 2 usage
// or setup error.
//
// Each scenario runs in a fresh DIR_A/<scenario> and DIR_B/<scenario>, removed
// again when the scenario passes and kept for inspection when it does not. A
// step runs one operation on A, then the same operation on B, and compares
// their Outcomes. B is the reference, so most steps also state what Linux
// answers on a local file system; a reference that answers otherwise is
// reported as HARNESS (a bug in the scenario, or DIR_B on an unusual file
// system) and fails the run too.
//
// Trees are compared by names, kinds, permission bits, sizes, contents,
// symlink targets, device numbers and (for non-directories) link counts. Inode
// numbers and atimes never; mtime and ctime only inside the steps that check
// them, as "changed or not" relations or as exact explicitly set values.
//
// Allowed, documented differences (printed as NOTE, not failures): A may
// refuse device nodes (mknod S_IFCHR/S_IFBLK) and hard links with EPERM, and
// may lack user.* extended attributes provided it answers EOPNOTSUPP to every
// xattr call.
//
// Threads: single-threaded except inside the race steps, which join their
// threads before returning; fork()ed children leave with _exit.
//
// This file is the driver (arguments, --list, --self-test). The steps and
// their reports are in parity_harness.h, the operations the scenarios share
// in parity_ops.h, the scenarios in parity_scenarios*.cpp; the trees are
// compared by tests/support/tree_snapshot.h.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "tests/tools/parity_harness.h"
#include "tests/tools/parity_scenarios.h"

namespace hgvfs::parity {
namespace {

// Runs scenarios with B perturbed on purpose; each perturbation must be
// reported, and the unperturbed baseline must be clean.
int selfTest(const std::string& rootA, const std::string& rootB, const Options& opt) {
  struct Case {
    const char* what;
    const char* scenario;
    Perturbation perturb;
    bool mustFail;
  };
  auto writeInto = [](const std::string& path, const char* data) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      [[maybe_unused]] bool ok = writeAll(fd, data);
      ::close(fd);
    }
  };
  std::vector<Case> cases;
  cases.push_back({"baseline, unperturbed", "open-flags", {}, false});
  cases.push_back({"baseline, unperturbed", "random", {}, false});
  Perturbation extra;
  extra.beforeTreeCompare = [=](const std::string& dir) { writeInto(dir + "/stray", "x"); };
  cases.push_back({"an extra file in B", "open-flags", extra, true});
  Perturbation content;
  content.beforeTreeCompare = [=](const std::string& dir) { writeInto(dir + "/f2", "!"); };
  cases.push_back({"one byte more in a file of B", "rename", content, true});
  Perturbation mode;
  mode.beforeTreeCompare = [](const std::string& dir) { ::chmod((dir + "/m").c_str(), 0640); };
  cases.push_back({"a mode changed in B", "metadata", mode, true});
  Perturbation link;
  link.beforeTreeCompare = [](const std::string& dir) {
    ::unlink((dir + "/abs").c_str());
    ::symlink("/elsewhere", (dir + "/abs").c_str());
  };
  cases.push_back({"a symlink target changed in B", "symlinks", link, true});
  Perturbation result;
  result.corruptStep = 5;
  cases.push_back({"B's result of step 5 altered", "unlink-rmdir", result, true});
  Perturbation diverge;
  diverge.hookStep = 150;
  diverge.hookB = [](Side& b) {
    std::string d1 = b.p(kRandomRoot + "d1");
    if (::mkdir(d1.c_str(), 0755) != 0) ::rename(d1.c_str(), b.p("moved").c_str());
  };
  cases.push_back({"B's tree changed behind its back at random step 150", "random", diverge, true});

  Options small = opt;
  small.steps = std::min(opt.steps, 500);
  int bad = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    std::string subA = fmt("%s/self-test-%zu", rootA.c_str(), i);
    std::string subB = fmt("%s/self-test-%zu", rootB.c_str(), i);
    removeTree(subA);
    removeTree(subB);
    ::mkdir(subA.c_str(), 0755);
    ::mkdir(subB.c_str(), 0755);
    Totals totals;
    totals.tag = "    | ";
    std::printf("self-test %zu: %s (%s), expecting %s\n", i, c.what, c.scenario,
                c.mustFail ? "mismatches" : "none");
    std::fflush(stdout);
    int failures = runScenario(*findScenario(c.scenario), subA, subB, small, totals, c.perturb);
    bool good = c.mustFail ? failures > 0 : failures == 0;
    std::printf("self-test %zu: %s\n", i, good ? "PASS" : "FAIL");
    bad += !good;
  }
  std::printf("self-test: %s (%d of %zu cases wrong)\n", bad ? "FAILED" : "passed", bad,
              cases.size());
  return bad ? 1 : 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: posix_parity DIR_A DIR_B [--seed N] [--steps N] [--scenario NAME...]\n"
               "       posix_parity --self-test DIR_A DIR_B\n"
               "       posix_parity --list\n");
  return 2;
}

std::optional<uint64_t> parseNumber(const char* s) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 0);
  if (errno || !end || *end || end == s) return std::nullopt;
  return v;
}

}  // namespace
}  // namespace hgvfs::parity

int main(int argc, char** argv) {
  using namespace hgvfs::parity;
  Options opt;
  std::vector<std::string> roots, names;
  bool selfTestMode = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--list") {
      for (const auto& def : allScenarios()) std::printf("%-14s %s\n", def.name, def.summary);
      return 0;
    } else if (arg == "--self-test") {
      selfTestMode = true;
    } else if (arg == "--seed" || arg == "--steps") {
      auto v = i + 1 < argc ? parseNumber(argv[++i]) : std::nullopt;
      if (!v || (arg == "--steps" && *v > 10000000)) return usage();
      if (arg == "--seed")
        opt.seed = *v;
      else
        opt.steps = static_cast<int>(*v);
    } else if (arg == "--scenario") {
      while (i + 1 < argc && argv[i + 1][0] != '-') names.push_back(argv[++i]);
    } else if (!arg.empty() && arg[0] == '-') {
      return usage();
    } else {
      roots.push_back(arg);
    }
  }
  if (roots.size() != 2) return usage();
  char* ra = ::realpath(roots[0].c_str(), nullptr);
  char* rb = ::realpath(roots[1].c_str(), nullptr);
  if (!ra || !rb) {
    std::fprintf(stderr, "posix_parity: %s: %s\n", (!ra ? roots[0] : roots[1]).c_str(),
                 std::strerror(errno));
    return 2;
  }
  std::string rootA = ra, rootB = rb;
  std::free(ra);
  std::free(rb);
  if (rootA == rootB || rootA.rfind(rootB + "/", 0) == 0 || rootB.rfind(rootA + "/", 0) == 0) {
    std::fprintf(stderr, "posix_parity: DIR_A and DIR_B must be distinct, not nested\n");
    return 2;
  }
  ::umask(022);
  ::signal(SIGPIPE, SIG_IGN);
  if (selfTestMode) return selfTest(rootA, rootB, opt);

  std::vector<const ScenarioDef*> chosen;
  for (const auto& name : names) {
    const ScenarioDef* def = findScenario(name);
    if (!def) {
      std::fprintf(stderr, "posix_parity: no scenario '%s' (see --list)\n", name.c_str());
      return 2;
    }
    chosen.push_back(def);
  }
  if (chosen.empty())
    for (const auto& def : allScenarios()) chosen.push_back(&def);

  std::printf("posix_parity: A=%s B=%s seed=%llu steps=%d\n", rootA.c_str(), rootB.c_str(),
              static_cast<unsigned long long>(opt.seed), opt.steps);
  Totals totals;
  int failedScenarios = 0;
  for (const ScenarioDef* def : chosen) {
    int f = runScenario(*def, rootA, rootB, opt, totals);
    if (f < 0) return 2;
    failedScenarios += f > 0;
  }
  std::printf("posix_parity: %s: %d mismatches in %d of %zu scenarios, %d notes\n",
              totals.failures ? "FAILED" : "passed", totals.failures, failedScenarios,
              chosen.size(), totals.notes);
  return totals.failures ? 1 : 0;
}