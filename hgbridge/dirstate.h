#pragma once
// The working directory's dirstate in Mercurial's v1 format (.hg/dirstate):
// reading it, writing it byte for byte as hg does, and a fast scan that
// keeps only the entries a status call cares about.
//
// Layout (mercurial/pure/parsers.py parse_dirstate / pack_dirstate):
//   p1 (20 bytes) | p2 (20 bytes) | entries, each
//   ">cllll": state char, mode, size, mtime, name length (all big-endian,
//   signed 32-bit) | name bytes, where name is "path" or "path\0source" for
//   a copy (the source is everything after the first NUL).
// An empty file means null parents and no entries. Entries keep the order of
// the file; hg writes them in its dict's order, so none is implied.
//
// What the fields mean to hg 6.3 (DirstateItem.from_v1_data, dirstate.py
// status):
//   'n' size >= 0, mtime >= 0  clean if the file's size, exec bit and mtime
//                              still match; size or exec differs → modified;
//                              only mtime differs → content compared.
//   'n' size >= 0, mtime -1    size/exec differ → modified; else compared.
//   'n' size -1 (NonNormal)    tracked, nothing cached → content compared.
//   'n' size -2 (FromP2)       taken from the second parent → modified.
//   'n' with a copy source     modified (whatever size and mtime say).
//   'a'                        added.
//   'r'                        removed, on disk or not (size -1: was merged;
//                              -2: came from p2; else 0).
//   'm'                        merged → modified (size -2).
// Any tracked entry (n/a/m) whose file is missing is deleted ('!'). Only
// mode & 0o100 (exec) is compared; sizes and mtimes are stored & 0x7fffffff.
// hg writes mode 0 whenever it keeps no size (size < 0, 'a', 'r') and mtime 0
// for 'r'; serializeDirstateV1 writes whatever the entries hold, so an
// entry meant to match hg byte for byte should follow that.
//
// The mount's own format (docs/DIRSTATE.md) is this layout with one more
// state, 'u': a file of p1 the working copy does not track (mode, size and
// mtime 0, never a copy). Parsing accepts it only when asked for
// DirstateFormat::kHgvfs; plain v1 refuses it as hg does.
//
// Ownership: parse results own their bytes; DirstateEntryView looks into the
// caller's buffer for the duration of the callback only.
// Thread rules: plain functions and values; a DirstateV1Writer is used by
// one thread at a time.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "hgbridge/node.h"

namespace hgvfs::hg {

// Which states a parse accepts: v1's n/a/r/m, or those and 'u' (the mount's
// format, docs/DIRSTATE.md).
enum class DirstateFormat { kV1, kHgvfs };

inline constexpr char kDirstateStateUntracked = 'u';   // kHgvfs only
inline constexpr int32_t kDirstateSizeNonNormal = -1;  // NONNORMAL in parsers.py
inline constexpr int32_t kDirstateSizeFromP2 = -2;     // FROM_P2
inline constexpr int32_t kDirstateMtimeUnset = -1;     // AMBIGUOUS_TIME: compare content
inline constexpr int32_t kDirstateModeRegular = 0100644;
inline constexpr int32_t kDirstateModeExecutable = 0100755;
inline constexpr int32_t kDirstateModeSymlink = 0120777;
inline constexpr size_t kDirstateHeaderSize = 40;
inline constexpr size_t kDirstateEntryHeaderSize = 17;  // struct.calcsize(">cllll")

// A size or mtime as hg stores it (dirstate.py _rangemask).
inline int32_t dirstateRange(uint64_t value) { return static_cast<int32_t>(value & 0x7fffffff); }

// One entry, borrowed from the buffer being parsed.
struct DirstateEntryView {
  char state;  // 'n', 'a', 'r' or 'm' ('u' in DirstateFormat::kHgvfs)
  int32_t mode;
  int32_t size;
  int32_t mtime;
  ByteView path;
  std::optional<ByteView> copySource;
  size_t offset;  // of the entry's header in the buffer

