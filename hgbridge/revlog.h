#pragma once
// Revlog version 1: the append-only file format behind the changelog, the
// manifest and every filelog (`hg help internals.revlogs`,
// mercurial/revlogutils/constants.py, mercurial/revlog.py).
//
// Layout. The index (".i") is a sequence of 64-byte big-endian entries
// (">Qiiiiii20s12x": offset<<16|flags, compressed length, uncompressed
// length, base revision, link revision, p1, p2, node, padding). The first
// four bytes of entry 0 are overwritten by the header: version (1) in the low
// 16 bits, flags (inline = 1<<16, generaldelta = 1<<17) above. An inline
// revlog interleaves each revision's data after its entry in the ".i" file;
// otherwise the data is in the ".d" file at the entry's offset.
//
// Chunks. Each revision's data is one chunk whose first byte names its
// encoding: 'x' zlib, '(' zstd (the frame's magic), 'u' stored (drop the
// byte), '\0' stored (keep it), empty = empty. The decoded chunk is a full
// text when base == rev, else a delta (mpatch.h) against base (generaldelta)
// or against rev-1 (without generaldelta, where `base` is the chain start).
//
// Integrity. A revision's node is SHA-1(min(p1,p2) + max(p1,p2) + text);
// rawText checks it unless told not to. Censored revisions (flag 1<<15)
// answer ErrorKind::kCensored.
//
// Ownership and threads. A Revlog owns its file contents (read or mapped at
// open) and is immutable afterwards, so any number of threads may read one
// Revlog at once. The node→revision map is built on first use under a lock.

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "base/thread_annotations.h"
#include "hgbridge/node.h"

namespace hgvfs::hg {

inline constexpr size_t kIndexEntrySize = 64;
inline constexpr uint32_t kRevlogV1 = 1;
inline constexpr uint32_t kFlagInlineData = 1u << 16;
inline constexpr uint32_t kFlagGeneralDelta = 1u << 17;
inline constexpr uint16_t kRevisionFlagCensored = 1u << 15;
inline constexpr uint16_t kRevisionFlagEllipsis = 1u << 14;
inline constexpr uint16_t kRevisionFlagExtStored = 1u << 13;
inline constexpr uint16_t kRevisionFlagHasCopiesInfo = 1u << 12;

struct IndexEntry {
  uint64_t offset = 0;  // logical data offset (inline: as if not interleaved)
  uint16_t flags = 0;
  uint32_t compressedLength = 0;
  int32_t uncompressedLength = 0;  // full text length; negative = unknown
  Revision base;
  Revision linkRev;
  Revision p1;
  Revision p2;
  Node node;
  uint64_t dataPosition = 0;  // physical position of the chunk in its file
};

// The parsed index of one revlog. Checks every field that later reads rely
// on (revisions in range, data inside the file for inline revlogs) so that a
// Revlog built from it never reads out of bounds.
class RevlogIndex {
 public:
  // `indexFile` is the whole ".i" file. `name` is used in error messages.
  static Result<RevlogIndex> parse(ByteView indexFile, const std::string& name);

  size_t size() const { return entries_.size(); }
  const IndexEntry& operator[](Revision r) const { return entries_[r.value()]; }
  bool isInline() const { return inline_; }
  bool generalDelta() const { return generalDelta_; }
  uint32_t version() const { return version_; }

 private:
  std::vector<IndexEntry> entries_;
  bool inline_ = false;
  bool generalDelta_ = false;
  uint32_t version_ = 0;
};

// Bytes of a file, read into memory when small and mapped when large.
class FileBytes {
 public:
  static Result<std::shared_ptr<const FileBytes>> open(const std::string& path);
  static std::shared_ptr<const FileBytes> fromString(Bytes bytes);
  ~FileBytes();
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;
  ByteView view() const { return {data_, size_}; }

