#pragma once
// Byte counts as people write them: "4G", "512 MB", "1.5GiB", "100000".
// Suffixes are powers of 1024 (K, M, G, T, with or without "B" or "iB").
//
// Thread rules: plain functions; any thread.

#include <cstdint>
#include <string>

#include "base/result.h"

namespace hgvfs {

// kInvalidArgument naming `text` when it is not a size.
Result<uint64_t> parseByteSize(const std::string& text);
// "1.5 GiB", "312.0 KiB", "17 B".
std::string formatByteSize(uint64_t bytes);

}  // namespace hgvfs
