#include "tests/support/fixture_repos.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "tests/support/test_support.h"

namespace hgvfs::test {
namespace {

namespace fs = std::filesystem;

uint64_t fnv1a(const std::string& bytes, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string fixtureKey() {
  std::string src = sourceDir();
  uint64_t h = fnv1a(readFile(src + "/tests/fixtures/make_repos.py"));
  h = fnv1a(readFile(src + "/tests/oracle/hg_dump.py"), h);
  CommandResult version = run(
      {mercurialPython(), "-c", "from mercurial import __version__; print(__version__.version)"});
  if (version.exitCode != 0) {
    throw std::runtime_error("cannot import mercurial with " + mercurialPython() + ": " +
                             version.err);
  }
  h = fnv1a(version.out, h);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::vector<std::string> readNames(const std::string& dir) {
  std::istringstream in(readFile(dir + "/repos.txt"));
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) names.push_back(line);
  }
  return names;
}

void runOrThrow(const std::vector<std::string>& argv, const std::string& what) {
  CommandResult r = run(argv);
  if (r.exitCode != 0) {
    throw std::runtime_error(what + " failed (exit " + std::to_string(r.exitCode) + "):\n" + r.out +
                             r.err);
  }
}

// Builds the set into `dir` in place (shares record absolute paths, so the
// repositories cannot be moved after they are made).
void build(const std::string& dir, FixtureSet set) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  std::vector<std::string> make{mercurialPython(), sourceDir() + "/tests/fixtures/make_repos.py",
                                dir};
  if (set == FixtureSet::kQuick) make.push_back("--quick");
  runOrThrow(make, "make_repos.py");
  runOrThrow({mercurialPython(), sourceDir() + "/tests/oracle/hg_dump.py", "--all", dir},
             "hg_dump.py");
  writeFile(dir + "/READY", "");
}

class FileLock {
 public:
  explicit FileLock(const std::string& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT, 0644)) {
    if (fd_ < 0 || flock(fd_, LOCK_EX) != 0) throw std::runtime_error("cannot lock " + path);
  }
  ~FileLock() {
    flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

std::string makeOrReuse(FixtureSet set) {
  if (const char* preset = std::getenv("HGVFS_TEST_FIXTURES"); preset && *preset) return preset;
  std::string base = std::string(HGVFS_BINARY_DIR) + "/test-fixtures";
  fs::create_directories(base);
  std::string prefix = set == FixtureSet::kFull ? "full-" : "quick-";
  std::string dir = base + "/" + prefix + fixtureKey();
  FileLock lock(base + "/.lock");
  if (fs::exists(dir + "/READY")) return dir;
  // Sets made by older scripts are of no further use.
  for (const auto& entry : fs::directory_iterator(base)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && entry.path().string() != dir) {
      std::error_code ec;
      fs::remove_all(entry.path(), ec);
    }
  }
  build(dir, set);
  return dir;
}

}  // namespace

const FixtureRepos& FixtureRepos::get(FixtureSet set) {
  static std::mutex mu;
  static std::map<FixtureSet, std::unique_ptr<FixtureRepos>> made;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = made[set];
  if (!slot) {
    auto repos = std::make_unique<FixtureRepos>();
    repos->dir_ = makeOrReuse(set);
    repos->names_ = readNames(repos->dir_);
    slot = std::move(repos);
  }
  return *slot;
}

void copyTree(const std::string& from, const std::string& to) {
  runOrThrow({"cp", "-a", "--", from, to}, "cp -a " + from + " " + to);
}

}  // namespace hgvfs::test
