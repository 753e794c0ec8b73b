// The posix_parity scenario of seeded random operations (parity_scenarios.h).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/tools/parity_ops.h"
#include "tests/tools/parity_scenarios.h"

namespace hgvfs::parity {

// ---------------------------------------------------------------------------
// Scenario: randomized

namespace {

// splitmix64: the same sequence on every platform.
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }
};

// A small namespace below kRandomRoot, so collisions and errors are frequent.
const std::vector<std::string> kRandomPaths = {
    "a", "b", "c", "d1", "d2", "d1/a", "d1/b", "d1/d3", "d1/d3/a", "d2/a", "d2/d1", "d1/d3/d4"};
const std::vector<std::string> kRandomTargets = {"a",    "b",       "../a",    "d1",
                                                 "d2/a", "nowhere", "../../a", "d3"};
const std::vector<mode_t> kRandomModes = {0600, 0644, 0640, 0755, 0700, 0711, 0666, 0604};

Op randomOp(Rng& r, int stepNo) {
  const std::string p = kRandomRoot + r.pick(kRandomPaths);
  const std::string q = kRandomRoot + r.pick(kRandomPaths);
  switch (r.below(17)) {
    case 0:
    case 1: {
      int flags =
          O_CREAT | O_WRONLY | (r.below(3) == 0 ? O_EXCL : 0) | (r.below(4) == 0 ? O_TRUNC : 0);
      return custom(fmt("open+close(%s, %s)", quoteBytes(p).c_str(), flagsName(flags).c_str()),
                    [=](Side& s) {
                      int fd = ::open(s.p(p).c_str(), flags | O_CLOEXEC, 0644);
                      if (fd < 0) return failure(errno);
                      return fromRc0(::close(fd));
                    });
    }
    case 2:
    case 3:
    case 4: {
      off_t off = static_cast<off_t>(r.below(20000));
      size_t len = 1 + r.below(5000);
      bool append = r.below(5) == 0;
      return custom(
          fmt("open(%s)+%s %zu bytes%s", quoteBytes(p).c_str(), append ? "append" : "pwrite", len,
              append ? "" : fmt(" @%lld", static_cast<long long>(off)).c_str()),
          [=](Side& s) {
            int fd = ::open(s.p(p).c_str(), O_WRONLY | O_CLOEXEC | (append ? O_APPEND : 0));
            if (fd < 0) return failure(errno);
            std::string data = pattern(len, static_cast<unsigned>(stepNo));
            ssize_t n =
                append ? ::write(fd, data.data(), len) : ::pwrite(fd, data.data(), len, off);
            Outcome o = fromRc(n);
            ::close(fd);
            return o;
          });
    }
    case 5:
      return opTruncate(p, static_cast<off_t>(r.below(30000)));
    case 6:
    case 7: {
      size_t kind = r.below(8);
      if (kind == 0) return opRename2(p, q, RENAME_NOREPLACE);
      if (kind == 1) return opRename2(p, q, RENAME_EXCHANGE);
      return opRename(p, q);
    }
    case 8:
      return opUnlink(p);
    case 9:
      return opMkdir(p, r.below(4) == 0 ? 0700 : 0755);
    case 10:
      return opRmdir(p);
    case 11:
      return opSymlink(r.pick(kRandomTargets), p);
    case 12:
      return opChmod(p, r.pick(kRandomModes));
    case 13: {
      struct timespec t = {static_cast<time_t>(1000000000 + r.below(100000000)),
                           static_cast<long>(r.below(1000000000))};
      Op set = opUtimens(p, t, t);
      return custom(set.call + " + lstat times", [=](Side& s) {
        Outcome o = set.run(s);
        if (o.rc == -1) return o;
        struct stat st;
        if (::stat(s.p(p).c_str(), &st) != 0) return failure(errno);
        return success("mtime=" + timeText(st.st_mtim));
      });
    }
    case 14:
      return r.below(2) ? opReadFile(p) : opList(p);
    case 15:
      return opLink(p, q);
    default:
      return opLstat(p);
  }
}

}  // namespace

void randomized(Scenario& s, const Options& opt) {
  s.setContext(fmt("seed %llu", static_cast<unsigned long long>(opt.seed)));
  Rng r{opt.seed};
  s.step(opMkdir("w"), wantOk());
  s.step(opMkdir(kRandomRoot), wantOk());
  for (int i = 0; i < opt.steps; ++i) {
    s.step(randomOp(r, s.stepNo() + 1));
    if (s.failures() >= 10) {
      std::printf(
          "  random: stopping at step %d after %d mismatches (states have diverged); "
          "reproduce with --scenario random --seed %llu --steps %d\n",
          s.stepNo(), s.failures(), static_cast<unsigned long long>(opt.seed), i + 1);
      return;
    }
  }
  if (s.failures() > 0)
    std::printf("  random: reproduce with --scenario random --seed %llu --steps %d\n",
                static_cast<unsigned long long>(opt.seed), opt.steps);
}

}  // namespace hgvfs::parity
