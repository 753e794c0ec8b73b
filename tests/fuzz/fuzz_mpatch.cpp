// Fuzzes hg::applyDeltas, patchedLength and traceOffset (hgbridge/mpatch.h).
//
// Input: records (fuzz_util.h) — the base text, then up to 8 deltas applied
// in order. Beyond "no crash", the results are checked against a plain
// hunk-by-hunk reference written from mercurial/mpatch.c's rules (a hunk is
// start, end, length as big-endian int32; start <= end, hunks sorted and not
// overlapping, end within the text, data inside the delta), so a delta the
// library accepts and Mercurial refuses (or the reverse) is a finding too.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hgbridge/mpatch.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using hgvfs::ByteView;

uint32_t be32(ByteView d, size_t o) {
  return (uint32_t{static_cast<uint8_t>(d[o])} << 24) |
         (uint32_t{static_cast<uint8_t>(d[o + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(d[o + 2])} << 8) | uint32_t{static_cast<uint8_t>(d[o + 3])};
}

// mpatch.c, one delta at a time; nullopt where it reports an error.
std::optional<std::string> referencePatch(const std::string& text, ByteView delta) {
  std::string out;
  size_t pos = 0;
  size_t last = 0;
  while (pos < delta.size()) {
    if (delta.size() - pos < 12) return std::nullopt;
    int32_t start = static_cast<int32_t>(be32(delta, pos));
    int32_t end = static_cast<int32_t>(be32(delta, pos + 4));
    int32_t len = static_cast<int32_t>(be32(delta, pos + 8));
    if (start < 0 || start > end || len < 0) return std::nullopt;
    pos += 12;
    if (delta.size() - pos < static_cast<size_t>(len)) return std::nullopt;
    if (static_cast<size_t>(start) < last || static_cast<size_t>(end) > text.size()) {
      return std::nullopt;
    }
    out.append(text, last, static_cast<size_t>(start) - last);
    out.append(delta.substr(pos, static_cast<size_t>(len)));
    pos += static_cast<size_t>(len);
    last = static_cast<size_t>(end);
  }
  out.append(text, last, std::string::npos);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto records = hgvfs::fuzz::splitRecords(data, size, 9);
  if (records.empty()) return 0;
  const ByteView base = records[0];
  std::vector<ByteView> deltas(records.begin() + 1, records.end());

  // Reference, delta by delta.
  std::optional<std::string> expected = std::string(base);
  for (ByteView d : deltas) {
    if (!expected) break;
    expected = referencePatch(*expected, d);
  }

  auto result = hgvfs::hg::applyDeltas(base, deltas);
  FUZZ_CHECK(result.ok() == expected.has_value());
  if (result.ok()) FUZZ_CHECK(*result == *expected);

  // patchedLength follows the same chain of lengths and fails where it does.
  bool lengthsOk = true;
  size_t length = base.size();
  for (ByteView d : deltas) {
    auto l = hgvfs::hg::patchedLength(length, d);
    if (!l.ok()) {
      lengthsOk = false;
      break;
    }
    length = *l;
  }
  FUZZ_CHECK(lengthsOk == result.ok());
  if (result.ok()) FUZZ_CHECK(length == result->size());

  // traceOffset on the first delta: every output byte comes from where it says.
  if (!deltas.empty()) {
    std::optional<std::string> one = referencePatch(std::string(base), deltas[0]);
    if (one) {
      const size_t n = one->size();
      const size_t probes[] = {0, 1, n / 3, n / 2, n > 0 ? n - 1 : 0};
      for (size_t off : probes) {
        if (off >= n) continue;
        auto origin = hgvfs::hg::traceOffset(deltas[0], off);
        FUZZ_CHECK(origin.ok());
        if (origin->inDelta) {
          FUZZ_CHECK(origin->value == static_cast<uint8_t>((*one)[off]));
        } else {
          FUZZ_CHECK(origin->value < base.size());
          FUZZ_CHECK(base[origin->value] == (*one)[off]);
        }
      }
    }
    // Offsets past the end must not crash either.
    (void)hgvfs::hg::traceOffset(deltas[0], size_t{1} << 40);
  }
  return 0;
}
