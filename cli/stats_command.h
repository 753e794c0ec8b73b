#pragma once
// `hgvfs stats [MOUNT] [-T json]`: what the daemon of a mount holds and
// what it served since it was mounted (status/mount_stats.h), as text or
// as one JSON object. MOUNT defaults to the mount around the current
// directory. Returns the exit code.

#include <string>

namespace hgvfs::cli {

struct StatsArgs {
  std::string mount;      // empty: the mount around the current directory
  std::string template_;  // "" or "json"
};

int statsCommand(const StatsArgs& args);

}  // namespace hgvfs::cli
