#include "fs/control_protocol.h"

// No dependencies beyond the standard library: the lean `hgvfs` front
// binary (cli/front.cpp) compiles this file too.

namespace hgvfs::fs {

std::string socketPath(const std::string& clientDirectory) { return clientDirectory + "/socket"; }

std::string bytesToJsonString(hg::ByteView bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (unsigned char c : bytes) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back(static_cast<char>(0xc0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
    }
  }
  return out;
}

hg::Result<hg::Bytes> jsonStringToBytes(const std::string& s) {
  hg::Bytes out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if ((c == 0xc2 || c == 0xc3) && i + 1 < s.size() &&
               (static_cast<unsigned char>(s[i + 1]) & 0xc0) == 0x80) {
      out.push_back(static_cast<char>(((c & 0x1f) << 6) | (s[i + 1] & 0x3f)));
      ++i;
    } else {
      return hg::invalidArgument("a path holds a character above U+00FF");
    }
  }
  return out;
}

}  // namespace hgvfs::fs
