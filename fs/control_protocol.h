#pragma once
// The control protocol between the daemon and its clients (`hgvfs status`,
// the Mercurial extension hgbridge/hgext/hgvfs.py): a Unix socket in the
// client directory (mode 0600), one JSON object per line each way, several
// requests per connection allowed.
//
//   request  {"version": 1, "op": "status", "unknown": bool, "ignored": bool,
//             "clean": bool, "rev": "HEX" (optional)}
//   reply    {"version": 1, "ok": true, "p1": "HEX", "modified": [...],
//             "added": [...], "removed": [...], "deleted": [...],
//             "unknown": [...], "ignored": [...], "clean": [...],
//             "copies": {"dest": "source", ...}, "warnings": [...],
//             "micros": TIME_THE_DAEMON_SPENT}
//   request  {"version": 1, "op": "hello"} → {"version": 1, "ok": true, "daemon": "hgvfs"}
//   error    {"version": 1, "ok": false, "error": "MESSAGE"}
//
// Paths are bytes; JSON strings must be Unicode, so each byte travels as the
// code point of the same value (U+0000..U+00FF, "latin-1"): Python gets the
// bytes back with s.encode("latin-1").

#include <string>

#include "hgbridge/bytes.h"
#include "hgbridge/result.h"

namespace hgvfs::fs {

inline constexpr int kControlProtocolVersion = 1;

std::string socketPath(const std::string& clientDirectory);

// Bytes → a UTF-8 string whose code points are the bytes.
std::string bytesToJsonString(hg::ByteView bytes);
// The reverse; InvalidArgument for a code point above U+00FF or bad UTF-8.
hg::Result<hg::Bytes> jsonStringToBytes(const std::string& s);

}  // namespace hgvfs::fs
