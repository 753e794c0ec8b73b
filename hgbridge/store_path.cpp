#include "hgbridge/store_path.h"

#include <algorithm>
#include <array>
#include <cstdint>

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
// anything is written. A first pass measures, a second writes into a buffer
// of the exact size, so the common case allocates once.

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

// Counts bytes (first pass) ...
struct Counter {
  size_t n = 0;
  void put(char) { ++n; }
  void put(const char*, size_t len) { n += len; }
};

// ... or writes them into a buffer already sized by a Counter.
struct Writer {
  char* p;
  void put(char c) { *p++ = c; }
  void put(const char* s, size_t len) {
    for (size_t i = 0; i < len; ++i) *p++ = s[i];
  }
};

struct ComponentOptions {
  const CodeTable* table;
  bool auxencode;  // apply _auxencode (false for the basic layout)
  bool dotencode;  // _auxencode's dotencode: escape a leading '.' or ' '
};

// Writes one component: table-encoded `raw` + `suffix`, then _auxencode'd.
template <typename Out>
void encodeComponent(Out& out, ByteView raw, ByteView suffix, const ComponentOptions& opt) {
  const size_t len = raw.size() + suffix.size();
  auto at = [&](size_t i) -> uint8_t {
    return static_cast<uint8_t>(i < raw.size() ? raw[i] : suffix[i - raw.size()]);
  };
  size_t fixFirst = SIZE_MAX, fixThird = SIZE_MAX, fixLast = SIZE_MAX;
  if (opt.auxencode && len > 0) {
    const uint8_t first = at(0);
    if (opt.dotencode && (first == '.' || first == ' ')) {
      fixFirst = 0;
    } else if (len >= 3) {
      // _auxencode looks at the encoded component, whose first bytes equal
      // the raw ones (letters and digits encode to one byte; under
      // lowerencode an upper-case letter becomes its lower case).
      const char a = static_cast<char>(opt.table == &kLowerTable ? asciiLower(at(0)) : at(0));
      const char b = static_cast<char>(opt.table == &kLowerTable ? asciiLower(at(1)) : at(1));
      const char c = static_cast<char>(opt.table == &kLowerTable ? asciiLower(at(2)) : at(2));
      const char headBytes[3] = {a, b, c};
      const ByteView head{headBytes, 3};
      if (len == 3 || at(3) == '.') {
        if (head == "aux" || head == "con" || head == "prn" || head == "nul") fixThird = 2;
      } else if (at(3) >= '1' && at(3) <= '9' && (len == 4 || at(4) == '.')) {
        if (head == "com" || head == "lpt") fixThird = 2;
      }
    }
    const uint8_t last = at(len - 1);
    if ((last == '.' || last == ' ') && !(fixFirst == 0 && len == 1)) fixLast = len - 1;
  }
  for (size_t i = 0; i < len; ++i) {
    const uint8_t c = at(i);
    if (i == fixFirst || i == fixLast) {
      const ByteCode e = escaped(c);
      out.put(e.bytes, e.len);
    } else if (i == fixThird) {
      const ByteCode e = escaped(asciiLower(c));
      out.put(e.bytes, e.len);
    } else {
      const ByteCode& e = (*opt.table)[c];
      out.put(e.bytes, e.len);
    }
  }
}

// Encodes every '/'-separated component of `path`. With `addDirSuffix` the
// encodedir rule is applied on the fly (`path` is not yet encodedir'd).
template <typename Out>
void encodeComponents(Out& out, ByteView path, bool addDirSuffix, const ComponentOptions& opt) {
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    const bool last = slash == ByteView::npos;
    const ByteView raw = path.substr(start, last ? ByteView::npos : slash - start);
    const ByteView suffix = (addDirSuffix && !last && needsDirSuffix(raw)) ? kDirSuffix : "";
    encodeComponent(out, raw, suffix, opt);
    if (last) break;
    out.put('/');
    start = slash + 1;
  }
}

template <typename... Args>
Bytes encodeToString(const Args&... args) {
  Counter counter;
  encodeComponents(counter, args...);
  Bytes result(counter.n, '\0');
  Writer writer{result.data()};
  encodeComponents(writer, args...);
  return result;
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
  size_t dirsLen = 0;  // sdirslen in store.py
  size_t dirCount = 0;
  if (lastSlash != ByteView::npos) {
    const ByteView dirs = le.substr(0, lastSlash);
    size_t start = 0;
    while (start <= dirs.size()) {
      const size_t slash = std::min(dirs.find('/', start), dirs.size());
      const ByteView d = dirs.substr(start, std::min(slash - start, kDirPrefixLen));
      // store.py reads d[-1] and so fails on an empty directory name; the C
      // version (used for dotencode) keeps it empty, and so do we.
      size_t total = dirsLen == 0 ? d.size() : dirsLen + 1 + d.size();
      if (dirsLen != 0 && total > kMaxShortDirsLen) break;
      if (dirCount++ != 0) res.push_back('/');
      res.append(d);
      // Windows cannot open a directory whose name ends in '.' or ' '.
      if (!d.empty() && (d.back() == '.' || d.back() == ' ')) res.back() = '_';
      dirsLen = total;
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
  const ComponentOptions opt{&kFnameTable, true, dotencode};
  Counter counter;
  encodeComponents(counter, path, true, opt);
  if (counter.n > kMaxStorePathLen) return hashEncode(path, dotencode);
  Bytes result(counter.n, '\0');
  Writer writer{result.data()};
  encodeComponents(writer, path, true, opt);
  return result;
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
  Bytes storePath;
  storePath.reserve(path.size() + 7);
  storePath.append("data/");
  storePath.append(path);
  storePath.append(".i");
  return encodeStorePath(storePath, layout);
}

}  // namespace hgvfs::hg
