#include "hgbridge/manifest.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace hgvfs::hg {
namespace {

constexpr std::array<int8_t, 256> makeHexTable() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int c = '0'; c <= '9'; ++c) t[c] = static_cast<int8_t>(c - '0');
  for (int c = 'a'; c <= 'f'; ++c) t[c] = static_cast<int8_t>(c - 'a' + 10);
  for (int c = 'A'; c <= 'F'; ++c) t[c] = static_cast<int8_t>(c - 'A' + 10);
  return t;
}
constexpr std::array<int8_t, 256> kHexTable = makeHexTable();

// Decodes 40 hex digits at `p`; false if any is not a hex digit.
inline bool decodeNode(const char* p, Node& out) {
  uint8_t raw[Node::kSize];
  int bad = 0;
  for (size_t i = 0; i < Node::kSize; ++i) {
    int hi = kHexTable[static_cast<uint8_t>(p[2 * i])];
    int lo = kHexTable[static_cast<uint8_t>(p[2 * i + 1])];
    bad |= hi | lo;  // negative if either was invalid
    raw[i] = static_cast<uint8_t>((hi << 4) | (lo & 15));
  }
  if (bad < 0) return false;
  out = Node::fromRaw(raw);
  return true;
}

}  // namespace

char kindFlag(FileKind kind) {
  switch (kind) {
    case FileKind::kExecutable:
      return 'x';
    case FileKind::kSymlink:
      return 'l';
    case FileKind::kRegular:
      break;
  }
  return '\0';
}

Result<Manifest> Manifest::parse(Bytes text, const std::string& where) {
  Manifest m;
  m.text_ = std::make_unique<Bytes>(std::move(text));
  const char* data = m.text_->data();
  const size_t size = m.text_->size();
  // A line is at least "p\0" + 40 hex + "\n".
  m.entries_.reserve(size / 64 + 1);
  size_t pos = 0;
  ByteView previous;
  auto bad = [&](const std::string& what) {
    return corrupt("manifest " + what + " at byte " + std::to_string(pos), where);
  };
  while (pos < size) {
    const char* nul = static_cast<const char*>(std::memchr(data + pos, '\0', size - pos));
    if (!nul) return bad("line without a NUL");
    size_t pathLen = static_cast<size_t>(nul - (data + pos));
    if (pathLen == 0) return bad("entry with an empty path");
    size_t hexAt = pathLen + pos + 1;
    if (size - hexAt < Node::kHexSize + 1) return bad("entry truncated");
    ManifestEntry e;
    e.path = ByteView(data + pos, pathLen);
    if (!decodeNode(data + hexAt, e.node)) return bad("node is not 40 hex digits");
    size_t flagAt = hexAt + Node::kHexSize;
    size_t next;
    if (data[flagAt] == '\n') {
      e.kind = FileKind::kRegular;
      next = flagAt + 1;
    } else {
      if (flagAt + 1 >= size || data[flagAt + 1] != '\n') return bad("unknown flags");
      switch (data[flagAt]) {
        case 'x':
          e.kind = FileKind::kExecutable;
          break;
        case 'l':
          e.kind = FileKind::kSymlink;
          break;
        case 't':
          return unsupported("tree manifest entry (treemanifest)", where);
        default:
          return bad("unknown flag");
      }
      next = flagAt + 2;
    }
    if (!previous.empty() && !(previous < e.path)) return bad("paths out of order");
    if (std::memchr(e.path.data(), '\n', e.path.size())) return bad("path with a newline");
    previous = e.path;
    m.entries_.push_back(e);
    pos = next;
  }
  return m;
}

const ManifestEntry* Manifest::find(ByteView path) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), path,
                             [](const ManifestEntry& e, ByteView p) { return e.path < p; });
  if (it == entries_.end() || it->path != path) return nullptr;
  return &*it;
}

}  // namespace hgvfs::hg