  // Whether status cannot call it clean from size and mtime alone because of
  // its state: not 'n', a negative size, or a copy. ('n' with mtime -1 is
  // not included: it is only "compare the content".)
  bool isNonNormal() const { return state != 'n' || size < 0 || copySource.has_value(); }
};

struct DirstateEntry {
  char state = 'n';
  int32_t mode = 0;
  int32_t size = 0;
  int32_t mtime = 0;
  Bytes path;
  std::optional<Bytes> copySource;

  static DirstateEntry from(const DirstateEntryView& v);
  bool isNonNormal() const { return state != 'n' || size < 0 || copySource.has_value(); }
  friend bool operator==(const DirstateEntry&, const DirstateEntry&) = default;
};

struct Dirstate {
  Node p1, p2;  // p2 is null unless a merge is in progress
  std::vector<DirstateEntry> entries;
};

// What a status call needs: the parents and the entries that are not plain
// 'n' entries (isNonNormal), with the total count — no object per clean file.
struct DirstateSummary {
  Node p1, p2;
  std::vector<DirstateEntry> nonNormal;  // file order; copies are among them
  size_t totalEntries = 0;
};

// Calls `visit` for each entry in file order. Corrupt (naming `where` and
// the offset) for 1..39 bytes, a truncated entry or name, or a state hg does
// not know — the cases where hg itself refuses the file — and, in kHgvfs,
// a 'u' entry with a copy source. The parents are returned; an empty
// buffer gives null parents and no calls.
Result<std::pair<Node, Node>> visitDirstateV1(
    ByteView data, const std::function<void(const DirstateEntryView&)>& visit,
    const std::string& where = "dirstate", DirstateFormat format = DirstateFormat::kV1);

Result<Dirstate> parseDirstateV1(ByteView data, const std::string& where = "dirstate",
                                 DirstateFormat format = DirstateFormat::kV1);
Result<DirstateSummary> parseDirstateNonNormal(ByteView data,
                                               const std::string& where = "dirstate");

// The bytes of `d`, as pack_dirstate writes them: parse followed by serialize
// reproduces any input parse accepts, except that an empty file comes back as
// 40 zero bytes (null parents), which hg reads the same way.
Bytes serializeDirstateV1(const Dirstate& d);

// Writes a dirstate entry by entry through `sink` in chunks of about
// `chunkBytes`, so a dirstate for a whole manifest never exists in memory at
// once. The first sink error stops the writer and is returned by every later
// call. finish() flushes what is left; the caller then syncs and renames.
// A writer for DirstateFormat::kHgvfs also writes 'u' entries.
class DirstateV1Writer {
 public:
  using Sink = std::function<Status(ByteView)>;
  DirstateV1Writer(const Node& p1, const Node& p2, Sink sink, size_t chunkBytes = size_t{1} << 16,
                   DirstateFormat format = DirstateFormat::kV1);

  // InvalidArgument for a path that is empty or holds a NUL, a name longer
  // than the format's 31 bits, a state the writer's format lacks, or a 'u'
  // entry with a copy source or a mode, size or mtime other than 0; the
  // entry is then not written.
  Status add(char state, int32_t mode, int32_t size, int32_t mtime, ByteView path,
             std::optional<ByteView> copySource = std::nullopt);
  Status add(const DirstateEntry& e);
  // A 'u' entry (kHgvfs writers only).
  Status addUntracked(ByteView path) { return add(kDirstateStateUntracked, 0, 0, 0, path); }
  Status finish();
  size_t entriesWritten() const { return count_; }

 private:
  Status flush();

  Sink sink_;
  size_t chunkBytes_;
  DirstateFormat format_;
  Bytes buffer_;
  size_t count_ = 0;
  std::optional<Error> failed_;
};

}  // namespace hgvfs::hg
