#include "tests/tools/parity_harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <thread>

namespace hgvfs::parity {

// ---------------------------------------------------------------------------
// Formatting

std::string fmt(const char* f, ...) {
  va_list ap;
  va_start(ap, f);
  std::string s = test::vformatString(f, ap);
  va_end(ap);
  return s;
}

std::string flagsName(int f) {
  std::string s = (f & O_ACCMODE) == O_WRONLY ? "O_WRONLY"
                  : (f & O_ACCMODE) == O_RDWR ? "O_RDWR"
                                              : "O_RDONLY";
  static const std::pair<int, const char*> kBits[] = {
      {O_CREAT, "O_CREAT"},         {O_EXCL, "O_EXCL"},
      {O_TRUNC, "O_TRUNC"},         {O_APPEND, "O_APPEND"},
      {O_DIRECTORY, "O_DIRECTORY"}, {O_NOFOLLOW, "O_NOFOLLOW"},
      {O_NONBLOCK, "O_NONBLOCK"},   {O_PATH, "O_PATH"}};
  for (auto [bit, name] : kBits)
    if (f & bit) s += std::string("|") + name;
  return s;
}

std::string statInfo(const struct stat& st) {
  std::string s = fmt("%s %04o", kindName(st.st_mode), st.st_mode & 07777);
  if (!S_ISDIR(st.st_mode))
    s += fmt(" size=%lld nlink=%lu", static_cast<long long>(st.st_size),
             static_cast<unsigned long>(st.st_nlink));
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
    s += fmt(" rdev=%u:%u", major(st.st_rdev), minor(st.st_rdev));
  return s;
}

std::string timeText(const struct timespec& t) {
  return fmt("%lld.%09ld", static_cast<long long>(t.tv_sec), t.tv_nsec);
}

void sleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// ---------------------------------------------------------------------------
// Outcomes, sides, operations

Outcome success(std::string info) { return Outcome{0, 0, std::move(info)}; }
Outcome failure(int e) { return Outcome{-1, e, {}}; }
Outcome fromRc(long rc) { return rc < 0 ? failure(errno) : Outcome{rc, 0, {}}; }
Outcome fromRc0(long rc) { return rc < 0 ? failure(errno) : success(); }

std::string describe(const Outcome& o) {
  std::string s = o.rc == -1 ? "-1 " + errnoSymbol(o.err) : std::to_string(o.rc);
  if (!o.info.empty()) s += " [" + escapeBytes(o.info) + "]";
  return s;
}

Outcome bytesOutcome(ssize_t n, const std::string& buf) {
  if (n < 0) return failure(errno);
  return Outcome{n, 0, buf.substr(0, static_cast<size_t>(n))};
}

void Side::release() {
  for (auto& [name, m] : maps) ::munmap(m.addr, m.len);
  for (auto& [name, fd] : fds) ::close(fd);
  maps.clear();
  fds.clear();
}

Op custom(std::string call, std::function<Outcome(Side&)> run) {
  return Op{std::move(call), std::move(run)};
}

Expect wantOk() { return Expect{Expect::Kind::kOk, 0, std::nullopt}; }
Expect wantOk(std::string info) { return Expect{Expect::Kind::kOk, 0, std::move(info)}; }
Expect wantErr(int e) { return Expect{Expect::Kind::kErr, e, std::nullopt}; }

// ---------------------------------------------------------------------------
// Files

std::optional<std::string> readAll(int fd) { return test::readFd(fd); }

bool writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string pattern(size_t len, unsigned salt) {
  std::string s(len, '\0');
  for (size_t i = 0; i < len; ++i) s[i] = static_cast<char>('a' + (i * 7 + salt) % 26);
  return s;
}

int removeTree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT ? 0 : errno;
  if (!S_ISDIR(st.st_mode)) return ::unlink(path.c_str()) == 0 ? 0 : errno;
  ::chmod(path.c_str(), 0700);
  if (DIR* d = ::opendir(path.c_str())) {
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
    for (const auto& n : names) removeTree(path + "/" + n);
  }
  return ::rmdir(path.c_str()) == 0 ? 0 : errno;
}

bool isRoot() { return ::geteuid() == 0; }

// ---------------------------------------------------------------------------
// Scenarios

StepResult Scenario::step(const Op& op, const Expect& want) {
  Outcome ra, rb;
  runPair(op, ra, rb);
  checkReference(op, rb, want);
  if (ra == rb) return StepResult::kSame;
  reportMismatch(op.call, ra, rb);
  return StepResult::kDiffer;
}

StepResult Scenario::stepAllowing(const Op& op, std::vector<int> allowedOnA, const std::string& why,
                                  const Expect& want) {
  Outcome ra, rb;
  runPair(op, ra, rb);
  checkReference(op, rb, want);
  if (ra == rb) return StepResult::kSame;
  if (ra.rc == -1 && rb.rc != -1 &&
      std::find(allowedOnA.begin(), allowedOnA.end(), ra.err) != allowedOnA.end()) {
    note(
        fmt("step %d %s: A gives %s, B succeeds: %s (allowed difference; dependent checks "
            "skipped)",
            step_, op.call.c_str(), errnoSymbol(ra.err).c_str(), why.c_str()));
    return StepResult::kAllowed;
  }
  reportMismatch(op.call, ra, rb);
  return StepResult::kDiffer;
}

