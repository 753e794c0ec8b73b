#pragma once
// `hgvfs status`: Mercurial's status of the mount around the current
// directory, from the daemon, printed as `hg status` prints it. Patterns
// and -I/-X are matched natively (match/); what is not (filesets, ...) is
// handed to stock `hg status` with the same arguments.

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace hgvfs::cli {

struct StatusArgs {
  bool modified = false, added = false, removed = false, deleted = false;
  bool unknown = false, ignored = false, clean = false, all = false;
  bool quiet = false, noStatus = false, print0 = false, copies = false;
  std::string template_;  // "json" or empty
  std::string rev;        // compare with REV instead of the working copy's parent
  std::vector<std::string> patterns;
  std::vector<std::string> include, exclude;  // -I, -X
};

int statusCommand(const StatusArgs& args);
// Registers `status` on `app` (both the front binary and hgvfs-core).
void addStatusCommand(CLI::App& app, StatusArgs& args, int& exitCode);
// argv for CLI11's parse(vector) (reversed), with hg's -0 spelled --print0.
std::vector<std::string> reversedArguments(int argc, char** argv);

}  // namespace hgvfs::cli
