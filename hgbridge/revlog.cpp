#include "hgbridge/revlog.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "hgbridge/mpatch.h"
#include "hgbridge/sha1.h"

namespace hgvfs::hg {
namespace {

// Files up to this size are read; larger ones are mapped. Reading is cheaper
// for the many small filelogs (no mapping to tear down, no page faults).
constexpr size_t kMapThreshold = 1 << 20;
// No chunk decodes to more than this: revlog v1 lengths are 32-bit signed.
constexpr uint64_t kMaxChunkSize = INT32_MAX;
// deflate expands at most 1032:1, so a longer output means a corrupt stream.
constexpr uint64_t kMaxZlibRatio = 1032;
// Below this many revisions, looking a node up scans the index instead of
// building a hash map.
constexpr size_t kScanLimit = 64;

std::string revWhere(const std::string& name, Revision r) {
  return name + " revision " + std::to_string(r.value());
}

Result<Bytes> inflateZlib(ByteView chunk, size_t limit, bool prefixOnly, const std::string& where) {
  z_stream zs{};
  if (inflateInit(&zs) != Z_OK) return ioError(ENOMEM, "zlib init failed", where);
  Bytes out;
  size_t want = prefixOnly ? limit : std::max<size_t>(chunk.size() * 4, 256);
  out.resize(want);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(chunk.data()));
  zs.avail_in = static_cast<uInt>(chunk.size());
  size_t produced = 0;
  int rc = Z_OK;
  while (true) {
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_out = static_cast<uInt>(std::min<size_t>(out.size() - produced, UINT32_MAX));
    size_t before = zs.avail_out;
    rc = inflate(&zs, Z_NO_FLUSH);
    produced += before - zs.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) break;
    if (prefixOnly && produced >= limit) break;
    if (zs.avail_out == 0) {
      if (out.size() >= kMaxChunkSize || out.size() > (chunk.size() + 64) * kMaxZlibRatio) {
        rc = Z_DATA_ERROR;
        break;
      }
      out.resize(std::min<size_t>(out.size() * 2, kMaxChunkSize));
      continue;
    }
    if (rc == Z_BUF_ERROR) break;  // no input left and no end of stream
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END && !(prefixOnly && produced >= limit)) {
    return corrupt(std::string("zlib decompression failed: ") + (zs.msg ? zs.msg : "truncated"),
                   where);
  }
  out.resize(produced);
  return out;
}

ZSTD_DCtx* threadDecompressionContext() {
  thread_local struct DctxHolder {
    ZSTD_DCtx* ctx = ZSTD_createDCtx();
    ~DctxHolder() { ZSTD_freeDCtx(ctx); }
  } holder;
  return holder.ctx;
}

Result<Bytes> decompressZstd(ByteView chunk, size_t limit, bool prefixOnly,
                             const std::string& where) {
  ZSTD_DCtx* dctx = threadDecompressionContext();
  if (!dctx) return ioError(ENOMEM, "cannot create a zstd context", where);
  unsigned long long declared = ZSTD_getFrameContentSize(chunk.data(), chunk.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) return corrupt("invalid zstd frame", where);
  if (!prefixOnly && declared != ZSTD_CONTENTSIZE_UNKNOWN) {
    // Trust the frame header's size only as far as zstd can expand: a
    // 128 KiB run-length block costs 4 bytes of input. A corrupt header
    // must not make us allocate gigabytes.
    unsigned long long possible = (chunk.size() / 4 + 1) * 131072ULL;
    if (declared > INT32_MAX || declared > possible) {
      return corrupt("zstd frame claims an impossible size", where);
    }
    Bytes out;
    out.resize(declared);
    ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
    size_t n = ZSTD_decompressDCtx(dctx, out.data(), out.size(), chunk.data(), chunk.size());
    if (ZSTD_isError(n) || n != declared) {
      return corrupt(std::string("zstd decompression failed: ") +
                         (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short frame"),
                     where);
    }
    return out;
  }
  // Streaming: unknown size, or only a prefix wanted.
  ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
  Bytes out;
  out.resize(prefixOnly ? std::max<size_t>(limit, 1) : std::max<size_t>(chunk.size() * 4, 256));
  ZSTD_inBuffer in{chunk.data(), chunk.size(), 0};
  size_t produced = 0;
  while (true) {
    ZSTD_outBuffer ob{out.data() + produced, out.size() - produced, 0};
    size_t rc = ZSTD_decompressStream(dctx, &ob, &in);
    if (ZSTD_isError(rc)) {
      return corrupt(std::string("zstd decompression failed: ") + ZSTD_getErrorName(rc), where);
    }
    produced += ob.pos;
    if (rc == 0) break;  // frame complete
    if (prefixOnly && produced >= limit) break;
    if (produced == out.size()) {
      if (out.size() >= kMaxChunkSize) return corrupt("zstd frame too large", where);
      out.resize(std::min<size_t>(out.size() * 2, kMaxChunkSize));
    } else if (in.pos == in.size) {
      return corrupt("zstd frame truncated", where);
    }
  }
  out.resize(produced);
  return out;
}

Result<Bytes> decode(ByteView chunk, const std::string& where, bool prefixOnly, size_t limit) {
  if (chunk.empty()) return Bytes();
  switch (chunk[0]) {
    case 'x':
      return inflateZlib(chunk, limit, prefixOnly, where);
    case '\0':
      return Bytes(prefixOnly ? chunk.substr(0, limit) : chunk);
    case 'u':
      return Bytes(prefixOnly ? chunk.substr(1, limit) : chunk.substr(1));
    case '(':
      return decompressZstd(chunk, limit, prefixOnly, where);
    default: {
      char buf[8];
      snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned char>(chunk[0]));
      return unsupported(std::string("unknown chunk compression ") + buf, where);
    }
  }
}

}  // namespace

