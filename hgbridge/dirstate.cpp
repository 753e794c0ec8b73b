#include "hgbridge/dirstate.h"

#include <cstring>
#include <limits>

namespace hgvfs::hg {
namespace {

bool knownState(char s, DirstateFormat format) {
  return s == 'n' || s == 'a' || s == 'r' || s == 'm' ||
         (format == DirstateFormat::kHgvfs && s == kDirstateStateUntracked);
}

void putBe32(Bytes& out, int32_t v) {
  auto u = static_cast<uint32_t>(v);
  char b[4] = {static_cast<char>(u >> 24), static_cast<char>(u >> 16), static_cast<char>(u >> 8),
               static_cast<char>(u)};
  out.append(b, 4);
}

// One entry as pack_dirstate writes it; the caller has checked the length.
void appendEntry(Bytes& out, char state, int32_t mode, int32_t size, int32_t mtime, ByteView path,
                 const std::optional<ByteView>& copySource) {
  size_t nameLen = path.size() + (copySource ? 1 + copySource->size() : 0);
  out.push_back(state);
  putBe32(out, mode);
  putBe32(out, size);
  putBe32(out, mtime);
  putBe32(out, static_cast<int32_t>(nameLen));
  out.append(path);
  if (copySource) {
    out.push_back('\0');
    out.append(*copySource);
  }
}

std::string at(size_t offset) { return " at offset " + std::to_string(offset); }

}  // namespace

DirstateEntry DirstateEntry::from(const DirstateEntryView& v) {
  DirstateEntry e{v.state, v.mode, v.size, v.mtime, Bytes(v.path), std::nullopt};
  if (v.copySource) e.copySource = Bytes(*v.copySource);
  return e;
}

Result<std::pair<Node, Node>> visitDirstateV1(
    ByteView data, const std::function<void(const DirstateEntryView&)>& visit,
    const std::string& where, DirstateFormat format) {
  if (data.empty()) return std::pair<Node, Node>{};  // dirstatemap.parents: no file, null parents
  if (data.size() < kDirstateHeaderSize) {
    return corrupt("parents truncated: " + std::to_string(data.size()) + " of 40 bytes", where);
  }
  std::pair<Node, Node> parents{Node::fromRaw(data.data()), Node::fromRaw(data.data() + 20)};
  size_t pos = kDirstateHeaderSize;
  while (pos < data.size()) {
    if (!fits(data, pos, kDirstateEntryHeaderSize)) {
      return corrupt("entry header truncated" + at(pos), where);
    }
    DirstateEntryView v{data[pos],
                        be32sAt(data, pos + 1),
                        be32sAt(data, pos + 5),
                        be32sAt(data, pos + 9),
                        {},
                        std::nullopt,
                        pos};
    uint32_t nameLen = be32At(data, pos + 13);
    if (!knownState(v.state, format)) {
      return corrupt("unknown state " + printable(ByteView(&v.state, 1)) + at(pos), where);
    }
    size_t namePos = pos + kDirstateEntryHeaderSize;
    if (!fits(data, namePos, nameLen)) {
      return corrupt("name of " + std::to_string(nameLen) + " bytes truncated" + at(pos), where);
    }
    ByteView name = data.substr(namePos, nameLen);
    // The C parser splits at the first NUL (memchr); the rest is the source.
    if (size_t nul = name.find('\0'); nul != ByteView::npos) {
      v.path = name.substr(0, nul);
      v.copySource = name.substr(nul + 1);
    } else {
      v.path = name;
    }
    if (v.state == kDirstateStateUntracked && v.copySource) {
      // 'u' is a file the working copy does not track: it cannot be a copy.
      return corrupt("untracked entry with a copy source" + at(pos), where);
    }
    visit(v);
    pos = namePos + nameLen;
  }
  return parents;
}

Result<Dirstate> parseDirstateV1(ByteView data, const std::string& where, DirstateFormat format) {
  Dirstate d;
  // About 71 bytes an entry (dirstatemap.read's estimate).
  d.entries.reserve(data.size() / 71);
  HG_ASSIGN_OR_RETURN(
      auto parents,
      visitDirstateV1(
          data, [&](const DirstateEntryView& v) { d.entries.push_back(DirstateEntry::from(v)); },
          where, format));
  d.p1 = parents.first;
  d.p2 = parents.second;
  return d;
}

Result<DirstateSummary> parseDirstateNonNormal(ByteView data, const std::string& where) {
  DirstateSummary s;
  HG_ASSIGN_OR_RETURN(auto parents, visitDirstateV1(
                                        data,
                                        [&](const DirstateEntryView& v) {
                                          ++s.totalEntries;
                                          if (v.isNonNormal()) {
                                            s.nonNormal.push_back(DirstateEntry::from(v));
                                          }
                                        },
                                        where));
  s.p1 = parents.first;
  s.p2 = parents.second;
  return s;
}

Bytes serializeDirstateV1(const Dirstate& d) {
  size_t total = kDirstateHeaderSize;
  for (const auto& e : d.entries) {
    total +=
        kDirstateEntryHeaderSize + e.path.size() + (e.copySource ? 1 + e.copySource->size() : 0);
  }
  Bytes out;
  out.reserve(total);
  out.append(d.p1.view());
  out.append(d.p2.view());
  for (const auto& e : d.entries) {
    std::optional<ByteView> source;
    if (e.copySource) source = *e.copySource;
    appendEntry(out, e.state, e.mode, e.size, e.mtime, e.path, source);
  }
  return out;
}

DirstateV1Writer::DirstateV1Writer(const Node& p1, const Node& p2, Sink sink, size_t chunkBytes,
                                   DirstateFormat format)
    : sink_(std::move(sink)), chunkBytes_(chunkBytes), format_(format) {
  buffer_.reserve(chunkBytes_ + 4096);
  buffer_.append(p1.view());
  buffer_.append(p2.view());
}

Status DirstateV1Writer::add(char state, int32_t mode, int32_t size, int32_t mtime, ByteView path,
                             std::optional<ByteView> copySource) {
  if (failed_) return *failed_;
  if (!knownState(state, format_)) {
    return invalidArgument("dirstate state " + printable(ByteView(&state, 1)), printable(path));
  }
  if (state == kDirstateStateUntracked && (copySource || mode != 0 || size != 0 || mtime != 0)) {
    return invalidArgument("an untracked ('u') dirstate entry has no copy, mode, size or mtime",
                           printable(path));
  }
  if (path.empty() || path.find('\0') != ByteView::npos) {
    return invalidArgument("dirstate path is empty or holds a NUL", printable(path));
  }
  size_t nameLen = path.size() + (copySource ? 1 + copySource->size() : 0);
  if (nameLen > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return invalidArgument("dirstate name too long", printable(path.substr(0, 64)));
  }
  appendEntry(buffer_, state, mode, size, mtime, path, copySource);
  ++count_;
  if (buffer_.size() >= chunkBytes_) return flush();
  return okStatus();
}

Status DirstateV1Writer::add(const DirstateEntry& e) {
  std::optional<ByteView> source;
  if (e.copySource) source = *e.copySource;
  return add(e.state, e.mode, e.size, e.mtime, e.path, source);
}

Status DirstateV1Writer::flush() {
  if (failed_) return *failed_;
  if (buffer_.empty()) return okStatus();
  Status s = sink_(buffer_);
  buffer_.clear();
  if (!s.ok()) failed_ = s.error();
  return s;
}

Status DirstateV1Writer::finish() { return flush(); }

}  // namespace hgvfs::hg
