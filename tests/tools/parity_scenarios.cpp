#include "tests/tools/parity_scenarios.h"

namespace hgvfs::parity {

namespace {

const ScenarioDef kScenarios[] = {
    {"open-flags", openFlags,
     "O_CREAT/O_EXCL/O_TRUNC/O_APPEND/O_DIRECTORY/O_NOFOLLOW, EBADF, ENOTDIR"},
    {"write-read", writeRead, "holes, pread/pwrite, other fds, truncate grow/shrink, fallocate"},
    {"mmap", mmapScenario, "MAP_SHARED stores seen by read() and another mapping, msync"},
    {"rename", renameScenario, "rename corner cases, renameat2, trees across directories"},
    {"unlink-rmdir", unlinkRmdir, "ENOTEMPTY/EISDIR/ENOTDIR/EINVAL, open unlinked files"},
    {"symlinks", symlinks, "readlink, dangling, loops, traversal, lstat vs stat"},
    {"excl-race", exclRace, "threads and processes racing O_CREAT|O_EXCL, mkdir, NOREPLACE"},
    {"metadata", metadata, "chmod, umask, chown (other owners as root), set-group-ID dirs"},
    {"times", timesScenario, "utimensat exact/NOW/OMIT, what moves mtime and ctime"},
    {"special-files", specialFiles, "FIFOs, mknod, unix sockets, device nodes with rdev"},
    {"hardlinks", hardlinks,
     "link(), nlink, rename between and over links, EMLINK-free limits, EXDEV"},
    {"xattrs", xattrs, "user/trusted/security set/get/list/remove, limits, ctime"},
    {"locks", locks, "flock, fcntl F_SETLK/F_GETLK/F_SETLKW across processes, OFD locks"},
    {"directories", directories, "readdir after changes, seekdir/telldir, getdents while changing"},
    {"random", randomized, "seeded random operations on a small namespace (--seed, --steps)"},
};

}  // namespace

std::span<const ScenarioDef> allScenarios() { return kScenarios; }

const ScenarioDef* findScenario(const std::string& name) {
  for (const auto& def : kScenarios)
    if (name == def.name) return &def;
  return nullptr;
}

}  // namespace hgvfs::parity
