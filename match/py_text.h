#pragma once
// Small pieces of CPython 3.11 behaviour that Mercurial's pattern handling
// leans on and that messages must reproduce byte for byte: repr() of a
// string, int(), str.isidentifier() and str.isspace(). hg hands bytes to
// Python's `re`, whose parser decodes them as Latin-1, so "character" below
// means one byte read as Latin-1.
//
// Thread rules: plain functions; any thread.

#include <cstdint>
#include <optional>
#include <string>

#include "base/bytes.h"

namespace hgvfs::match {

inline bool isAsciiLetter(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
inline bool isDigit(unsigned char c) { return c >= '0' && c <= '9'; }
inline bool isOctDigit(unsigned char c) { return c >= '0' && c <= '7'; }
inline bool isHexDigit(unsigned char c) {
  return isDigit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

// str.isalpha() / str.isspace() of one Latin-1 character.
bool isLatin1Alpha(unsigned char c);
bool isLatin1Space(unsigned char c);
// str.isidentifier() of a Latin-1 string.
bool isIdentifier(ByteView s);

// "\\xhh", lower-case hex.
std::string hexByte(unsigned char c);

// repr() of a Latin-1 str, then encode('ascii', 'backslashreplace'), as
// re's Tokenizer.error and hg's `%r` of a path show it.
std::string pyRepr(ByteView s);

// int(s) for a str s; nullopt for ValueError. `negative` says whether a
// '-' sign was read. Saturates at kPyIntSaturated instead of growing.
constexpr uint64_t kPyIntSaturated = uint64_t{1} << 62;
std::optional<uint64_t> pyInt(ByteView s, bool* negative);

// Whitespace as bytes.strip() sees it (ASCII only).
inline bool isPyBytesSpace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
ByteView rstrip(ByteView s);
ByteView strip(ByteView s);

inline bool startsWith(ByteView s, ByteView prefix) { return s.substr(0, prefix.size()) == prefix; }
std::string replaceAll(std::string s, ByteView from, ByteView to);

}  // namespace hgvfs::match
