#include "hgbridge/filelog.h"

namespace hgvfs::hg {
namespace {

constexpr ByteView kMetaMarker("\1\n", 2);

}  // namespace

Result<FileMetadata> parseFileMetadata(ByteView raw, const std::string& where) {
  FileMetadata meta;
  if (raw.substr(0, 2) != kMetaMarker) return meta;
  size_t end = raw.find(kMetaMarker, 2);
  if (end == ByteView::npos) return corrupt("unterminated file metadata", where);
  meta.headerLength = end + 2;
  ByteView block = raw.substr(2, end - 2);
  size_t start = 0;
  while (start < block.size()) {
    size_t nl = block.find('\n', start);
    if (nl == ByteView::npos) nl = block.size();
    ByteView line = block.substr(start, nl - start);
    size_t sep = line.find(": ");
    if (sep == ByteView::npos) return corrupt("malformed file metadata line", where);
    meta.fields.emplace_back(line.substr(0, sep), line.substr(sep + 2));
    start = nl + 1;
  }
  return meta;
}

Result<Filelog::Text> Filelog::readWithMetadata(const Node& node, VerifyHash verify) const {
  HG_ASSIGN_OR_RETURN(Revision r, revlog_->rev(node));
  HG_ASSIGN_OR_RETURN(Bytes raw, revlog_->rawText(r, verify));
  std::string where = revlog_->name() + " revision " + std::to_string(r.value());
  HG_ASSIGN_OR_RETURN(FileMetadata meta, parseFileMetadata(raw, where));
  // As storageutil.filerevisioncopied: a copy is recorded only on a revision
  // whose first parent is null, with both "copy" and "copyrev".
  if (meta.headerLength > 0 && !r.isNull() && revlog_->entry(r).p1.isNull()) {
    const Bytes* path = nullptr;
    const Bytes* rev = nullptr;
    for (const auto& [k, v] : meta.fields) {
      if (k == "copy") path = &v;
      if (k == "copyrev") rev = &v;
    }
    if (path && rev) {
      auto copyNode = Node::fromHex(*rev);
      if (!copyNode) return corrupt("copyrev is not 40 hex digits", where);
      meta.copy = CopySource{*path, *copyNode};
    }
  }
  Text text;
  if (meta.headerLength > 0) raw.erase(0, meta.headerLength);
  text.content = std::move(raw);
  text.metadata = std::move(meta);
  return text;
}

Result<Bytes> Filelog::read(const Node& node, VerifyHash verify) const {
  HG_ASSIGN_OR_RETURN(Revision r, revlog_->rev(node));
  HG_ASSIGN_OR_RETURN(Bytes raw, revlog_->rawText(r, verify));
  if (raw.size() >= 2 && ByteView(raw).substr(0, 2) == kMetaMarker) {
    std::string where = revlog_->name() + " revision " + std::to_string(r.value());
    size_t end = ByteView(raw).find(kMetaMarker, 2);
    if (end == ByteView::npos) return corrupt("unterminated file metadata", where);
    raw.erase(0, end + 2);
  }
  return raw;
}

Result<uint64_t> Filelog::size(const Node& node) const {
  HG_ASSIGN_OR_RETURN(Revision r, revlog_->rev(node));
  if (r.isNull()) return uint64_t{0};
  HG_ASSIGN_OR_RETURN(uint64_t raw, revlog_->rawSize(r));
  // The shortest metadata block is "\1\n\1\n".
  if (raw < 4) return raw;
  HG_ASSIGN_OR_RETURN(bool hasMeta, revlog_->rawTextStartsWith(r, kMetaMarker));
  if (!hasMeta) return raw;
  HG_ASSIGN_OR_RETURN(Bytes content, read(node, VerifyHash::kNo));
  return static_cast<uint64_t>(content.size());
}

}  // namespace hgvfs::hg
