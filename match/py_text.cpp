#include "match/py_text.h"

#include <algorithm>
#include <cstdio>

namespace hgvfs::match {

bool isLatin1Alpha(unsigned char c) {
  return isAsciiLetter(c) || c == 0xaa || c == 0xb5 || c == 0xba ||
         (c >= 0xc0 && c != 0xd7 && c != 0xf7);
}

bool isLatin1Space(unsigned char c) {
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0;
}

namespace {
bool isIdentifierStart(unsigned char c) { return c == '_' || isLatin1Alpha(c); }
bool isIdentifierContinue(unsigned char c) {
  return isIdentifierStart(c) || isDigit(c) || c == 0xb7;
}
}  // namespace

bool isIdentifier(ByteView s) {
  if (s.empty() || !isIdentifierStart(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin() + 1, s.end(),
                     [](char c) { return isIdentifierContinue(static_cast<unsigned char>(c)); });
}

std::string hexByte(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\x%02x", c);
  return buf;
}

std::string pyRepr(ByteView s) {
  char quote = '\'';
  if (s.find('\'') != ByteView::npos && s.find('"') == ByteView::npos) quote = '"';
  std::string out(1, quote);
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (ch == quote || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (ch == '\t') {
      out += "\\t";
    } else if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c >= 0x7f) {
      out += hexByte(c);
    } else {
      out += ch;
    }
  }
  return out + quote;
}

std::optional<uint64_t> pyInt(ByteView s, bool* negative) {
  size_t b = 0, e = s.size();
  while (b < e && isLatin1Space(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && isLatin1Space(static_cast<unsigned char>(s[e - 1]))) --e;
  *negative = false;
  if (b < e && (s[b] == '+' || s[b] == '-')) *negative = s[b++] == '-';
  if (b == e) return std::nullopt;
  uint64_t v = 0;
  bool prevDigit = false;
  for (size_t i = b; i < e; ++i) {
    if (s[i] == '_') {
      if (!prevDigit || i + 1 == e) return std::nullopt;
      prevDigit = false;
      continue;
    }
    if (!isDigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
    v = std::min(kPyIntSaturated, v * 10 + static_cast<uint64_t>(s[i] - '0'));
    prevDigit = true;
  }
  return v;
}

ByteView rstrip(ByteView s) {
  while (!s.empty() && isPyBytesSpace(s.back())) s.remove_suffix(1);
  return s;
}

ByteView strip(ByteView s) {
  s = rstrip(s);
  while (!s.empty() && isPyBytesSpace(s.front())) s.remove_prefix(1);
  return s;
}

std::string replaceAll(std::string s, ByteView from, ByteView to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

}  // namespace hgvfs::match
