#pragma once
// One change to the overlay: the records it writes in one transaction, and
// how to undo its in-memory effects if that transaction fails (a full
// disk), so that memory and disk never disagree.
//
// The edit helpers change a loaded directory (DirState) in memory, add the
// matching record writes to the batch, and remember how to undo both; an
// operation makes its edits, commits, and only then touches what cannot be
// undone (the inode table's names). Overlay files the change created are
// deleted if it fails; files it makes unreachable are deleted after it
// commits. Both through the operation's FileReaper, after the namespace
// lock is let go.
//
// Thread rules: an OverlayChange lives inside one exclusive hold of the
// namespace lock (declared after the lock, so that a failed change is
// undone before the lock goes); its undo actions run under that lock.

#include <functional>
#include <vector>

#include "fs/inode_table.h"
#include "fs/overlay.h"
#include "fs/overlay_file.h"

namespace hgvfs::fs {

class OverlayChange {
 public:
  OverlayChange(Overlay& overlay, FileReaper& reaper) : overlay_(overlay), reaper_(reaper) {}
  // Unless committed: undoes every in-memory effect, newest first, and
  // gives the overlay files it created to the reaper.
  ~OverlayChange();
  OverlayChange(const OverlayChange&) = delete;
  OverlayChange& operator=(const OverlayChange&) = delete;

  OverlayBatch& batch() { return batch_; }
  void onUndo(std::function<void()> undo) { undo_.push_back(std::move(undo)); }
  // An overlay file made for this change: deleted if it fails.
  void createdFile(InodeNumber ino) { created_.push_back(ino); }
  // An overlay file no record will name once this change commits.
  void removeFileAfter(InodeNumber ino) { unreachable_.push_back(ino); }
  // The transaction.
  Status commit();

  // Edits of the loaded directory `dir` (inode `dirIno`).
  void putHeader(DirState& dir, InodeNumber dirIno, const OverlayDirHeader& header);
  // Its mtime and ctime become now (an entry was added, removed or renamed).
  void touch(DirState& dir, InodeNumber dirIno);
  void addEntry(DirState& dir, InodeNumber dirIno, ByteView name, const OverlayEntry& rec);
  // Replaces the record of an existing entry (its cookie stays).
  void setEntry(DirState& dir, InodeNumber dirIno, DirState::Entry& entry, ByteView name,
                const OverlayEntry& rec);
  // Removes an existing entry; the record goes from the batch unless
  // `keepRecord` (a put of the same key follows in this change).
  void removeEntry(DirState& dir, InodeNumber dirIno, ByteView name, bool keepRecord = false);
  // The entry `name` of `dir` now lives in the overlay: materialized, with
  // no revision object. Corrupt when `dir` has no such entry.
  Status markMaterialized(DirState& dir, InodeNumber dirIno, ByteView name);

 private:
  Overlay& overlay_;
  FileReaper& reaper_;
  OverlayBatch batch_;
  std::vector<std::function<void()>> undo_;
  std::vector<InodeNumber> created_;
  std::vector<InodeNumber> unreachable_;
  bool committed_ = false;
};

// The time to give a change.
struct timespec now();

}  // namespace hgvfs::fs
