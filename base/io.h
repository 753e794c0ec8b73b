#pragma once
// Whole-buffer I/O over file descriptors and paths: loops that finish what a
// single read or write may leave half done (EINTR, short counts), and the
// write-then-rename that makes a small file appear complete or not at all.
//
// Thread rules: plain functions; any thread.

#include <sys/types.h>

#include <string>

#include "base/bytes.h"
#include "base/result.h"

namespace hgvfs {

// Reads up to `size` bytes at `offset`; fewer only at end of file.
Result<size_t> preadFull(int fd, char* buf, size_t size, off_t offset);
// Writes all of `data` at `offset` (kIo with errno when the disk says no).
Status pwriteFull(int fd, ByteView data, off_t offset);
// Writes all of `data` at the descriptor's position (pipes, sockets: EPIPE
// is reported, never raised as a signal for sockets).
Status writeFull(int fd, ByteView data);
// The whole content of the file at `path`.
Result<Bytes> readFile(const std::string& path);
// Writes `data` to `path` through `path.tmp`, fsync and rename: a reader
// (or a crash) sees the old file or the new one, never part of it.
Status writeFileAtomically(const std::string& path, ByteView data, mode_t mode = 0644);

}  // namespace hgvfs
