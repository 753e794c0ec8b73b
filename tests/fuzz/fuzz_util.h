#pragma once
// Helpers shared by the libFuzzer targets.
//
// Inputs that carry several byte strings use one framing, written by
// tests/fuzz/make-seeds: records of a 4-byte big-endian length followed by
// that many bytes; a length running past the end takes what is left. Reading
// never fails, so every input the fuzzer invents means something.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace hgvfs::fuzz {

inline std::vector<std::string_view> splitRecords(const uint8_t* data, size_t size,
                                                  size_t maxRecords) {
  std::vector<std::string_view> out;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  while (!in.empty() && out.size() < maxRecords) {
    if (in.size() < 4) {
      out.push_back(in);
      break;
    }
    size_t len = (size_t{static_cast<uint8_t>(in[0])} << 24) |
                 (size_t{static_cast<uint8_t>(in[1])} << 16) |
                 (size_t{static_cast<uint8_t>(in[2])} << 8) | size_t{static_cast<uint8_t>(in[3])};
    in.remove_prefix(4);
    if (len > in.size()) len = in.size();
    out.push_back(in.substr(0, len));
    in.remove_prefix(len);
  }
  return out;
}

// An oracle failure: the library contradicted itself or the reference. Abort
// so libFuzzer saves the input.
#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

}  // namespace hgvfs::fuzz
