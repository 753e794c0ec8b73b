#include "hgbridge/store_path.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include "hgbridge/sha1.h"

// Everything here follows mercurial/store.py (Mercurial 6.3): encodedir,
// _encodefname, lowerencode, _auxencode, _hashencode and _hybridencode. The
// C version of the dotencode path (mercurial/cext/pathencode.c) gives the
// same answers; tests/oracle/store_encode.py checks both against this file.
//
// The reversible encodings are computed per path component, straight from
// the input bytes: encodedir's ".hg" suffix is a virtual tail of the
// component, and _auxencode's three rewrites (first byte, third byte of a
// Windows device name, last byte) are decided from the raw bytes before
// anything is written. The reversible form is built on the stack and given
// up as soon as it passes 120 bytes, so the common case allocates once: the
// result.

namespace hgvfs::hg {
namespace {

constexpr size_t kMaxStorePathLen = 120;                          // _maxstorepathlen
constexpr size_t kDirPrefixLen = 8;                               // _dirprefixlen
constexpr size_t kMaxShortDirsLen = 8 * (kDirPrefixLen + 1) - 4;  // _maxshortdirslen
constexpr char kHexDigits[] = "0123456789abcdef";

// How one byte of a component is written: up to three bytes.
struct ByteCode {
  uint8_t len;
  char bytes[3];
};
using CodeTable = std::array<ByteCode, 256>;

constexpr bool isUpper(uint8_t c) { return c >= 'A' && c <= 'Z'; }
constexpr uint8_t asciiLower(uint8_t c) { return isUpper(c) ? c + ('a' - 'A') : c; }

// store._reserved(): control bytes, 126..255 and the Windows specials.
constexpr bool isReserved(uint8_t c) {
  if (c < 32 || c >= 126) return true;
  for (char w : {'\\', ':', '*', '?', '"', '<', '>', '|'}) {
    if (c == static_cast<uint8_t>(w)) return true;
  }
  return false;
}

constexpr ByteCode escaped(uint8_t c) { return {3, {'~', kHexDigits[c >> 4], kHexDigits[c & 15]}}; }

// _encodefname ("fname": A -> _a, _ -> __) or lowerencode ("lower": A -> a).
constexpr CodeTable makeTable(bool lower) {
  CodeTable t{};
  for (int i = 0; i < 256; ++i) {
    auto c = static_cast<uint8_t>(i);
    if (isReserved(c)) {
      t[i] = escaped(c);
    } else if (isUpper(c)) {
      t[i] = lower ? ByteCode{1, {static_cast<char>(asciiLower(c))}}
                   : ByteCode{2, {'_', static_cast<char>(asciiLower(c))}};
    } else if (c == '_' && !lower) {
      t[i] = {2, {'_', '_'}};
    } else {
      t[i] = {1, {static_cast<char>(c)}};
    }
  }
  return t;
}

constexpr CodeTable kFnameTable = makeTable(false);
constexpr CodeTable kLowerTable = makeTable(true);

constexpr ByteView kDirSuffix = ".hg";

// encodedir: a directory component ending in ".hg", ".i" or ".d" gets ".hg"
// appended, so a file "foo.i" and a directory "foo.i/" never collide.
bool needsDirSuffix(ByteView component) {
  return component.ends_with(".hg") || component.ends_with(".i") || component.ends_with(".d");
}

// Output sinks. Every put writes a ByteCode: one to three bytes.

// The first kMaxStorePathLen + 1 bytes of an encoding, on the stack. Past
// that the path will be hashed, so the rest is not kept: full() says so.
class BoundedOut {
 public:
  void put(const ByteCode& code) {
    if (n_ > kMaxStorePathLen) return;
    // Copying all three bytes is cheaper than copying code.len of them; the
    // spare room at the end of buf_ takes the overhang.
    std::memcpy(buf_ + n_, code.bytes, sizeof code.bytes);
    n_ += code.len;
  }
  bool full() const { return n_ > kMaxStorePathLen; }
  Bytes take() const { return Bytes(buf_, n_); }

 private:
  char buf_[kMaxStorePathLen + 1 + sizeof(ByteCode::bytes)];
  size_t n_ = 0;
};

// An unbounded encoding (the basic layout, and the lower-encoded path the
// hashed form is cut from).
class StringOut {
 public:
  explicit StringOut(size_t expected) { s_.reserve(expected); }
  void put(const ByteCode& code) { s_.append(code.bytes, code.len); }
  bool full() const { return false; }
  Bytes take() { return std::move(s_); }

