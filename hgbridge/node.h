#pragma once
// Node: a Mercurial node id, the 20-byte SHA-1 naming a changeset, a manifest
// or a file revision. Revision: a revision number local to one revlog.
//
// Both are strong types so a node is never confused with any 20-byte string
// and a revision with any integer. Plain values; any thread.

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>

#include "base/bytes.h"

namespace hgvfs::hg {

class Node {
 public:
  static constexpr size_t kSize = 20;
  static constexpr size_t kHexSize = 40;

  constexpr Node() : bytes_{} {}  // the null node (twenty zero bytes)
  // `raw` must hold at least kSize bytes; only the first kSize are used.
  static Node fromRaw(const void* raw) {
    Node n;
    std::memcpy(n.bytes_.data(), raw, kSize);
    return n;
  }
  // Parses exactly 40 hex digits (either case); nullopt otherwise.
  static std::optional<Node> fromHex(ByteView hex);

  const uint8_t* data() const { return bytes_.data(); }
  ByteView view() const { return {reinterpret_cast<const char*>(bytes_.data()), kSize}; }
  bool isNull() const { return *this == Node(); }
  std::string hex() const;
  std::string shortHex() const { return hex().substr(0, 12); }

  friend bool operator==(const Node&, const Node&) = default;
  friend auto operator<=>(const Node&, const Node&) = default;

 private:
  std::array<uint8_t, kSize> bytes_;
};

inline constexpr Node kNullNode{};

// Decodes one hex digit; -1 when `c` is not one.
int hexDigitValue(char c);

// A revision number in one revlog. -1 is the null revision.
class Revision {
 public:
  constexpr Revision() = default;
  constexpr explicit Revision(int32_t value) : value_(value) {}
  constexpr int32_t value() const { return value_; }
  constexpr bool isNull() const { return value_ == -1; }
  friend constexpr bool operator==(Revision, Revision) = default;
  friend constexpr auto operator<=>(Revision, Revision) = default;

 private:
  int32_t value_ = -1;
};

inline constexpr Revision kNullRevision{-1};

}  // namespace hgvfs::hg

template <>
struct std::hash<hgvfs::hg::Node> {
  size_t operator()(const hgvfs::hg::Node& n) const noexcept {
    size_t h;
    std::memcpy(&h, n.data(), sizeof h);  // SHA-1 bytes are already uniform
    return h;
  }
};
