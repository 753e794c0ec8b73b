#pragma once
// The number of an inode, as the kernel knows it: 64-bit, handed out on
// first lookup, never reused within a client (the overlay keeps a
// high-water mark), root 1. A strong type, so that a count, a cookie or a
// size is never passed where an inode is meant.
//
// Thread rules: a plain value.

#include <cstdint>

namespace hgvfs::fs {

class InodeNumber {
 public:
  constexpr InodeNumber() = default;
  constexpr explicit InodeNumber(uint64_t v) : v_(v) {}
  constexpr uint64_t value() const { return v_; }
  constexpr bool valid() const { return v_ != 0; }
  friend constexpr bool operator==(InodeNumber, InodeNumber) = default;

 private:
  uint64_t v_ = 0;
};

inline constexpr InodeNumber kRootInode{1};
// `.hg` in the mount root: a symlink to the client's own .hg directory on
// local disk (FileSystem::setDotHg). Not part of the overlay; it cannot be
// changed through the mount.
inline constexpr InodeNumber kDotHgInode{UINT64_MAX - 1};

}  // namespace hgvfs::fs