Result<Bytes> decompressChunk(ByteView chunk, const std::string& where) {
  return decode(chunk, where, false, 0);
}

// ---- RevlogIndex ----

Result<RevlogIndex> RevlogIndex::parse(ByteView file, const std::string& name) {
  RevlogIndex index;
  if (file.empty()) {
    index.version_ = kRevlogV1;
    return index;
  }
  if (file.size() < 4) return corrupt("index truncated (header)", name);
  uint32_t header = be32At(file, 0);
  index.version_ = header & 0xFFFF;
  uint32_t flags = header & ~0xFFFFu;
  if (index.version_ != kRevlogV1) {
    return unsupported(
        "revlog version " + std::to_string(index.version_) + " (only version 1 is supported)",
        name);
  }
  if (flags & ~(kFlagInlineData | kFlagGeneralDelta)) {
    return unsupported("unknown revlog flags " + std::to_string(flags >> 16), name);
  }
  index.inline_ = flags & kFlagInlineData;
  index.generalDelta_ = flags & kFlagGeneralDelta;
  if (!index.inline_ && file.size() % kIndexEntrySize != 0) {
    return corrupt(
        "index truncated (size " + std::to_string(file.size()) + " is not a multiple of 64)", name);
  }
  index.entries_.reserve(index.inline_ ? 16 : file.size() / kIndexEntrySize);
  size_t pos = 0;
  while (pos < file.size()) {
    int32_t rev = static_cast<int32_t>(index.entries_.size());
    if (index.entries_.size() >= INT32_MAX) return corrupt("too many revisions", name);
    std::string where = revWhere(name, Revision(rev));
    if (!fits(file, pos, kIndexEntrySize)) return corrupt("index truncated", where);
    IndexEntry e;
    uint64_t offsetFlags = be64At(file, pos);
    if (rev == 0) offsetFlags &= 0xFFFF;  // the header overlays rev 0's offset
    e.offset = offsetFlags >> 16;
    e.flags = static_cast<uint16_t>(offsetFlags & 0xFFFF);
    e.compressedLength = be32At(file, pos + 8);
    e.uncompressedLength = be32sAt(file, pos + 12);
    e.base = Revision(be32sAt(file, pos + 16));
    e.linkRev = Revision(be32sAt(file, pos + 20));
    e.p1 = Revision(be32sAt(file, pos + 24));
    e.p2 = Revision(be32sAt(file, pos + 28));
    e.node = Node::fromRaw(file.data() + pos + 32);
    if (e.base.value() < 0 || e.base.value() > rev) {
      return corrupt("delta base " + std::to_string(e.base.value()) + " out of range", where);
    }
    if (e.p1.value() < -1 || e.p1.value() >= rev || e.p2.value() < -1 || e.p2.value() >= rev) {
      return corrupt("parent revision out of range", where);
    }
    pos += kIndexEntrySize;
    if (index.inline_) {
      e.dataPosition = pos;
      if (!fits(file, pos, e.compressedLength)) return corrupt("inline data truncated", where);
      pos += e.compressedLength;
    } else {
      e.dataPosition = e.offset;
    }
    index.entries_.push_back(e);
  }
  return index;
}

