#pragma once
// `hgvfs doctor [MOUNT] [--fix]`: checks every client (or the one of MOUNT)
// and, with --fix, repairs what can be repaired without losing anything:
//  - a dead mount (its daemon gone): unmounted, and mounted again once the
//    rest is checked;
//  - an inconsistent overlay (fs/overlay_check.h), examined only while no
//    daemon serves it; what no record names goes to the client's
//    lost+found;
//  - the mount's .hg/hgrc without the hgvfs extension (or with it
//    disabled, or naming another socket): the lines `hgvfs mount` writes
//    are appended;
//  - an object cache that cannot be opened: moved aside (it is derived
//    data) and made again;
//  - an interrupted `hg update` (.hg/updatestate): `hg update` to its
//    target, in the mount, as hg advises;
//  - dirstate parents that disagree with the daemon, and a repository that
//    moved or lost revisions the client needs: reported only.
// Each finding is one line: where, what, and what --fix does. The exit code
// is 1 while something is wrong (after --fix: while something is left).

#include <string>

namespace hgvfs::cli {

struct DoctorArgs {
  std::string mountPoint;  // empty: every client
  bool fix = false;
};

int doctorCommand(const DoctorArgs& args);

}  // namespace hgvfs::cli
