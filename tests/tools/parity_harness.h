#pragma once
// The harness of posix_parity (posix_parity.cpp): a step runs one operation
// (an Op) in directory A (the hgvfs mount) and then in directory B (a plain
// directory on a local disk), and compares their Outcomes; afterwards the
// two trees are compared (tests/support/tree_snapshot.h). B is the
// reference: a step may also state what Linux answers on a local file
// system (an Expect), checked against B only, and a B that answers
// otherwise is reported as HARNESS.
//
// A Scenario owns the step counter and the reporting of one scenario; the
// two Sides hold the descriptors and mappings its steps opened, and are
// owned by runScenario. Everything prints to stdout as it goes.
//
// Threads: one thread drives a Scenario; Op bodies may start threads or
// fork, but join or reap them before they return.

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/tree_snapshot.h"

namespace hgvfs::parity {

using test::errnoSymbol;
using test::escapeBytes;
using test::kindName;
using test::quoteBytes;

// ---------------------------------------------------------------------------
// Formatting

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));

// "O_WRONLY|O_CREAT|O_TRUNC".
std::string flagsName(int flags);

// What a stat reports that must agree: kind, permission bits, and for
// non-directories size and link count (directory sizes and link counts are
// file-system specific), and device numbers.
std::string statInfo(const struct stat& st);

// "seconds.nanoseconds".
std::string timeText(const struct timespec& t);

void sleepMs(int ms);

// ---------------------------------------------------------------------------
// Outcomes, sides, operations

// The result of one operation in one directory. Results that differ between
// directories by nature (descriptor numbers, addresses) are normalised to 0.
struct Outcome {
  long rc = 0;
  int err = 0;       // errno when rc == -1
  std::string info;  // what the operation observed: bytes read, stat fields
  bool operator==(const Outcome&) const = default;
};

Outcome success(std::string info = {});
Outcome failure(int e);
// -1 with errno, or rc.
Outcome fromRc(long rc);
// -1 with errno, or 0.
Outcome fromRc0(long rc);
// -1 with errno, or n with the first n bytes of `buf` as info.
Outcome bytesOutcome(ssize_t n, const std::string& buf);

std::string describe(const Outcome& o);

// One of the two directories under test, with what the steps opened in it.
struct Side {
  char label = 'A';
  std::string dir;  // this scenario's directory
  std::map<std::string, int> fds;
  struct Mapping {
    void* addr;
    size_t len;
  };
  std::map<std::string, Mapping> maps;

  std::string p(std::string_view rel) const {
    return rel.empty() ? dir : dir + "/" + std::string(rel);
  }
  // -1 (so the call fails with EBADF on both sides) when the open failed.
  int fd(const std::string& name) const {
    auto it = fds.find(name);
    return it == fds.end() ? -1 : it->second;
  }
  // Unmaps and closes everything the steps left open.
  void release();
};

struct Op {
  std::string call;  // as printed in reports
  std::function<Outcome(Side&)> run;
};

Op custom(std::string call, std::function<Outcome(Side&)> run);

// What Linux answers on a local file system: checked against B only.
struct Expect {
  enum class Kind { kAny, kOk, kErr } kind = Kind::kAny;
  int err = 0;
  std::optional<std::string> info;
};
Expect wantOk();
Expect wantOk(std::string info);
Expect wantErr(int e);

// ---------------------------------------------------------------------------
// Files

// Reads to the end; nullopt with errno set on failure.
std::optional<std::string> readAll(int fd);
bool writeAll(int fd, std::string_view data);

// Deterministic, position-dependent bytes.
std::string pattern(size_t len, unsigned salt);

// Removes a tree; returns 0 or the first errno.
int removeTree(const std::string& path);

bool isRoot();

// ---------------------------------------------------------------------------
// Scenarios

struct Options {
  uint64_t seed = 1;
  int steps = 2000;
};

struct Totals {
  int failures = 0;  // mismatches + harness problems
  int notes = 0;
  std::string tag;  // prefixed to every printed line (self-test)
};

enum class StepResult { kSame, kDiffer, kAllowed };

// Self-test perturbations of B.
struct Perturbation {
  int corruptStep = 0;  // B's outcome at this step is altered
  int hookStep = 0;     // hookB runs on B before this step
  std::function<void(Side&)> hookB;
  std::function<void(const std::string&)> beforeTreeCompare;  // gets B's scenario dir
};

// Runs the steps of one scenario on both sides and reports what differs.
// Borrows the sides, the totals and the perturbation, which must outlive it.
class Scenario {
 public:
  static constexpr int kMaxPrinted = 30;

  Scenario(std::string name, Side& a, Side& b, Totals& totals, const Perturbation& perturb)
      : name_(std::move(name)), a_(a), b_(b), totals_(totals), perturb_(perturb) {}

  Side& a() { return a_; }
  Side& b() { return b_; }
  int failures() const { return failures_; }
  int stepNo() const { return step_; }
  const Outcome& lastB() const { return lastB_; }
  // Added to the scenario's name in every MISMATCH line (e.g. the seed).
  void setContext(std::string context) { context_ = std::move(context); }

  StepResult step(const Op& op, const Expect& want = {});

  // Like step, but A failing with one of `allowedOnA` where B succeeds is an
  // allowed difference: printed as a note, and the caller skips what depends
  // on it (and undoes B's side with onlyB).
  StepResult stepAllowing(const Op& op, std::vector<int> allowedOnA, const std::string& why,
                          const Expect& want = {});

  // Runs `op` on A alone and requires `accept` of its outcome.
  void checkA(const Op& op, const std::function<bool(const Outcome&)>& accept,
              const std::string& requirement);

  // Brings B in line with A after an allowed difference.
  void onlyB(const Op& op);

  // Compares the two scenario directories (after the steps released them).
  void compareTrees();

  void note(const std::string& text);
  void harness(const std::string& text);

 private:
  void runPair(const Op& op, Outcome& ra, Outcome& rb);
  void checkReference(const Op& op, const Outcome& rb, const Expect& want);
  void reportMismatch(const std::string& call, const Outcome& ra, const Outcome& rb);
  void fail(const std::string& text);

  std::string name_;
  std::string context_;
  Side& a_;
  Side& b_;
  Totals& totals_;
  const Perturbation& perturb_;
  int step_ = 0;
  int failures_ = 0;
  Outcome lastB_;
};

struct ScenarioDef {
  const char* name;
  void (*run)(Scenario&, const Options&);
  const char* summary;
};

// Runs one scenario in rootA/<name> and rootB/<name>, removed again when it
// passes; returns its failures, or -1 when B could not be set up.
int runScenario(const ScenarioDef& def, const std::string& rootA, const std::string& rootB,
                const Options& opt, Totals& totals, const Perturbation& perturb = {});

}  // namespace hgvfs::parity
