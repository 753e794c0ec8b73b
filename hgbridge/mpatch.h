#pragma once
// Mercurial's binary delta format (mercurial/mpatch.c, mercurial/mdiff.py).
//
// A delta is a sequence of hunks, each a 12-byte big-endian header
// (start, end, length) followed by `length` bytes that replace base[start:end].
// Hunks are sorted and do not overlap. A delta chain is applied from the base
// text upwards; applyDeltas composes the whole chain as a list of pieces
// (views into the base and the deltas) and copies each output byte once, so
// a long chain does not copy the text once per delta.
//
// Pure functions; any thread. Views passed in must outlive the call only.

#include <span>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace hgvfs::hg {

// Applies `deltas` in order to `base`. Corrupt (never a crash) when a hunk is
// truncated, out of order, or reaches past the text it patches.
Result<Bytes> applyDeltas(ByteView base, std::span<const ByteView> deltas);

// The length of the text `delta` produces from a text of `baseLength`
// bytes; Corrupt under the same conditions as applyDeltas.
Result<size_t> patchedLength(size_t baseLength, ByteView delta);

// One hunk of a delta: base[start:end] is replaced by `data`, a view into
// the delta.
struct DeltaHunk {
  size_t start;
  size_t end;
  ByteView data;
};

// The hunks of `delta`, in order, checked as applyDeltas checks them against
// a base of `baseLength` bytes (SIZE_MAX when the length is not known).
Result<std::vector<DeltaHunk>> parseDelta(ByteView delta, size_t baseLength);

// Follows output offset `offset` of a text made by applying `delta` back to
// where its byte comes from: either a byte inside the delta's data (returned
// as {true, the byte}) or an offset in the base text ({false, offset}).
struct DeltaOrigin {
  bool inDelta;
  size_t value;  // the byte when inDelta, else the offset in the base
};
Result<DeltaOrigin> traceOffset(ByteView delta, size_t offset);

}  // namespace hgvfs::hg
