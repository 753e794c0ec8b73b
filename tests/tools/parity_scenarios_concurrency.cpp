// posix_parity scenarios with several threads or processes: O_CREAT|O_EXCL,
// mkdir and RENAME_NOREPLACE races, flock and fcntl locks
// (parity_scenarios.h).

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <barrier>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/tools/parity_ops.h"
#include "tests/tools/parity_scenarios.h"

namespace hgvfs::parity {

// ---------------------------------------------------------------------------
// Scenario: O_CREAT|O_EXCL (and mkdir, RENAME_NOREPLACE) races

namespace {

std::string tally(const std::vector<int>& errs) {
  std::map<int, int> count;
  for (int e : errs) ++count[e];
  std::string s;
  for (auto [e, n] : count) s += fmt("%s%s=%d", s.empty() ? "" : " ", errnoSymbol(e).c_str(), n);
  return s;
}

// `threads` threads run `call` (returning 0 or an errno) at the same moment.
Outcome raceThreads(int threads, const std::function<int(int)>& call) {
  std::barrier<> start(threads);
  std::vector<int> errs(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i)
    pool.emplace_back([&, i] {
      start.arrive_and_wait();
      errs[static_cast<size_t>(i)] = call(i);
    });
  for (auto& t : pool) t.join();
  return success(tally(errs));
}

int excl(const std::string& path) {
  int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

// `procs` processes, released together through a pipe, O_CREAT|O_EXCL one path.
Outcome raceProcesses(int procs, const std::string& path) {
  int gate[2];
  if (::pipe(gate) != 0) return failure(errno);
  std::fflush(nullptr);
  std::vector<pid_t> kids;
  for (int i = 0; i < procs; ++i) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(gate[1]);
      char c;
      [[maybe_unused]] ssize_t n = ::read(gate[0], &c, 1);  // returns at EOF
      int e = excl(path);
      _exit(e == 0 ? 0 : e == EEXIST ? 1 : 2);
    }
    if (pid > 0) kids.push_back(pid);
  }
  ::close(gate[0]);
  sleepMs(50);
  ::close(gate[1]);
  std::vector<int> errs;
  for (pid_t pid : kids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 3;
    errs.push_back(code == 0 ? 0 : code == 1 ? EEXIST : EIO);
  }
  return success(tally(errs));
}

}  // namespace

void exclRace(Scenario& s, const Options&) {
  const int kThreads = 8;
  const std::string oneWinner = fmt("ok=1 EEXIST=%d", kThreads - 1);
  for (int round = 0; round < 20; ++round) {
    std::string name = fmt("t%02d", round);
    s.step(custom(fmt("%d threads open(%s, O_CREAT|O_EXCL)", kThreads, name.c_str()),
                  [=](Side& x) {
                    std::string path = x.p(name);
                    return raceThreads(kThreads, [&](int) { return excl(path); });
                  }),
           wantOk(oneWinner));
  }
  for (int round = 0; round < 5; ++round) {
    std::string name = fmt("p%02d", round);
    s.step(custom(fmt("%d processes open(%s, O_CREAT|O_EXCL)", kThreads, name.c_str()),
                  [=](Side& x) { return raceProcesses(kThreads, x.p(name)); }),
           wantOk(oneWinner));
  }
  for (int round = 0; round < 5; ++round) {
    std::string name = fmt("m%02d", round);
    s.step(custom(fmt("%d threads mkdir(%s)", kThreads, name.c_str()),
                  [=](Side& x) {
                    std::string path = x.p(name);
                    return raceThreads(kThreads, [&](int) {
                      return ::mkdir(path.c_str(), 0755) == 0 ? 0 : errno;
                    });
                  }),
           wantOk(oneWinner));
  }
  // Each thread moves its own file onto one name with RENAME_NOREPLACE.
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < kThreads; ++i)
      s.step(opWriteFile(fmt("r%02d-src%d", round, i), fmt("from %d", i)));
    std::string target = fmt("r%02d", round);
    s.step(custom(fmt("%d threads renameat2(r%02d-srcN, %s, RENAME_NOREPLACE)", kThreads, round,
                      target.c_str()),
                  [=](Side& x) {
                    return raceThreads(kThreads, [&](int i) {
                      std::string from = x.p(fmt("r%02d-src%d", round, i));
                      return ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, x.p(target).c_str(),
                                         RENAME_NOREPLACE) == 0
                                 ? 0
                                 : errno;
                    });
                  }),
           wantOk(oneWinner));
    // Which one won differs by nature: keep the trees comparable.
    s.step(opUnlink(target));
    for (int i = 0; i < kThreads; ++i) {
      std::string src = fmt("r%02d-src%d", round, i);
      s.step(custom("unlink(" + quoteBytes(src) + ") if present", [=](Side& x) {
        return ::unlink(x.p(src).c_str()) == 0 || errno == ENOENT ? success() : failure(errno);
      }));
    }
  }
  s.step(opList(""));
}

