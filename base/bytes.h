#pragma once
// Byte strings and big-endian field access.
//
// Paths, file contents and revlog data are bytes, never text: a std::string
// holds them (it may contain NUL and any byte value) and a ByteView looks at
// them without owning. The readers below take a view and an offset the caller
// has already bounds-checked; `fits` is the check.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hgvfs {

using Bytes = std::string;
using ByteView = std::string_view;

inline bool fits(ByteView data, size_t offset, size_t len) {
  return offset <= data.size() && len <= data.size() - offset;
}

inline uint8_t u8At(ByteView d, size_t o) { return static_cast<uint8_t>(d[o]); }

inline uint32_t be32At(ByteView d, size_t o) {
  return (uint32_t{u8At(d, o)} << 24) | (uint32_t{u8At(d, o + 1)} << 16) |
         (uint32_t{u8At(d, o + 2)} << 8) | uint32_t{u8At(d, o + 3)};
}

inline uint16_t be16At(ByteView d, size_t o) {
  return static_cast<uint16_t>((u8At(d, o) << 8) | u8At(d, o + 1));
}

inline uint64_t be64At(ByteView d, size_t o) {
  return (uint64_t{be32At(d, o)} << 32) | be32At(d, o + 4);
}

inline int32_t be32sAt(ByteView d, size_t o) { return static_cast<int32_t>(be32At(d, o)); }

// The pieces of `s` between each `sep`, as Python's bytes.split(sep): always
// at least one piece, empty pieces kept ("a//b/" gives a, "", b, "").
std::vector<Bytes> splitBytes(ByteView s, char sep);

// Renders bytes for a message: printable ASCII as is, anything else \xNN.
std::string printable(ByteView bytes);

}  // namespace hgvfs
