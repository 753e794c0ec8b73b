#pragma once
// A full check of an overlay (overlay.h) for `hgvfs doctor`, and its repair.
//
// Overlay::check() (run at every mount) trusts the crash-safety ordering and
// deletes what a killed daemon can leave behind. Overlay::examine() trusts
// nothing: it reads every record as raw bytes and reports each broken
// invariant as one finding, so a damaged overlay (a crash on a disk that
// lost writes, a copied or hand-edited client directory) is described
// before anything is changed. The invariants:
//  - every record decodes (a directory header, an entry);
//  - every materialized file or symlink entry has its overlay file, and
//    every materialized directory entry has a directory record;
//  - every directory record is reached from the root by exactly one entry
//    (the parent chain);
//  - every overlay file is named by a reachable entry;
//  - the inode mark is above every number in use.
//
// With fix, each finding is repaired without losing user bytes: an overlay
// file no reachable entry names is moved (never deleted) to the lost+found
// directory the caller gives, under a name that says where it came from; an
// entry that names nothing (its file or directory record gone) or that is
// corrupt is removed; a second entry reaching the same directory is
// removed; a corrupt directory header is rewritten with default fields; the
// mark is raised.
//
// Thread rules: only while no daemon serves the overlay (the caller checks
// that); the overlay's own thread rules otherwise.

#include <string>

namespace hgvfs::fs {

struct OverlayFinding {
  enum class Kind {
    kCorruptRecord,      // a record that does not decode
    kRecordWithoutFile,  // a materialized entry whose file or directory record is gone
    kFileWithoutRecord,  // an overlay file no reachable entry names
    kBrokenParentChain,  // a directory record unreachable, or reached twice
    kInodeMarkTooLow,    // the inode mark at or below a number in use
  };
  Kind kind;
  std::string what;  // one line: what is wrong and where
  std::string fix;   // one line: what the repair does (or did)
  bool fixed = false;
};

const char* findingKindName(OverlayFinding::Kind kind);

}  // namespace hgvfs::fs