// ---------------------------------------------------------------------------
// Scenario: flock and fcntl locks

namespace {

Op opFlock(const std::string& name, int op) {
  std::string o = (op & ~LOCK_NB) == LOCK_EX   ? "LOCK_EX"
                  : (op & ~LOCK_NB) == LOCK_SH ? "LOCK_SH"
                                               : "LOCK_UN";
  if (op & LOCK_NB) o += "|LOCK_NB";
  return custom(fmt("flock(%s, %s)", name.c_str(), o.c_str()),
                [=](Side& s) { return fromRc(::flock(s.fd(name), op)); });
}

struct flock lockSpec(short type, off_t start, off_t len) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  return fl;
}

const char* lockName(int type) {
  return type == F_WRLCK ? "F_WRLCK" : type == F_RDLCK ? "F_RDLCK" : "F_UNLCK";
}

const char* cmdName(int cmd) {
  return cmd == F_SETLK       ? "F_SETLK"
         : cmd == F_SETLKW    ? "F_SETLKW"
         : cmd == F_GETLK     ? "F_GETLK"
         : cmd == F_OFD_SETLK ? "F_OFD_SETLK"
         : cmd == F_OFD_GETLK ? "F_OFD_GETLK"
                              : "?";
}

// F_GETLK results with the holder's pid as a relation to `holder`.
std::string lockInfo(const struct flock& fl, pid_t holder) {
  if (fl.l_type == F_UNLCK) return "unlocked";
  std::string who = fl.l_pid == holder ? "holder" : fl.l_pid == -1 ? "-1 (OFD)" : "another pid";
  return fmt("%s start=%lld len=%lld pid=%s", lockName(fl.l_type),
             static_cast<long long>(fl.l_start), static_cast<long long>(fl.l_len), who.c_str());
}

Outcome fcntlLock(int fd, int cmd, short type, off_t start, off_t len, pid_t holder) {
  struct flock fl = lockSpec(type, start, len);
  if (::fcntl(fd, cmd, &fl) != 0) return failure(errno);
  return cmd == F_GETLK || cmd == F_OFD_GETLK ? success(lockInfo(fl, holder)) : success();
}

Op opLock(const std::string& name, int cmd, short type, off_t start, off_t len) {
  return custom(fmt("fcntl(%s, %s, %s %lld+%lld)", name.c_str(), cmdName(cmd), lockName(type),
                    static_cast<long long>(start), static_cast<long long>(len)),
                [=](Side& s) { return fcntlLock(s.fd(name), cmd, type, start, len, ::getpid()); });
}

// The same request from a child process, on its own descriptor.
Op opChildLock(const std::string& rel, int cmd, short type, off_t start, off_t len) {
  return custom(
      fmt("child: fcntl(own fd on %s, %s, %s %lld+%lld)", quoteBytes(rel).c_str(), cmdName(cmd),
          lockName(type), static_cast<long long>(start), static_cast<long long>(len)),
      [=](Side& s) {
        pid_t parent = ::getpid();
        std::string path = s.p(rel);
        return inChild([=] {
          int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
          if (fd < 0) return failure(errno);
          return fcntlLock(fd, cmd, type, start, len, parent);
        });
      });
}

}  // namespace

