// Fuzzes hg::Manifest::parse and Manifest::find (hgbridge/manifest.h).
//
// Input: a manifest text. When parse accepts it, the entries must spell the
// text back exactly (path NUL 40-hex flag NL, hex compared without case, as
// mercurial/cext/manifest.c reads either case), paths must be strictly
// increasing, and find must return each entry for its own path and nothing
// for a path that is not there.

#include <cstdint>
#include <string>

#include "hgbridge/manifest.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using hgvfs::ByteView;
  using hgvfs::hg::FileKind;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto m = hgvfs::hg::Manifest::parse(text, "fuzz");
  if (!m.ok()) return 0;

  FUZZ_CHECK(m->text() == text);
  size_t pos = 0;
  ByteView previous;
  for (const auto& e : m->entries()) {
    FUZZ_CHECK(!e.path.empty());
    FUZZ_CHECK(previous.empty() || previous < e.path);
    previous = e.path;
    // The entry's path is a view into the manifest's own text, at this line.
    FUZZ_CHECK(e.path.data() == m->text().data() + pos);
    pos += e.path.size();
    FUZZ_CHECK(pos < text.size() && text[pos] == '\0');
    ++pos;
    const std::string hex = e.node.hex();
    FUZZ_CHECK(text.size() - pos >= hex.size());
    for (size_t i = 0; i < hex.size(); ++i) FUZZ_CHECK(lower(text[pos + i]) == hex[i]);
    pos += hex.size();
    const char flag = hgvfs::hg::kindFlag(e.kind);
    if (e.kind != FileKind::kRegular) {
      FUZZ_CHECK(pos < text.size() && text[pos] == flag);
      ++pos;
    }
    FUZZ_CHECK(pos < text.size() && text[pos] == '\n');
    ++pos;
    FUZZ_CHECK(m->find(e.path) == &e);
  }
  FUZZ_CHECK(pos == text.size());

  // Paths that are not in the manifest: a prefix and an extension of each
  // of a few entries' paths (unless that is itself an entry).
  const auto entries = m->entries();
  for (size_t i = 0; i < entries.size(); i += 1 + entries.size() / 8) {
    std::string p(entries[i].path);
    for (const std::string& q : {p + "/", p.substr(0, p.size() - 1), p + std::string(1, '\0')}) {
      const auto* hit = m->find(q);
      if (hit) FUZZ_CHECK(hit->path == q);
    }
  }
  FUZZ_CHECK(m->find("") == nullptr);
  return 0;
}
