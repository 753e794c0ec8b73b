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
//   request  {"version": 1, "op": "files", "node": "HEX40", "paths": [...],
//             "dirs": [{"dir": "D", "except": [...]}, ...]}  (both lists optional)
//   reply    {"version": 1, "ok": true, "kinds": ["" | "x" | "l" | null, ...],
//             "dirs": [bool, ...], "micros": N}
//            kinds is parallel to paths: the file's flags in revision NODE, null
//            when NODE has no file there (absent, or a directory); dirs is
//            parallel to dirs: whether NODE has a file strictly below D ("" is
//            the root) that its except list does not name. The extension's
//            dirstate map answers implied paths with it (docs/DIRSTATE.md).
//   request  {"version": 1, "op": "revision-diff", "from": "HEX40", "to": "HEX40",
//             "entries": bool (optional), "paths": [...] (optional)}
//   reply    {"version": 1, "ok": true, "only_from": [...], "only_to": [...],
//             "changes": [[PATH, NODE|null, FLAGS, NODE|null, FLAGS], ...],
//             "entries": [[PATH, NODE|null, FLAGS, NODE|null, FLAGS], ...], "micros": N}
//            only_from/only_to: the files of FROM's manifest TO lacks and the
//            reverse (a file in both, changed or not, is in neither), sorted
//            bytewise. With "entries": true, changes holds every file that
//            differs between the two manifests (added, removed, or another
//            node or flags), as the manifest entries on each side (hex file
//            node, or null where that side has no file; flags "", "x" or
//            "l"), sorted bytewise; and entries holds the same for each of
//            paths, changed or not, in the order asked (both lists are in
//            every reply, empty unless asked for). What
//            `manifestdict.diff` of the two manifests gives, without reading
//            either: the extension's update computes its actions from it.
//            With "manifest_text": true as well, changes and entries come
//            empty and the reply carries "from_manifest" and "to_manifest"
//            instead: each side of both lists as manifest text (one string
//            each, manifestTextOf), which Python parses in one C call.
//   request  {"version": 1, "op": "checkout", "from": "HEX40", "to": "HEX40",
//             "get": [...], "remove": [...], "exec": [...]}
//   reply    {"version": 1, "ok": true, "applied": N, "left": [...], "refused": [...],
//             "swapped": N, "materialized": N, "dematerialized": N, "micros": N}
//            Mercurial's update from FROM to TO, its plain file actions done by
//            the daemon (fs::FileSystem::checkout): each path of get becomes
//            TO's file, each of remove goes, each of exec takes TO's flags
//            (only where the mount has TO's very file, unmaterialized). left
//            names the flag changes not done (sorted), which the extension
//            does through the mount; when refused is not empty nothing was
//            done, and the extension does the whole update the stock way.
//   request  {"version": 1, "op": "stats"}
//   reply    {"version": 1, "ok": true, "stats": {...}, "micros": N}
//            What the mount holds and what it served since it was mounted
//            (`hgvfs stats`): "inodes", "overlay", "cache", "fuse" (per
//            request kind: count, total and percentiles in microseconds) and
//            "calls" (status, checkout, files, revision-diff, timed the same
//            way). The layout is the daemon's (status/mount_stats.h).
//   Nodes are full hex; forty zeros is the null revision (no files).
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
#include "base/latency_histogram.h"
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

// The kind of one path in one revision (a "files" reply).
enum class FileKind { kAbsent, kRegular, kExecutable, kSymlink };

struct FilesRequest {
  struct Dir {
    Bytes dir;                  // "" for the root
    std::vector<Bytes> except;  // full paths, not relative to dir
  };
  std::string node;  // 40 hex digits
  std::vector<Bytes> paths;
  std::vector<Dir> dirs;
};

struct FilesReply {
  std::vector<FileKind> kinds;  // parallel to the request's paths
  std::vector<bool> dirs;       // parallel to the request's dirs
  int64_t micros = 0;
};

struct RevisionDiffRequest {
  std::string from, to;       // 40 hex digits each
  bool entries = false;       // also answer changes and entries
  bool manifestText = false;  // with entries: as manifest text instead
  std::vector<Bytes> paths;   // the paths of entries
};