 private:
  Bytes s_;
};

constexpr ByteCode kSlash = {1, {'/'}};

struct ComponentOptions {
  const CodeTable* table;
  bool auxencode;  // apply _auxencode (false for the basic layout)
  bool dotencode;  // _auxencode's dotencode: escape a leading '.' or ' '
};

// The head of a component as _auxencode sees it once encoded: letters and
// digits encode to one byte each (under lowerencode an upper-case letter
// becomes its lower case; under _encodefname it becomes "_x", which matches
// no device name).
char auxHeadByte(uint8_t c, const ComponentOptions& opt) {
  return static_cast<char>(opt.table == &kLowerTable ? asciiLower(c) : c);
}

// Writes one component: `raw` table-encoded and _auxencode'd, then
// encodedir's ".hg" when `dirSuffix`. _auxencode's rewrites never reach
// the suffix: a component that gets one ends in ".i", ".d" or ".hg", so
// it is no device name, its head contains a '.', and it ends in 'g'.
template <typename Out>
void encodeComponent(Out& out, ByteView raw, bool dirSuffix, const ComponentOptions& opt) {
  const size_t len = raw.size();
  const auto* bytes = reinterpret_cast<const uint8_t*>(raw.data());
  size_t fixFirst = SIZE_MAX, fixThird = SIZE_MAX, fixLast = SIZE_MAX;
  if (opt.auxencode && len > 0) {
    if (opt.dotencode && (bytes[0] == '.' || bytes[0] == ' ')) {
      fixFirst = 0;
    } else if (len >= 3) {
      const char head[3] = {auxHeadByte(bytes[0], opt), auxHeadByte(bytes[1], opt),
                            auxHeadByte(bytes[2], opt)};
      const ByteView h{head, 3};
      if (len == 3 || bytes[3] == '.') {
        if (h == "aux" || h == "con" || h == "prn" || h == "nul") fixThird = 2;
      } else if (bytes[3] >= '1' && bytes[3] <= '9' && (len == 4 || bytes[4] == '.')) {
        if (h == "com" || h == "lpt") fixThird = 2;
      }
    }
    const uint8_t last = bytes[len - 1];
    // A lone '.' already became "~2e" under dotencode.
    if ((last == '.' || last == ' ') && !(fixFirst == 0 && len == 1)) fixLast = len - 1;
  }
  const CodeTable& table = *opt.table;
  for (size_t i = 0; i < len; ++i) {
    const uint8_t c = bytes[i];
    if (i == fixFirst || i == fixLast) [[unlikely]] {
      out.put(escaped(c));
    } else if (i == fixThird) [[unlikely]] {
      out.put(escaped(asciiLower(c)));
    } else {
      out.put(table[c]);
    }
  }
  if (dirSuffix) {
    for (char c : kDirSuffix) out.put(ByteCode{1, {c}});
  }
}

// Encodes every '/'-separated component of `path`; stops early once `out`
// is full. With `addDirSuffix` the encodedir rule is applied on the fly
// (`path` is not yet encodedir'd).
template <typename Out>
void encodeComponents(Out& out, ByteView path, bool addDirSuffix, const ComponentOptions& opt) {
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    const bool last = slash == ByteView::npos;
    const ByteView raw = path.substr(start, last ? ByteView::npos : slash - start);
    encodeComponent(out, raw, addDirSuffix && !last && needsDirSuffix(raw), opt);
    if (last || out.full()) return;
    out.put(kSlash);
    start = slash + 1;
  }
}

Bytes encodeToString(ByteView path, bool addDirSuffix, const ComponentOptions& opt) {
  StringOut out(path.size() + path.size() / 2 + 8);
  encodeComponents(out, path, addDirSuffix, opt);
  return out.take();
}

Bytes encodeDir(ByteView path) {
  Bytes out;
  out.reserve(path.size() + 12);
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    if (slash == ByteView::npos) {
      out.append(path.substr(start));
      return out;
    }
    const ByteView raw = path.substr(start, slash - start);
    out.append(raw);
    if (needsDirSuffix(raw)) out.append(kDirSuffix);
    out.push_back('/');
    start = slash + 1;
  }
}