void Scenario::checkA(const Op& op, const std::function<bool(const Outcome&)>& accept,
                      const std::string& requirement) {
  ++step_;
  Outcome ra = op.run(a_);
  if (!accept(ra))
    fail(fmt("step %d %s: A gives %s, but %s", step_, op.call.c_str(), describe(ra).c_str(),
             requirement.c_str()));
}

void Scenario::onlyB(const Op& op) {
  Outcome rb = op.run(b_);
  if (rb.rc == -1) harness(op.call + " on B alone failed: " + describe(rb));
}

void Scenario::compareTrees() {
  if (perturb_.beforeTreeCompare) perturb_.beforeTreeCompare(b_.dir);
  test::TreeSnapshot ta = test::snapshotTree(a_.dir);
  test::TreeSnapshot tb = test::snapshotTree(b_.dir);
  for (const auto& problem : test::describeDifferences(ta, tb)) fail("tree: " + problem);
}

void Scenario::note(const std::string& text) {
  ++totals_.notes;
  std::printf("%sNOTE [%s] %s\n", totals_.tag.c_str(), name_.c_str(), text.c_str());
}

void Scenario::harness(const std::string& text) {
  fail("HARNESS (the reference B did not do what Linux does on a local disk): " + text);
}

void Scenario::runPair(const Op& op, Outcome& ra, Outcome& rb) {
  ++step_;
  if (perturb_.hookB && perturb_.hookStep == step_) perturb_.hookB(b_);
  ra = op.run(a_);
  rb = op.run(b_);
  if (perturb_.corruptStep == step_)
    rb = rb.rc == -1 ? failure(rb.err == EIO ? EPERM : EIO) : failure(EIO);
  lastB_ = rb;
}

void Scenario::checkReference(const Op& op, const Outcome& rb, const Expect& want) {
  bool ok = true;
  if (want.kind == Expect::Kind::kOk)
    ok = rb.rc != -1 && (!want.info || *want.info == rb.info);
  else if (want.kind == Expect::Kind::kErr)
    ok = rb.rc == -1 && rb.err == want.err;
  if (ok) return;
  std::string expected = want.kind == Expect::Kind::kErr ? "-1 " + errnoSymbol(want.err)
                         : want.info ? "success [" + escapeBytes(*want.info) + "]"
                                     : "success";
  harness(fmt("step %d %s: B gives %s, expected %s", step_, op.call.c_str(), describe(rb).c_str(),
              expected.c_str()));
}

void Scenario::reportMismatch(const std::string& call, const Outcome& ra, const Outcome& rb) {
  std::string da = describe(ra), db = describe(rb);
  std::string text = fmt("step %d %s:", step_, call.c_str());
  if (da.size() + db.size() < 120) {
    text += " A: " + da + " | B: " + db;
  } else {
    text += "\n      A: " + da + "\n      B: " + db;
    if (ra.info != rb.info)
      text += fmt("\n      (observations first differ at byte %zu)",
                  test::firstDifferingByte(ra.info, rb.info));
  }
  fail(text);
}

void Scenario::fail(const std::string& text) {
  ++failures_;
  ++totals_.failures;
  if (failures_ <= kMaxPrinted)
    std::printf("%sMISMATCH [%s%s] %s\n", totals_.tag.c_str(), name_.c_str(),
                context_.empty() ? "" : (", " + context_).c_str(), text.c_str());
  else if (failures_ == kMaxPrinted + 1)
    std::printf("%sMISMATCH [%s] (further mismatches counted, not shown)\n", totals_.tag.c_str(),
                name_.c_str());
}

int runScenario(const ScenarioDef& def, const std::string& rootA, const std::string& rootB,
                const Options& opt, Totals& totals, const Perturbation& perturb) {
  Side a, b;
  a.label = 'A';
  b.label = 'B';
  a.dir = rootA + "/" + def.name;
  b.dir = rootB + "/" + def.name;
  Scenario s(def.name, a, b, totals, perturb);
  if (int e = removeTree(b.dir); e != 0 || ::mkdir(b.dir.c_str(), 0755) != 0) {
    std::fprintf(stderr, "posix_parity: cannot make %s: %s\n", b.dir.c_str(),
                 std::strerror(e ? e : errno));
    return -1;
  }
  int ea = removeTree(a.dir);
  if (ea != 0 || ::mkdir(a.dir.c_str(), 0755) != 0) {
    Outcome o = failure(ea ? ea : errno);
    s.step(
        custom("setup: mkdir " + a.dir, [&](Side& x) { return x.label == 'A' ? o : success(); }));
    std::printf("%s%-14s SKIPPED: cannot make its directory in A\n", totals.tag.c_str(), def.name);
    return s.failures();
  }
  auto t0 = std::chrono::steady_clock::now();
  def.run(s, opt);
  a.release();
  b.release();
  s.compareTrees();
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  if (s.failures() == 0) {
    removeTree(a.dir);
    removeTree(b.dir);
    std::printf("%s%-14s ok (%d steps, %lld ms)\n", totals.tag.c_str(), def.name, s.stepNo(),
                static_cast<long long>(ms.count()));
  } else {
    std::printf("%s%-14s FAILED: %d mismatches (%d steps); trees kept in %s and %s\n",
                totals.tag.c_str(), def.name, s.failures(), s.stepNo(), a.dir.c_str(),
                b.dir.c_str());
  }
  std::fflush(stdout);
  return s.failures();
}

}  // namespace hgvfs::parity
