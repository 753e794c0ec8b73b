#include "hgbridge/node.h"

namespace hgvfs::hg {

int hexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<Node> Node::fromHex(ByteView hex) {
  if (hex.size() != kHexSize) return std::nullopt;
  Node n;
  for (size_t i = 0; i < kSize; ++i) {
    int hi = hexDigitValue(hex[2 * i]);
    int lo = hexDigitValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    n.bytes_[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return n;
}

std::string Node::hex() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(kHexSize, '0');
  for (size_t i = 0; i < kSize; ++i) {
    out[2 * i] = kHex[bytes_[i] >> 4];
    out[2 * i + 1] = kHex[bytes_[i] & 15];
  }
  return out;
}

}  // namespace hgvfs::hg
