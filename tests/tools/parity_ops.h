#pragma once
// The operations the posix_parity scenarios share: one system call (or a
// short fixed sequence) on a path relative to the scenario's directory or on
// a descriptor a step opened under a name, as an Op whose `call` says what it
// does. Operations used by a single scenario live beside it.
//
// Threads: as parity_harness.h.

#include <fcntl.h>
#include <sys/types.h>

#include <ctime>
#include <functional>
#include <string>

#include "tests/tools/parity_harness.h"

namespace hgvfs::parity {

// Descriptors, by name.
Op opOpen(const std::string& name, const std::string& rel, int flags, mode_t mode = 0644);
Op opClose(const std::string& name);
Op opWrite(const std::string& name, const std::string& data);
Op opPwrite(const std::string& name, const std::string& data, off_t off);
Op opRead(const std::string& name, size_t len);
Op opPread(const std::string& name, size_t len, off_t off);
Op opLseek(const std::string& name, off_t off, int whence);
Op opFstat(const std::string& name);
Op opFtruncate(const std::string& name, off_t len);
Op opFchmod(const std::string& name, mode_t mode);
Op opFallocate(const std::string& name, int mode, off_t off, off_t len);
Op opFsync(const std::string& name, bool dataOnly = false);

// Paths.
Op opStat(const std::string& rel);
Op opLstat(const std::string& rel);
// open + read everything + close; rc is the size read.
Op opReadFile(const std::string& rel);
// open + write everything + close.
Op opWriteFile(const std::string& rel, const std::string& data,
               int flags = O_WRONLY | O_CREAT | O_TRUNC, mode_t mode = 0644);
Op opMkdir(const std::string& rel, mode_t mode = 0755);
Op opRmdir(const std::string& rel);
Op opUnlink(const std::string& rel);
Op opRename(const std::string& from, const std::string& to);
Op opRename2(const std::string& from, const std::string& to, unsigned flags);
Op opSymlink(const std::string& target, const std::string& rel);
Op opReadlink(const std::string& rel, size_t bufSize = 8192);
Op opTruncate(const std::string& rel, off_t len);
Op opChmod(const std::string& rel, mode_t mode);
Op opChown(const std::string& rel, uid_t uid, gid_t gid, bool follow = true);
// Owner, group and mode, as lstat (follow=false) or stat sees them.
Op opOwner(const std::string& rel, bool follow = true);
Op opLink(const std::string& from, const std::string& to);
Op opMknod(const std::string& rel, mode_t mode, dev_t dev);

// The sorted names of a directory (without . and ..), and whether . and ..
// were listed and every d_type agreed with lstat.
Outcome listing(const std::string& path);
Op opList(const std::string& rel);

Op opUtimens(const std::string& rel, struct timespec atime, struct timespec mtime, int flags = 0);
// Exact atime and mtime (lstat).
Op opTimes(const std::string& rel);

// Runs `fn` in a forked child and returns what it returned. `meanwhile`
// runs in the parent while the child is alive.
Outcome inChild(const std::function<Outcome()>& fn, const std::function<void()>& meanwhile = {});

}  // namespace hgvfs::parity