// os.path.splitext on a component: the extension starts at the last '.',
// unless every byte before it is a '.' too (".foo" has no extension).
ByteView extensionOf(ByteView name) {
  const size_t dot = name.rfind('.');
  if (dot == ByteView::npos) return {};
  for (size_t i = 0; i < dot; ++i) {
    if (name[i] != '.') return name.substr(dot);
  }
  return {};
}

// store._hashencode: "dh/" + short directory prefixes + as much of the
// basename as fits + sha1(encodedir'd path) + the basename's extension.
Bytes hashEncode(ByteView path, bool dotencode) {
  const Bytes dired = encodeDir(path);
  const std::string digest = sha1({dired}).hex();
  // _hashencode skips five bytes ("data/" or "meta/") whatever they are.
  const ByteView rest = ByteView(dired).substr(std::min<size_t>(5, dired.size()));
  const ComponentOptions opt{&kLowerTable, true, dotencode};
  const Bytes lowered = encodeToString(rest, false, opt);
  const ByteView le = lowered;

  const size_t lastSlash = le.rfind('/');
  const ByteView basename = lastSlash == ByteView::npos ? le : le.substr(lastSlash + 1);
  const ByteView ext = extensionOf(basename);

  Bytes res;
  res.reserve(kMaxStorePathLen + ext.size() + 8);
  res.append("dh/");
  if (lastSlash != ByteView::npos) {
    // Keep directory prefixes while their joined length stays within
    // kMaxShortDirsLen (the first one always fits).
    const ByteView dirs = le.substr(0, lastSlash);
    size_t count = 0;
    for (size_t start = 0; start <= dirs.size();) {
      const size_t slash = std::min(dirs.find('/', start), dirs.size());
      const ByteView d = dirs.substr(start, std::min(slash - start, kDirPrefixLen));
      if (count > 0 && (res.size() - 3) + 1 + d.size() > kMaxShortDirsLen) break;
      if (count++ > 0) res.push_back('/');
      res.append(d);
      // Windows cannot open a directory whose name ends in '.' or ' '.
      // store.py reads d[-1] and so raises on an empty directory name; the C
      // version (what hg uses for dotencode) keeps it empty and counts its
      // separator, and so do we.
      if (!d.empty() && (d.back() == '.' || d.back() == ' ')) res.back() = '_';
      start = slash + 1;
    }
    if (res.size() > 3) res.push_back('/');
  }
  const size_t withoutFiller = res.size() + digest.size() + ext.size();
  if (withoutFiller < kMaxStorePathLen) {
    res.append(basename.substr(0, kMaxStorePathLen - withoutFiller));
  }
  res.append(digest);
  res.append(ext);
  return res;
}

// store._hybridencode: the reversible encoding while it fits in 120 bytes,
// the hashed one beyond.
Bytes hybridEncode(ByteView path, bool dotencode) {
  // Encoding never shortens a path (store._pathencode takes the same
  // shortcut).
  if (path.size() > kMaxStorePathLen) return hashEncode(path, dotencode);
  BoundedOut out;
  encodeComponents(out, path, true, ComponentOptions{&kFnameTable, true, dotencode});
  return out.full() ? hashEncode(path, dotencode) : out.take();
}

}  // namespace

Bytes encodeStorePath(ByteView path, StoreLayout layout) {
  switch (layout) {
    case StoreLayout::kBasic:
      return encodeToString(path, true, ComponentOptions{&kFnameTable, false, false});
    case StoreLayout::kFncache:
      return hybridEncode(path, false);
    case StoreLayout::kDotencode:
      return hybridEncode(path, true);
  }
  return Bytes(path);
}

Bytes filelogIndexPath(ByteView path, StoreLayout layout) {
  constexpr ByteView kPrefix = "data/", kSuffix = ".i";
  const size_t len = kPrefix.size() + path.size() + kSuffix.size();
  // Most tracked paths are short: spell "data/<path>.i" on the stack.
  char stackBuf[256];
  Bytes heapBuf;
  char* buf = stackBuf;
  if (len > sizeof stackBuf) {
    heapBuf.resize(len);
    buf = heapBuf.data();
  }
  std::memcpy(buf, kPrefix.data(), kPrefix.size());
  if (!path.empty()) std::memcpy(buf + kPrefix.size(), path.data(), path.size());
  std::memcpy(buf + kPrefix.size() + path.size(), kSuffix.data(), kSuffix.size());
  return encodeStorePath(ByteView(buf, len), layout);
}

}  // namespace hgvfs::hg