// One path's manifest entries in FROM and TO.
struct ManifestEntryPair {
  Bytes path;
  std::optional<std::string> fromNode, toNode;  // 40 hex digits; nullopt: no file
  std::string fromFlags, toFlags;               // "", "x" or "l"

  bool operator==(const ManifestEntryPair&) const = default;
};

struct RevisionDiffReply {
  std::vector<Bytes> onlyFrom, onlyTo;     // sorted bytewise
  std::vector<ManifestEntryPair> changes;  // sorted bytewise by path
  std::vector<ManifestEntryPair> entries;  // parallel to the request's paths
  // With manifest_text: changes and entries as each side's manifest text.
  std::optional<Bytes> fromManifest, toManifest;
  int64_t micros = 0;
};

// The manifest text (Mercurial's manifest v1 lines, "PATH\0HEXNODE FLAGS\n",
// sorted, each path once) of one side of `changes` and `entries`: the
// entries that side has a node for.
Bytes manifestTextOf(const std::vector<ManifestEntryPair>& changes,
                     const std::vector<ManifestEntryPair>& entries, bool fromSide);

struct CheckoutRequest {
  std::string from, to;  // 40 hex digits each
  std::vector<Bytes> get, remove, exec;
};

struct CheckoutReply {
  uint64_t applied = 0;
  std::vector<Bytes> left;     // sorted bytewise
  std::vector<Bytes> refused;  // sorted bytewise; not empty: nothing done
  uint64_t swapped = 0, materialized = 0, dematerialized = 0;
  int64_t micros = 0;
};

struct StatsRequest {};

// A timing (base/latency_histogram.h) as stats JSON: count, total_us,
// p50_us, p90_us, p99_us, max_us.
nlohmann::json latencyToJson(const LatencySummary& summary);

struct StatsReply {
  nlohmann::json stats;  // an object
  int64_t micros = 0;
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
// Through scanPlainStatusReply when it reads the line, else through
// decodeStatusReplyGeneral: the same answer either way.
Result<StatusReply> decodeStatusReply(const std::string& line);
// Through a parsed JSON document: any reply, any error.
Result<StatusReply> decodeStatusReplyGeneral(const std::string& line);
// A successful reply read in one pass without a JSON document (`hgvfs
// status` with thousands of changes spends its time decoding), or nullopt
// when the line is anything but plain: another version, an error, a key
// twice, a string holding a code point above U+00FF, a number with a
// fraction, malformed JSON.
std::optional<StatusReply> scanPlainStatusReply(const std::string& line);

std::string encodeFilesRequest(const FilesRequest& request);
std::string encodeFilesReply(const FilesReply& reply);
std::string encodeRevisionDiffRequest(const RevisionDiffRequest& request);
std::string encodeRevisionDiffReply(const RevisionDiffReply& reply);
// A parsed request (parseMessage) → its fields; Corrupt, saying which, for a
// missing or malformed field (a node that is not 40 hex digits, a path list
// holding a non-string, a path above U+00FF).
Result<FilesRequest> decodeFilesRequest(const nlohmann::json& request);
Result<RevisionDiffRequest> decodeRevisionDiffRequest(const nlohmann::json& request);
std::string encodeCheckoutRequest(const CheckoutRequest& request);
std::string encodeCheckoutReply(const CheckoutReply& reply);
Result<CheckoutRequest> decodeCheckoutRequest(const nlohmann::json& request);
Result<CheckoutReply> decodeCheckoutReply(const std::string& line);
std::string encodeStatsRequest(const StatsRequest& request);
std::string encodeStatsReply(const StatsReply& reply);
Result<StatsRequest> decodeStatsRequest(const nlohmann::json& request);
Result<StatsReply> decodeStatsReply(const std::string& line);
// Reply lines, as decodeStatusReply.
Result<FilesReply> decodeFilesReply(const std::string& line);
Result<RevisionDiffReply> decodeRevisionDiffReply(const std::string& line);

}  // namespace hgvfs::control
