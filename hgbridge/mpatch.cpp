#include "hgbridge/mpatch.h"

#include <cstring>
#include <string>
#include <vector>

namespace hgvfs::hg {
namespace {

constexpr size_t kHunkHeader = 12;

// Iterates the hunks of one delta, checking each against the previous one
// and the length of the text being patched (mpatch.c's rules).
class HunkReader {
 public:
  HunkReader(ByteView delta, size_t textLength) : delta_(delta), textLength_(textLength) {}

  // Returns false at the end; sets error_ when the delta is malformed.
  bool next(DeltaHunk& hunk) {
    if (pos_ == delta_.size()) return false;
    if (!fits(delta_, pos_, kHunkHeader)) return fail("truncated hunk header");
    size_t start = be32At(delta_, pos_);
    size_t end = be32At(delta_, pos_ + 4);
    size_t len = be32At(delta_, pos_ + 8);
    pos_ += kHunkHeader;
    if (!fits(delta_, pos_, len)) return fail("truncated hunk data");
    if (start > end) return fail("hunk start after its end");
    if (start < last_) return fail("hunks out of order");
    if (end > textLength_) return fail("hunk past the end of the text");
    hunk = {start, end, delta_.substr(pos_, len)};
    pos_ += len;
    last_ = end;
    return true;
  }
  bool failed() const { return !error_.empty(); }
  Error error() const { return corrupt("invalid delta: " + error_); }

 private:
  bool fail(const char* why) {
    error_ = why;
    return false;
  }
  ByteView delta_;
  size_t textLength_;
  size_t pos_ = 0;
  size_t last_ = 0;
  std::string error_;
};

// The text being built: a list of byte ranges in the base and the deltas.
struct Piece {
  const char* data;
  size_t len;
};

// Appends text[from, to) of the piece list `in` (whose pieces are walked with
// the cursor idx/offsetInPiece) to `out`.
class PieceCursor {
 public:
  explicit PieceCursor(const std::vector<Piece>& pieces) : pieces_(pieces) {}

  void copyTo(size_t length, std::vector<Piece>& out) {
    while (length > 0) {
      const Piece& p = pieces_[idx_];
      size_t take = std::min(length, p.len - off_);
      out.push_back({p.data + off_, take});
      advanceWithin(take);
      length -= take;
    }
  }
  void skip(size_t length) {
    while (length > 0) {
      size_t take = std::min(length, pieces_[idx_].len - off_);
      advanceWithin(take);
      length -= take;
    }
  }

 private:
  void advanceWithin(size_t n) {
    off_ += n;
    if (off_ == pieces_[idx_].len) {
      ++idx_;
      off_ = 0;
    }
  }
  const std::vector<Piece>& pieces_;
  size_t idx_ = 0;
  size_t off_ = 0;
};

}  // namespace

Result<size_t> patchedLength(size_t baseLength, ByteView delta) {
  HunkReader reader(delta, baseLength);
  DeltaHunk h;
  size_t length = baseLength;
  while (reader.next(h)) length = length - (h.end - h.start) + h.data.size();
  if (reader.failed()) return reader.error();
  return length;
}

Result<std::vector<DeltaHunk>> parseDelta(ByteView delta, size_t baseLength) {
  HunkReader reader(delta, baseLength);
  std::vector<DeltaHunk> hunks;
  DeltaHunk h;
  while (reader.next(h)) hunks.push_back(h);
  if (reader.failed()) return reader.error();
  return hunks;
}

Result<Bytes> applyDeltas(ByteView base, std::span<const ByteView> deltas) {
  if (deltas.empty()) return Bytes(base);
  std::vector<Piece> pieces;
  if (!base.empty()) pieces.push_back({base.data(), base.size()});
  size_t length = base.size();
  std::vector<Piece> next;
  for (ByteView delta : deltas) {
    next.clear();
    next.reserve(pieces.size() + 8);
    HunkReader reader(delta, length);
    PieceCursor cursor(pieces);
    size_t pos = 0;
    size_t newLength = 0;
    DeltaHunk h;
    while (reader.next(h)) {
      cursor.copyTo(h.start - pos, next);
      cursor.skip(h.end - h.start);
      if (!h.data.empty()) next.push_back({h.data.data(), h.data.size()});
      newLength += (h.start - pos) + h.data.size();
      pos = h.end;
    }
    if (reader.failed()) return reader.error();
    cursor.copyTo(length - pos, next);
    newLength += length - pos;
    pieces.swap(next);
    length = newLength;
  }
  Bytes out;
  out.resize(length);
  char* dst = out.data();
  for (const Piece& p : pieces) {
    std::memcpy(dst, p.data, p.len);
    dst += p.len;
  }
  return out;
}

Result<DeltaOrigin> traceOffset(ByteView delta, size_t offset) {
  HunkReader reader(delta, SIZE_MAX);
  DeltaHunk h;
  size_t outPos = 0;
  size_t inPos = 0;
  while (reader.next(h)) {
    size_t gap = h.start - inPos;
    if (offset < outPos + gap) return DeltaOrigin{false, inPos + (offset - outPos)};
    outPos += gap;
    if (offset < outPos + h.data.size()) {
      return DeltaOrigin{true, static_cast<uint8_t>(h.data[offset - outPos])};
    }
    outPos += h.data.size();
    inPos = h.end;
  }
  if (reader.failed()) return reader.error();
  return DeltaOrigin{false, inPos + (offset - outPos)};
}

}  // namespace hgvfs::hg
