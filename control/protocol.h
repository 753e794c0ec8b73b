#pragma once
// The control protocol between a mount's daemon and its clients (`hgvfs
// status`, the Mercurial extension hgext/hgvfs.py): a Unix socket in the
// client directory (mode 0600), one JSON object per line each way, several
// requests per connection allowed. Every request and every reply carries the
// protocol version; a side that sees another version refuses with a clear
// error instead of guessing.
//
//   request  {"version": 1, "op": "status", "unknown": bool, "ignored": bool,
//             "clean": bool, "rev": "REV" (optional)}
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
//
// Thread rules: plain values and functions; any thread.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace hgvfs::control {

inline constexpr int kProtocolVersion = 1;

std::string socketPath(const std::string& clientDirectory);

// Bytes → a UTF-8 string whose code points are the bytes.
std::string bytesToJsonString(ByteView bytes);
// The reverse; InvalidArgument for a code point above U+00FF or bad UTF-8.
Result<Bytes> jsonStringToBytes(const std::string& s);

struct StatusRequest {
  bool unknown = true;
  bool ignored = false;
  bool clean = false;
  std::optional<std::string> rev;  // compare with this revision instead of p1
};

struct StatusReply {
  std::string p1;  // hex
  std::vector<Bytes> modified, added, removed, deleted, unknown, ignored, clean;
  std::vector<std::pair<Bytes, Bytes>> copies;  // destination, source
  std::vector<Bytes> warnings;
  int64_t micros = 0;  // time the daemon spent
};

// One received line as a message of this protocol: a JSON object whose
// "version" is kProtocolVersion. Unsupported for another version ("protocol
// version 2 is not supported (SELF speaks 1)", SELF naming the receiver),
// Corrupt for anything else, `what` saying why ("not an object", "no
// version").
Result<nlohmann::json> parseMessage(const std::string& line, const std::string& self);

// One line each (no newline).
std::string encodeStatusRequest(const StatusRequest& request);
std::string encodeStatusReply(const StatusReply& reply);
std::string encodeError(const std::string& message);
// A reply line → the reply, or the daemon's error (InvalidArgument), or
// Corrupt for a malformed line or another protocol version.
Result<StatusReply> decodeStatusReply(const std::string& line);

}  // namespace hgvfs::control
