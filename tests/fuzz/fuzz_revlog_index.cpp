// Fuzzes the revlog reader (hgbridge/revlog.h): RevlogIndex::parse on the
// index bytes, then Revlog::fromBytes and every read of (up to 64) revisions:
// chunk, rawText with and without the hash check, rawSize, deltaChain,
// rawTextStartsWith, and node → revision lookups.
//
// Input: records (fuzz_util.h) — the ".i" file, then the ".d" file (absent
// or empty for inline revlogs). tests/fuzz/make-seeds writes real revlogs
// made by hg in this form. Checks beyond "no crash": what the index parse
// accepts, fromBytes sees the same way; rawTextStartsWith agrees with the
// text itself; the hash-checked text equals the unchecked one; a revision
// found by node has that node.

#include <algorithm>
#include <cstdint>
#include <string>

#include "hgbridge/revlog.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hgvfs;
  using namespace hgvfs::hg;
  auto records = hgvfs::fuzz::splitRecords(data, size, 2);
  const ByteView indexBytes = records.empty() ? ByteView() : records[0];
  const ByteView dataBytes = records.size() > 1 ? records[1] : ByteView();

  auto index = RevlogIndex::parse(indexBytes, "fuzz");
  auto revlog = Revlog::fromBytes(Bytes(indexBytes), Bytes(dataBytes), "fuzz");
  if (!revlog.ok()) return 0;
  // The data file only adds data: an index that opens as a revlog parses.
  FUZZ_CHECK(index.ok());
  const Revlog& rl = **revlog;
  FUZZ_CHECK(rl.size() == index->size());

  const size_t n = std::min<size_t>(rl.size(), 64);
  for (size_t i = 0; i < n; ++i) {
    const Revision r(static_cast<int32_t>(i));
    FUZZ_CHECK(rl.contains(r));
    (void)rl.chunk(r);
    (void)rl.rawSize(r);
    (void)rl.deltaChain(r);

    auto raw = rl.rawText(r, VerifyHash::kNo);
    auto checked = rl.rawText(r, VerifyHash::kYes);
    if (checked.ok()) {
      FUZZ_CHECK(raw.ok());
      FUZZ_CHECK(*checked == *raw);
    }
    for (ByteView prefix : {ByteView("\1\n"), ByteView(""), ByteView("x")}) {
      auto starts = rl.rawTextStartsWith(r, prefix);
      if (starts.ok() && raw.ok()) FUZZ_CHECK(*starts == raw->starts_with(prefix));
    }

    const Node node = rl.node(r);
    auto found = rl.rev(node);
    if (found.ok() && !found->isNull()) FUZZ_CHECK(rl.node(*found) == node);
    const std::string hex = node.hex();
    for (Revision h : rl.revsWithHexPrefix(ByteView(hex).substr(0, 6), 4)) {
      FUZZ_CHECK(rl.contains(h));
      FUZZ_CHECK(rl.node(h).hex().starts_with(hex.substr(0, 6)));
    }
  }
  FUZZ_CHECK(!rl.rawText(Revision(static_cast<int32_t>(rl.size())), VerifyHash::kNo).ok());
  return 0;
}
