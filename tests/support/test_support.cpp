#include "tests/support/test_support.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "base/process.h"

namespace hgvfs::test {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/hgvfs-test-XXXXXX";
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

CommandResult run(const std::vector<std::string>& argv, const std::string& cwd) {
  CommandResult result;
  auto ran = runProcess(argv, {}, cwd);
  if (!ran.ok()) {
    result.exitCode = 127;  // as a shell reports a command it cannot run
    result.err = ran.error().message();
    return result;
  }
  result.exitCode = ran->exitCode;
  result.out = std::move(ran->out);
  result.err = std::move(ran->err);
  return result;
}

CommandResult hg(const std::vector<std::string>& args, const std::string& cwd) {
  setenv("HGPLAIN", "1", 1);
  setenv("HGUSER", "test <test@example.com>", 1);
  setenv("HGRCPATH", "", 1);
  setenv("HGENCODING", "utf-8", 1);
  std::vector<std::string> argv{"hg"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, cwd);
}

std::string mercurialPython() { return "/usr/bin/python3"; }

std::string sourceDir() { return HGVFS_SOURCE_DIR; }

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write " + path);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace hgvfs::test
