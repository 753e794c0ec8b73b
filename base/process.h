#pragma once
// Running another program (stock `hg`, mostly) and collecting what it says:
// no shell, the arguments as given, stdin from /dev/null, stdout and stderr
// each captured whole.
//
// Thread rules: plain functions; any thread. The child is waited for before
// the call returns.

#include <string>
#include <vector>

#include "base/result.h"

namespace hgvfs {

struct ProcessOutput {
  int exitCode = -1;  // the exit status; 128 + signal when killed
  std::string out;
  std::string err;
};

// Runs argv[0] (looked up in PATH) with `argv` in `cwd` (empty: this
// process's), the current environment with `extraEnvironment` ("NAME=value")
// set over it. kIo if it cannot be started.
//
// The child is made with posix_spawn, not fork: a forked child of a
// multithreaded process that allocates before exec can block forever on an
// allocator lock another thread held at the fork.
Result<ProcessOutput> runProcess(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& extraEnvironment = {},
                                 const std::string& cwd = {});

}  // namespace hgvfs
