#include "base/bytes.h"

namespace hgvfs {

std::vector<Bytes> splitBytes(ByteView s, char sep) {
  std::vector<Bytes> parts;
  size_t pos = 0;
  while (true) {
    size_t at = s.find(sep, pos);
    parts.emplace_back(s.substr(pos, at == ByteView::npos ? ByteView::npos : at - pos));
    if (at == ByteView::npos) return parts;
    pos = at + 1;
  }
}

std::string printable(ByteView bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size());
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace hgvfs