// ---- FileBytes ----

FileBytes::~FileBytes() {
  if (map_) munmap(map_, size_);
}

std::shared_ptr<const FileBytes> FileBytes::fromString(Bytes bytes) {
  std::shared_ptr<FileBytes> f(new FileBytes());
  f->owned_ = std::move(bytes);
  f->data_ = f->owned_.data();
  f->size_ = f->owned_.size();
  return f;
}

Result<std::shared_ptr<const FileBytes>> FileBytes::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return notFound("no such file", path);
    return ioError(err, strerror(err), path);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return ioError(err, strerror(err), path);
  }
  std::shared_ptr<FileBytes> f(new FileBytes());
  size_t size = static_cast<size_t>(st.st_size);
  if (size >= kMapThreshold) {
    void* m = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    ::close(fd);
    if (m == MAP_FAILED) return ioError(err, strerror(err), path);
    f->map_ = m;
    f->data_ = static_cast<const char*>(m);
    f->size_ = size;
    return std::shared_ptr<const FileBytes>(std::move(f));
  }
  f->owned_.resize(size);
  size_t got = 0;
  while (got < size) {
    ssize_t n = pread(fd, f->owned_.data() + got, size - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the file shrank: keep what is there
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  f->owned_.resize(got);
  f->data_ = f->owned_.data();
  f->size_ = got;
  return std::shared_ptr<const FileBytes>(std::move(f));
}

// ---- Revlog ----

Result<std::shared_ptr<Revlog>> Revlog::open(const std::string& indexPath, std::string name,
                                             bool missingOk) {
  auto indexFile = FileBytes::open(indexPath);
  if (!indexFile.ok()) {
    if (missingOk && indexFile.error().kind == ErrorKind::kNotFound) {
      return build(FileBytes::fromString({}), nullptr, std::move(name), {});
    }
    Error e = std::move(indexFile).takeError();
    e.where = name;
    if (e.kind == ErrorKind::kNotFound) e.what = "revlog not found (" + indexPath + ")";
    return e;
  }
  std::string dataPath = indexPath;
  if (dataPath.size() >= 2 && dataPath.compare(dataPath.size() - 2, 2, ".i") == 0) {
    dataPath.replace(dataPath.size() - 1, 1, "d");
  } else {
    dataPath += ".d";
  }
  return build(std::move(indexFile).value(), nullptr, std::move(name), dataPath);
}

Result<std::shared_ptr<Revlog>> Revlog::fromBytes(Bytes index, Bytes data, std::string name) {
  return build(FileBytes::fromString(std::move(index)), FileBytes::fromString(std::move(data)),
               std::move(name), {});
}

Result<std::shared_ptr<Revlog>> Revlog::build(std::shared_ptr<const FileBytes> indexFile,
                                              std::shared_ptr<const FileBytes> dataFile,
                                              std::string name, const std::string& dataPath) {
  std::shared_ptr<Revlog> rl(new Revlog());
  rl->name_ = std::move(name);
  HG_ASSIGN_OR_RETURN(rl->index_, RevlogIndex::parse(indexFile->view(), rl->name_));
  rl->indexFile_ = std::move(indexFile);
  if (rl->index_.isInline()) {
    rl->dataFile_ = rl->indexFile_;
  } else if (dataFile) {
    rl->dataFile_ = std::move(dataFile);
  } else if (rl->index_.size() == 0) {
    rl->dataFile_ = FileBytes::fromString({});
  } else {
    auto d = FileBytes::open(dataPath);
    if (!d.ok()) {
      Error e = std::move(d).takeError();
      if (e.kind == ErrorKind::kNotFound)
        return corrupt("data file missing (" + dataPath + ")", rl->name_);
      return e;
    }
    rl->dataFile_ = std::move(d).value();
  }
  return rl;
}

std::string Revlog::where(Revision r) const { return revWhere(name_, r); }

const std::unordered_map<Node, Revision>& Revlog::nodeMap() const {
  std::call_once(nodeMapOnce_, [this] {
    nodeMap_.reserve(index_.size());
    for (size_t i = 0; i < index_.size(); ++i) {
      Revision r(static_cast<int32_t>(i));
      nodeMap_.emplace(index_[r].node, r);  // the first revision wins, as in hg
    }
  });
  return nodeMap_;
}

Result<Revision> Revlog::rev(const Node& node) const {
  if (node.isNull()) return kNullRevision;
  if (index_.size() <= kScanLimit) {
    for (size_t i = 0; i < index_.size(); ++i) {
      Revision r(static_cast<int32_t>(i));
      if (index_[r].node == node) return r;
    }
  } else {
    const auto& map = nodeMap();
    auto it = map.find(node);
    if (it != map.end()) return it->second;
  }
  return notFound("no node " + node.hex(), name_);
}

std::vector<Revision> Revlog::revsWithHexPrefix(ByteView prefix, size_t limit) const {
  std::vector<Revision> out;
  for (size_t i = 0; i < index_.size() && out.size() < limit; ++i) {
    Revision r(static_cast<int32_t>(i));
    std::string hex = index_[r].node.hex();
    if (hex.compare(0, prefix.size(), prefix) == 0) out.push_back(r);
  }
  return out;
}

Result<ByteView> Revlog::rawChunk(Revision r) const {
  const IndexEntry& e = index_[r];
  ByteView data = dataFile_->view();
  if (!fits(data, e.dataPosition, e.compressedLength)) {
    return corrupt("data file truncated (chunk at " + std::to_string(e.dataPosition) + "+" +
                       std::to_string(e.compressedLength) + ", file has " +
                       std::to_string(data.size()) + " bytes)",
                   where(r));
  }
  return data.substr(e.dataPosition, e.compressedLength);
}

Result<Bytes> Revlog::chunk(Revision r) const {
  if (!contains(r)) return notFound("no such revision", where(r));
  HG_ASSIGN_OR_RETURN(ByteView raw, rawChunk(r));
  return decompressChunk(raw, where(r));
}

std::optional<Revision> Revlog::deltaBase(Revision r) const {
  const IndexEntry& e = index_[r];
  if (e.base == r) return std::nullopt;
  return index_.generalDelta() ? e.base : Revision(r.value() - 1);
}

Result<std::vector<Revision>> Revlog::deltaChain(Revision r) const {
  if (!contains(r)) return notFound("no such revision", where(r));
  std::vector<Revision> chain;
  Revision it = r;
  while (true) {
    chain.push_back(it);
    std::optional<Revision> base = deltaBase(it);
    if (!base) break;
    Revision next = *base;
    if (next.value() < 0 || next.value() >= it.value()) {
      return corrupt("broken delta chain at revision " + std::to_string(it.value()), where(r));
    }
    it = next;
  }
  std::reverse(chain.begin(), chain.end());
  return chain;
}

Node Revlog::hashRevision(ByteView text, const Node& p1, const Node& p2) {
  const Node& a = p1 < p2 ? p1 : p2;
  const Node& b = p1 < p2 ? p2 : p1;
  return sha1({a.view(), b.view(), text});
}

Result<Bytes> Revlog::rawText(Revision r, VerifyHash verify) const {
  if (r.isNull()) return Bytes();
  if (!contains(r)) return notFound("no such revision", where(r));
  const IndexEntry& e = index_[r];
  if (e.flags & kRevisionFlagCensored) return censored(where(r));
  if (e.flags & kRevisionFlagExtStored) {
    return unsupported("revision stored outside the revlog (lfs)", where(r));
  }
  HG_ASSIGN_OR_RETURN(std::vector<Revision> chain, deltaChain(r));

  // One-entry cache of the last text built: reading revisions in order (verify,
  // log) then costs one delta each instead of a whole chain.
  std::shared_ptr<const Bytes> cachedText;
  size_t startAt = 0;
  {
    MutexLock lock(cacheMutex_);
    if (cachedText_ && !cachedRev_.isNull()) {
      auto pos = std::find(chain.begin(), chain.end(), cachedRev_);
      if (pos != chain.end()) {
        cachedText = cachedText_;
        startAt = static_cast<size_t>(pos - chain.begin()) + 1;
      }
    }
  }
  Bytes base;
  ByteView baseView;
  if (!cachedText) {
    HG_ASSIGN_OR_RETURN(base, chunk(chain[0]));
    baseView = base;
    startAt = 1;
  } else {
    baseView = *cachedText;
  }
  std::vector<Bytes> deltas;
  deltas.reserve(chain.size() - startAt);
  for (size_t i = startAt; i < chain.size(); ++i) {
    HG_ASSIGN_OR_RETURN(Bytes d, chunk(chain[i]));
    deltas.push_back(std::move(d));
  }
  std::vector<ByteView> views(deltas.begin(), deltas.end());
  Bytes text;
  if (views.empty()) {
    text = cachedText ? Bytes(baseView) : std::move(base);
  } else {
    auto applied = applyDeltas(baseView, views);
    if (!applied.ok()) {
      Error err = std::move(applied).takeError();
      err.where = where(r);
      return err;
    }
    text = std::move(applied).value();
  }
  if (e.uncompressedLength >= 0 && static_cast<size_t>(e.uncompressedLength) != text.size()) {
    return corrupt("text length " + std::to_string(text.size()) + " differs from the index (" +
                       std::to_string(e.uncompressedLength) + ")",
                   where(r));
  }
  if (verify == VerifyHash::kYes) {
    Node expected = hashRevision(text, node(e.p1), node(e.p2));
    if (expected != e.node) {
      return corrupt("integrity check failed (node " + e.node.hex() + ", content hashes to " +
                         expected.hex() + ")",
                     where(r));
    }
  }
  if (chain.size() > 1) {
    MutexLock lock(cacheMutex_);
    cachedRev_ = r;
    cachedText_ = std::make_shared<const Bytes>(text);
  }
  return text;
}

Result<Bytes> Revlog::rawText(const Node& n, VerifyHash verify) const {
  HG_ASSIGN_OR_RETURN(Revision r, rev(n));
  return rawText(r, verify);
}

Result<uint64_t> Revlog::rawSize(Revision r) const {
  if (r.isNull()) return uint64_t{0};
  if (!contains(r)) return notFound("no such revision", where(r));
  const IndexEntry& e = index_[r];
  if (e.uncompressedLength >= 0) return static_cast<uint64_t>(e.uncompressedLength);
  HG_ASSIGN_OR_RETURN(Bytes text, rawText(r, VerifyHash::kNo));
  return static_cast<uint64_t>(text.size());
}

Result<bool> Revlog::rawTextStartsWith(Revision r, ByteView prefix) const {
  HG_ASSIGN_OR_RETURN(uint64_t size, rawSize(r));
  if (size < prefix.size()) return false;
  if (prefix.empty()) return true;
  if (isCensored(r)) return censored(where(r));
  HG_ASSIGN_OR_RETURN(std::vector<Revision> chain, deltaChain(r));
  // Deltas from the top of the chain down; each offset of the prefix is
  // traced back until it lands in a delta's own data or in the base text.
  std::vector<Bytes> deltas;
  for (size_t i = chain.size(); i-- > 1;) {
    HG_ASSIGN_OR_RETURN(Bytes d, chunk(chain[i]));
    deltas.push_back(std::move(d));
  }
  std::vector<std::pair<size_t, size_t>> inBase;  // (offset in base, index in prefix)
  size_t needed = 0;
  for (size_t i = 0; i < prefix.size(); ++i) {
    size_t offset = i;
    bool resolved = false;
    for (const Bytes& d : deltas) {
      auto origin = traceOffset(d, offset);
      if (!origin.ok()) {
        Error err = std::move(origin).takeError();
        err.where = where(r);
        return err;
      }
      if (origin->inDelta) {
        if (static_cast<char>(origin->value) != prefix[i]) return false;
        resolved = true;
        break;
      }
      offset = origin->value;
    }
    if (!resolved) {
      inBase.emplace_back(offset, i);
      needed = std::max(needed, offset + 1);
    }
  }
  if (inBase.empty()) return true;
  HG_ASSIGN_OR_RETURN(ByteView raw, rawChunk(chain[0]));
  HG_ASSIGN_OR_RETURN(Bytes base, decode(raw, where(chain[0]), true, needed));
  for (auto [off, i] : inBase) {
    if (off >= base.size()) return corrupt("delta reaches past its base", where(r));
    if (base[off] != prefix[i]) return false;
  }
  return true;
}

}  // namespace hgvfs::hg
