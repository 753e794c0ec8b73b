#include "fs/overlay_change.h"

#include <time.h>

namespace hgvfs::fs {

struct timespec now() {
  struct timespec t {};
  clock_gettime(CLOCK_REALTIME, &t);
  return t;
}

OverlayChange::~OverlayChange() {
  if (committed_) return;
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) (*it)();
  for (InodeNumber ino : created_) reaper_.discard(ino);
}

Status OverlayChange::commit() {
  HG_RETURN_IF_ERROR(overlay_.commit(batch_));
  committed_ = true;
  for (InodeNumber ino : unreachable_) reaper_.retire(ino);
  return okStatus();
}

void OverlayChange::putHeader(DirState& dir, InodeNumber dirIno, const OverlayDirHeader& header) {
  OverlayDirHeader before = dir.header;
  dir.header = header;
  batch_.putHeader(dirIno.value(), header);
  DirState* d = &dir;
  onUndo([d, before] { d->header = before; });
}

void OverlayChange::touch(DirState& dir, InodeNumber dirIno) {
  OverlayDirHeader header = dir.header;
  header.mtime = header.ctime = now();
  putHeader(dir, dirIno, header);
}

void OverlayChange::addEntry(DirState& dir, InodeNumber dirIno, ByteView name,
                             const OverlayEntry& rec) {
  dir.insert(name, rec);
  batch_.putEntry(dirIno.value(), name, rec);
  DirState* d = &dir;
  onUndo([d, key = Bytes(name)] { d->erase(key); });
}

void OverlayChange::setEntry(DirState& dir, InodeNumber dirIno, DirState::Entry& entry,
                             ByteView name, const OverlayEntry& rec) {
  OverlayEntry before = entry.rec;
  entry.rec = rec;
  batch_.putEntry(dirIno.value(), name, rec);
  DirState* d = &dir;
  onUndo([d, key = Bytes(name), before] {
    if (DirState::Entry* e = d->find(key)) e->rec = before;
  });
}

void OverlayChange::removeEntry(DirState& dir, InodeNumber dirIno, ByteView name, bool keepRecord) {
  const DirState::Entry* e = dir.find(name);
  if (!e) return;
  DirState::Entry saved = *e;
  dir.erase(name);
  if (!keepRecord) batch_.removeEntry(dirIno.value(), name);
  DirState* d = &dir;
  onUndo([d, key = Bytes(name), saved] { d->insertWithCookie(key, saved.rec, saved.cookie); });
}

Status OverlayChange::markMaterialized(DirState& dir, InodeNumber dirIno, ByteView name) {
  DirState::Entry* e = dir.find(name);
  if (!e) return corrupt("an entry is missing from its directory's overlay record");
  OverlayEntry rec = e->rec;
  rec.materialized = true;
  rec.id = hg::Node();
  rec.source.clear();
  setEntry(dir, dirIno, *e, name, rec);
  return okStatus();
}

}  // namespace hgvfs::fs
