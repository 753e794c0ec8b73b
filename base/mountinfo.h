#pragma once
// What is mounted where, from /proc/self/mountinfo (proc(5)): the one
// reader of that file for the daemon, the CLI, the static `hgvfs` front
// and the tests.
//
// Thread rules: plain functions; any thread. Each call reads the file anew.

#include <optional>
#include <string>
#include <vector>

namespace hgvfs {

struct MountInfo {
  std::string mountPoint;  // decoded (mountinfo escapes space, tab, newline, backslash)
  std::string fsType;      // e.g. "fuse.hgvfs", "ext4"
  std::string source;      // decoded; hgvfs mounts: "hgvfs:<client directory>"
};

// Every mount, in the file's order (bottom to top where mounts stack).
std::vector<MountInfo> readMountInfo();
// One line of mountinfo; nullopt when it is malformed.
std::optional<MountInfo> parseMountInfoLine(const std::string& line);

// The fs types mounted at `path`, bottom to top.
std::vector<std::string> mountTypesAt(const std::string& path);
// Whether `path` is a mount point, and the type of the visible (top) mount.
std::optional<std::string> mountTypeAt(const std::string& path);
// The innermost mount of type `fsType` holding `dir` (an absolute, real
// path); empty when there is none.
std::string innermostMountOf(const std::string& dir, const std::string& fsType);

}  // namespace hgvfs
