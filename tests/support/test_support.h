#pragma once
// Helpers shared by the tests: temporary directories that clean up after
// themselves, running the real `hg` (the oracle) and capturing its output.

#include <string>
#include <vector>

namespace hgvfs::test {

// A fresh directory under $TMPDIR, removed with everything in it when the
// object goes out of scope (also when a test fails).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct CommandResult {
  int exitCode = -1;
  std::string out;  // stdout, bytes as written
  std::string err;  // stderr
};

// Runs argv (no shell) in `cwd`, capturing stdout and stderr.
CommandResult run(const std::vector<std::string>& argv, const std::string& cwd = {});

// Runs the real hg with HGPLAIN and a fixed user/config, in `cwd`.
CommandResult hg(const std::vector<std::string>& args, const std::string& cwd = {});

// The Python that has Mercurial's modules (the oracle scripts need it).
std::string mercurialPython();

std::string sourceDir();  // the project's source tree
std::string readFile(const std::string& path);
void writeFile(const std::string& path, const std::string& bytes);

}  // namespace hgvfs::test
