#pragma once
// `hgvfs status`: Mercurial's status of the mount around the current
// directory, from the daemon, printed as `hg status` prints it.

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
};

int statusCommand(const StatusArgs& args);

}  // namespace hgvfs::cli