void locks(Scenario& s, const Options&) {
  s.step(opWriteFile("lk", pattern(100, 0)));
  s.step(opOpen("l1", "lk", O_RDWR), wantOk());
  s.step(opOpen("l2", "lk", O_RDWR), wantOk());
  // flock: per open file description.
  s.step(opFlock("l1", LOCK_EX | LOCK_NB), wantOk());
  s.step(opFlock("l2", LOCK_EX | LOCK_NB), wantErr(EWOULDBLOCK));
  s.step(opFlock("l2", LOCK_SH | LOCK_NB), wantErr(EWOULDBLOCK));
  s.step(custom("child: flock(own fd, LOCK_EX|LOCK_NB)",
                [](Side& x) {
                  std::string path = x.p("lk");
                  return inChild([=] {
                    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
                    return fromRc(::flock(fd, LOCK_EX | LOCK_NB));
                  });
                }),
         wantErr(EWOULDBLOCK));
  s.step(opFlock("l1", LOCK_UN), wantOk());
  s.step(opFlock("l2", LOCK_SH | LOCK_NB), wantOk());
  s.step(opFlock("l1", LOCK_SH | LOCK_NB), wantOk());
  s.step(opFlock("l1", LOCK_EX | LOCK_NB), wantErr(EWOULDBLOCK));
  s.step(opFlock("l2", LOCK_UN), wantOk());
  s.step(opFlock("l1", LOCK_EX | LOCK_NB), wantOk());
  s.step(opFlock("l1", LOCK_UN), wantOk());
  // POSIX record locks: per process.
  s.step(opLock("l1", F_SETLK, F_WRLCK, 0, 10), wantOk());
  s.step(opChildLock("lk", F_SETLK, F_WRLCK, 5, 10), wantErr(EAGAIN));
  s.step(opChildLock("lk", F_SETLK, F_RDLCK, 0, 5), wantErr(EAGAIN));
  s.step(opChildLock("lk", F_GETLK, F_WRLCK, 5, 10), wantOk("F_WRLCK start=0 len=10 pid=holder"));
  s.step(opChildLock("lk", F_SETLK, F_WRLCK, 10, 10), wantOk());
  s.step(opLock("l2", F_SETLK, F_WRLCK, 5, 10), wantOk());  // same process: no conflict
  s.step(opChildLock("lk", F_GETLK, F_RDLCK, 12, 1), wantOk("F_WRLCK start=0 len=15 pid=holder"));
  s.step(opClose("l2"));  // closing any descriptor drops all the process's locks
  s.step(opChildLock("lk", F_SETLK, F_WRLCK, 0, 10), wantOk());
  s.step(opLock("l1", F_SETLK, F_RDLCK, 0, 0), wantOk());
  s.step(opChildLock("lk", F_SETLK, F_RDLCK, 0, 0), wantOk());
  s.step(opChildLock("lk", F_SETLK, F_WRLCK, 50, 1), wantErr(EAGAIN));
  s.step(opLock("l1", F_SETLK, F_UNLCK, 0, 0), wantOk());
  s.step(opChildLock("lk", F_GETLK, F_WRLCK, 0, 0), wantOk("unlocked"));
  // F_SETLKW waits until the holder lets go.
  s.step(opLock("l1", F_SETLK, F_WRLCK, 0, 1), wantOk());
  s.step(custom("child: F_SETLKW waits while parent holds the lock 150 ms",
                [](Side& x) {
                  std::string path = x.p("lk");
                  int held = x.fd("l1");
                  return inChild(
                      [=] {
                        int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
                        struct flock fl = lockSpec(F_WRLCK, 0, 1);
                        auto t0 = std::chrono::steady_clock::now();
                        if (::fcntl(fd, F_SETLKW, &fl) != 0) return failure(errno);
                        auto waited = std::chrono::steady_clock::now() - t0;
                        return success(waited >= std::chrono::milliseconds(75) ? "waited"
                                                                               : "did not wait");
                      },
                      [=] {
                        sleepMs(150);
                        struct flock fl = lockSpec(F_UNLCK, 0, 1);
                        ::fcntl(held, F_SETLK, &fl);
                      });
                }),
         wantOk("waited"));
  // Open file description locks: per descriptor, even within one process.
  s.step(opOpen("l3", "lk", O_RDWR), wantOk());
  s.step(opLock("l1", F_OFD_SETLK, F_WRLCK, 0, 0), wantOk());
  s.step(opLock("l3", F_OFD_SETLK, F_WRLCK, 0, 0), wantErr(EAGAIN));
  s.step(opLock("l3", F_OFD_GETLK, F_RDLCK, 0, 0), wantOk("F_WRLCK start=0 len=0 pid=-1 (OFD)"));
  s.step(opClose("l1"));
  s.step(opLock("l3", F_OFD_SETLK, F_WRLCK, 0, 0), wantOk());
  s.step(opClose("l3"));
}

}  // namespace hgvfs::parity