 private:
  FileBytes() = default;
  Bytes owned_;
  const char* data_ = nullptr;
  size_t size_ = 0;
  void* map_ = nullptr;
};

enum class VerifyHash { kYes, kNo };

class Revlog {
 public:
  // Opens "<path>.i" (and "<path>.d" when the revlog is not inline); `path`
  // is given with its ".i". A missing ".i" is NotFound; a revlog that is
  // empty (no file) can be opened with `missingOk`.
  static Result<std::shared_ptr<Revlog>> open(const std::string& indexPath, std::string name,
                                              bool missingOk = false);
  // Builds a revlog from in-memory files (tests, fuzzers).
  static Result<std::shared_ptr<Revlog>> fromBytes(Bytes index, Bytes data, std::string name);

  const std::string& name() const { return name_; }
  size_t size() const { return index_.size(); }
  bool empty() const { return index_.size() == 0; }
  Revision tip() const { return Revision(static_cast<int32_t>(index_.size()) - 1); }
  const RevlogIndex& index() const { return index_; }
  bool contains(Revision r) const {
    return r.value() >= 0 && static_cast<size_t>(r.value()) < index_.size();
  }
  const IndexEntry& entry(Revision r) const { return index_[r]; }
  Node node(Revision r) const { return r.isNull() ? kNullNode : index_[r].node; }

  // Revision of `node`; kNullRevision for the null node; NotFound otherwise.
  Result<Revision> rev(const Node& node) const;
  // Revisions whose hex node starts with `prefix` (at most `limit` of them).
  std::vector<Revision> revsWithHexPrefix(ByteView prefix, size_t limit = 2) const;

  // The decoded chunk of `r`: a full text or a delta.
  Result<Bytes> chunk(Revision r) const;
  // The revision whose text chunk(r) is a delta against (the entry's base
  // with generaldelta, else r-1), or nullopt when chunk(r) is a full text.
  // `r` must be a revision of this revlog.
  std::optional<Revision> deltaBase(Revision r) const;
  // The stored text of `r` (for a filelog, with its metadata header).
  Result<Bytes> rawText(Revision r, VerifyHash verify = VerifyHash::kYes) const;
  Result<Bytes> rawText(const Node& node, VerifyHash verify = VerifyHash::kYes) const;
  // Length of rawText(r) as the index records it (computed when unknown).
  Result<uint64_t> rawSize(Revision r) const;
  // Whether rawText(r) starts with `prefix`, following the delta chain back
  // to the bytes involved without building the whole text.
  Result<bool> rawTextStartsWith(Revision r, ByteView prefix) const;

  bool isCensored(Revision r) const { return index_[r].flags & kRevisionFlagCensored; }
  // The revisions whose chunks make up r, base first.
  Result<std::vector<Revision>> deltaChain(Revision r) const;

  // SHA-1(min(p1,p2) + max(p1,p2) + text): the node a text must have.
  static Node hashRevision(ByteView text, const Node& p1, const Node& p2);

 private:
  Revlog() = default;
  static Result<std::shared_ptr<Revlog>> build(std::shared_ptr<const FileBytes> indexFile,
                                               std::shared_ptr<const FileBytes> dataFile,
                                               std::string name, const std::string& dataPath);
  std::string where(Revision r) const;
  Result<ByteView> rawChunk(Revision r) const;
  const std::unordered_map<Node, Revision>& nodeMap() const;

  std::string name_;
  RevlogIndex index_;
  std::shared_ptr<const FileBytes> indexFile_;
  std::shared_ptr<const FileBytes> dataFile_;  // same as indexFile_ when inline

  // Lock order: cacheMutex_ is a leaf (nothing is locked while holding it).
  mutable Mutex cacheMutex_;
  mutable Revision cachedRev_ GUARDED_BY(cacheMutex_);
  mutable std::shared_ptr<const Bytes> cachedText_ GUARDED_BY(cacheMutex_);

  mutable std::once_flag nodeMapOnce_;
  mutable std::unordered_map<Node, Revision> nodeMap_;
};

// Decodes one chunk by its leading byte. `where` names it in errors.
Result<Bytes> decompressChunk(ByteView chunk, const std::string& where);

}  // namespace hgvfs::hg
