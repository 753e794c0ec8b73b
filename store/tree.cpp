#include "store/tree.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "hgbridge/sha1.h"

namespace hgvfs::store {
namespace {

constexpr uint8_t kTreeFormat = 1;

void putBe32(Bytes& out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out.append(b, 4);
}

}  // namespace

Tree::Tree(std::vector<TreeEntry> entries) : entries_(std::move(entries)) {}

std::optional<std::string> invalidNameReason(ByteView name) {
  if (name.empty()) return "empty name";
  if (name == "." || name == "..") return "name is '.' or '..'";
  if (name == ".hg") return "name is '.hg'";
  if (name.size() > NAME_MAX) return "name longer than NAME_MAX";
  if (name.find('/') != ByteView::npos) return "name contains '/'";
  if (name.find('\0') != ByteView::npos) return "name contains NUL";
  return std::nullopt;
}

Bytes Tree::serialize() const {
  size_t size = 5;
  for (const auto& e : entries_) size += 3 + e.name.size() + hg::Node::kSize;
  Bytes out;
  out.reserve(size);
  out.push_back(static_cast<char>(kTreeFormat));
  putBe32(out, static_cast<uint32_t>(entries_.size()));
  for (const auto& e : entries_) {
    out.push_back(static_cast<char>(e.kind));
    out.push_back(static_cast<char>(e.name.size() >> 8));
    out.push_back(static_cast<char>(e.name.size() & 0xFF));
    out += e.name;
    out += e.id.view();
  }
  return out;
}

TreeId Tree::computeId() const { return TreeId(hg::sha1Of(serialize())); }

Result<Tree> Tree::deserialize(ByteView data, const std::string& where) {
  auto bad = [&](const char* what) { return corrupt(std::string("tree ") + what, where); };
  if (!fits(data, 0, 5)) return bad("truncated");
  if (u8At(data, 0) != kTreeFormat) return bad("has an unknown format");
  uint32_t count = be32At(data, 1);
  size_t pos = 5;
  std::vector<TreeEntry> entries;
  entries.reserve(std::min<size_t>(count, data.size() / 23));
  for (uint32_t i = 0; i < count; ++i) {
    if (!fits(data, pos, 3)) return bad("truncated");
    uint8_t kind = u8At(data, pos);
    size_t len = be16At(data, pos + 1);
    pos += 3;
    if (kind > static_cast<uint8_t>(EntryKind::kDirectory)) return bad("has an unknown kind");
    if (!fits(data, pos, len + hg::Node::kSize)) return bad("truncated");
    TreeEntry e;
    e.name = Bytes(data.substr(pos, len));
    e.kind = static_cast<EntryKind>(kind);
    e.id = hg::Node::fromRaw(data.data() + pos + len);
    pos += len + hg::Node::kSize;
    // The builder never stores such a name; one read back means damage, and
    // handing it to the kernel ("..", "a/b") would be a wrong answer.
    if (invalidNameReason(e.name)) return bad("has an invalid entry name");
    if (!entries.empty() && !(entries.back().name < e.name)) return bad("is not sorted");
    entries.push_back(std::move(e));
  }
  if (pos != data.size()) return bad("has trailing bytes");
  return Tree(std::move(entries));
}

const TreeEntry* Tree::find(ByteView name) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), name,
                             [](const TreeEntry& e, ByteView n) { return ByteView(e.name) < n; });
  if (it == entries_.end() || it->name != name) return nullptr;
  return &*it;
}

size_t Tree::memoryUsage() const {
  size_t n = sizeof(Tree) + entries_.capacity() * sizeof(TreeEntry);
  for (const auto& e : entries_) {
    if (e.name.size() > 15) n += e.name.capacity();
  }
  return n;
}

}  // namespace hgvfs::store
