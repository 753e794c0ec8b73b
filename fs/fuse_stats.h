#pragma once
// FUSE requests by kind since the mount: for each kind a LatencyHistogram
// (base/latency_histogram.h) of the time its handler took, request to
// reply. FuseServer records every request in one place (its dispatch
// table), before touching anything else of the request, with no lock.
//
// Thread rules: record() from every FUSE thread at once; summaries from any
// thread.

#include <array>
#include <cstdint>

#include "base/latency_histogram.h"

namespace hgvfs::fs {

enum class FuseOp : uint8_t {
  kLookup,
  kForget,
  kForgetMulti,
  kGetattr,
  kSetattr,
  kReadlink,
  kMknod,
  kMkdir,
  kUnlink,
  kRmdir,
  kSymlink,
  kRename,
  kLink,
  kOpen,
  kRead,
  kWrite,
  kWriteBuf,
  kFlush,
  kRelease,
  kFsync,
  kOpendir,
  kReaddir,
  kReaddirplus,
  kReleasedir,
  kFsyncdir,
  kStatfs,
  kSetxattr,
  kGetxattr,
  kListxattr,
  kRemovexattr,
  kAccess,
  kCreate,
  kFallocate,
  kCount
};

// The kernel's name of the request ("lookup", "readdirplus", ...).
const char* fuseOpName(FuseOp op);

class FuseStats {
 public:
  void record(FuseOp op, uint64_t ns) noexcept { ops_[static_cast<size_t>(op)].record(ns); }
  LatencySummary summary(FuseOp op) const { return ops_[static_cast<size_t>(op)].summary(); }

 private:
  std::array<LatencyHistogram, static_cast<size_t>(FuseOp::kCount)> ops_;
};

}  // namespace hgvfs::fs
