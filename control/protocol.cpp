#include "control/protocol.h"

#include <algorithm>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string_view>

namespace hgvfs::control {

using nlohmann::json;

std::string socketPath(const std::string& clientDirectory) { return clientDirectory + "/socket"; }

std::string bytesToJsonString(ByteView bytes) {
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

Result<Bytes> jsonStringToBytes(const std::string& s) {
  Bytes out;
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
      return invalidArgument("a path holds a character above U+00FF");
    }
  }
  return out;
}

namespace {

json pathList(const std::vector<Bytes>& paths) {
  json list = json::array();
  for (const auto& p : paths) list.push_back(bytesToJsonString(p));
  return list;
}

Status readPathList(const json& reply, const char* key, std::vector<Bytes>& out) {
  if (!reply.contains(key)) return okStatus();
  if (!reply[key].is_array()) return corrupt(std::string("'") + key + "' is not a list");
  for (const auto& item : reply[key]) {
    if (!item.is_string()) return corrupt(std::string("'") + key + "' holds a non-string");
    HG_ASSIGN_OR_RETURN(Bytes path, jsonStringToBytes(item.get<std::string>()));
    out.push_back(std::move(path));
  }
  return okStatus();
}

bool isFullHex(const std::string& s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
         });
}

Result<std::string> readNode(const json& request, const char* key) {
  if (!request.contains(key) || !request[key].is_string()) {
    return corrupt(std::string("'") + key + "' is missing or not a string");
  }
  std::string node = request[key].get<std::string>();
  if (!isFullHex(node)) return corrupt(std::string("'") + key + "' is not 40 hex digits");
  return node;
}

Result<Bytes> readPath(const json& item, const char* key) {
  if (!item.is_string()) return corrupt(std::string("'") + key + "' holds a non-string");
  auto path = jsonStringToBytes(item.get<std::string>());
  if (!path.ok()) return corrupt(std::string("'") + key + "': " + path.error().what);
  return path;
}

Status readEntryPairList(const json& reply, const char* key, std::vector<ManifestEntryPair>& out) {
  if (!reply.contains(key)) return okStatus();
  const std::string what = std::string("'") + key + "'";
  if (!reply[key].is_array()) return corrupt(what + " is not a list");
  auto node = [&](const json& v, std::optional<std::string>& into) -> Status {
    if (v.is_null()) return okStatus();
    if (!v.is_string() || !isFullHex(v.get<std::string>())) {
      return corrupt(what + " holds a node that is not 40 hex digits");
    }
    into = v.get<std::string>();
    return okStatus();
  };
  auto flags = [&](const json& v, std::string& into) -> Status {
    if (!v.is_string()) return corrupt(what + " holds flags that are not a string");
    into = v.get<std::string>();
    if (into != "" && into != "x" && into != "l") {
      return corrupt(what + " holds flags other than \"\", \"x\" or \"l\"");
    }
    return okStatus();
  };
  for (const auto& item : reply[key]) {
    if (!item.is_array() || item.size() != 5) {
      return corrupt(what + " holds something other than [path, node, flags, node, flags]");
    }
    ManifestEntryPair e;
    HG_ASSIGN_OR_RETURN(e.path, readPath(item[0], key));
    HG_RETURN_IF_ERROR(node(item[1], e.fromNode));
    HG_RETURN_IF_ERROR(flags(item[2], e.fromFlags));
    HG_RETURN_IF_ERROR(node(item[3], e.toNode));
    HG_RETURN_IF_ERROR(flags(item[4], e.toFlags));
    out.push_back(std::move(e));
  }
  return okStatus();
}

const char* kindName(FileKind kind) {
  switch (kind) {
    case FileKind::kExecutable:
      return "x";
    case FileKind::kSymlink:
      return "l";
    default:
      return "";
  }
}

// The parsed reply line of the daemon, or why it is not one (as
// decodeStatusReply words it).
Result<json> parseReply(const std::string& line) {
  auto parsed = parseMessage(line, "this hgvfs");
  if (!parsed.ok()) {
    if (parsed.error().kind == ErrorKind::kUnsupported) {
      return unsupported("the daemon's answer: " + parsed.error().what +
                         "; remount with this hgvfs");
    }
    return corrupt("malformed answer from the daemon: " + parsed.error().what);
  }
  try {
    if (!parsed->value("ok", false)) {
      return invalidArgument(parsed->value("error", "the daemon failed"));
    }
  } catch (const std::exception& e) {
    return corrupt(std::string("malformed answer from the daemon: ") + e.what());
  }
  return parsed;
}

}  // namespace

std::string encodeStatusRequest(const StatusRequest& request) {
  json j{{"version", kProtocolVersion},
         {"op", "status"},
         {"unknown", request.unknown},
         {"ignored", request.ignored},
         {"clean", request.clean}};
  if (request.rev) j["rev"] = *request.rev;
  return j.dump();
}

namespace {

// Bytes as a JSON string of the code points of the same values, appended
// (what json(bytesToJsonString(bytes)).dump() gives, without the copies).
void appendJsonString(std::string& out, ByteView bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  const char* p = bytes.data();
  const char* end = p + bytes.size();
  while (p != end) {
    const char* run = p;
    while (p != end && static_cast<unsigned char>(*p) >= 0x20 &&
           static_cast<unsigned char>(*p) < 0x80 && *p != '"' && *p != '\\') {
      ++p;
    }
    out.append(run, p);
    if (p == end) break;
    unsigned char c = static_cast<unsigned char>(*p++);
    if (c >= 0x80) {
      out.push_back(static_cast<char>(0xc0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
    } else if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else {  // a control character
      out += "\\u00";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  out.push_back('"');
}

void appendPathList(std::string& out, const char* key, const std::vector<Bytes>& paths) {
  out += ",\"";
  out += key;
  out += "\":[";
  for (size_t i = 0; i < paths.size(); ++i) {
    if (i) out.push_back(',');
    appendJsonString(out, paths[i]);
  }
  out.push_back(']');
}

}  // namespace

// Written directly, not through a JSON document: a reply with thousands of
// paths is the daemon's largest cost of a status call otherwise.
std::string encodeStatusReply(const StatusReply& reply) {
  size_t size = 256 + reply.p1.size();
  for (const auto* list : {&reply.modified, &reply.added, &reply.removed, &reply.deleted,
                           &reply.unknown, &reply.ignored, &reply.clean, &reply.warnings}) {
    for (const auto& p : *list) size += p.size() + 3;
  }
  for (const auto& [dest, source] : reply.copies) size += dest.size() + source.size() + 6;
  std::string out;
  out.reserve(size);
  out += "{\"version\":" + std::to_string(kProtocolVersion) + ",\"ok\":true,\"p1\":";
  appendJsonString(out, reply.p1);
  appendPathList(out, "modified", reply.modified);
  appendPathList(out, "added", reply.added);
  appendPathList(out, "removed", reply.removed);
  appendPathList(out, "deleted", reply.deleted);
  appendPathList(out, "unknown", reply.unknown);
  appendPathList(out, "ignored", reply.ignored);
  appendPathList(out, "clean", reply.clean);
  // An object holds each key once (the last one wins, as a JSON document
  // built from the list would keep it).
  std::vector<const std::pair<Bytes, Bytes>*> copies;
  copies.reserve(reply.copies.size());
  for (const auto& c : reply.copies) copies.push_back(&c);
  std::stable_sort(copies.begin(), copies.end(),
                   [](const auto* a, const auto* b) { return a->first < b->first; });
  out += ",\"copies\":{";
  bool first = true;
  for (size_t i = 0; i < copies.size(); ++i) {
    if (i + 1 < copies.size() && copies[i + 1]->first == copies[i]->first) continue;
    if (!first) out.push_back(',');
    first = false;
    appendJsonString(out, copies[i]->first);
    out.push_back(':');
    appendJsonString(out, copies[i]->second);
  }
  out.push_back('}');
  appendPathList(out, "warnings", reply.warnings);
  out += ",\"micros\":" + std::to_string(reply.micros) + "}";
  return out;
}

std::string encodeError(const std::string& message) {
  return json{{"version", kProtocolVersion}, {"ok", false}, {"error", message}}.dump();
}

Result<json> parseMessage(const std::string& line, const std::string& self) {
  json j;
  try {
    j = json::parse(line);
  } catch (const std::exception& e) {
    return corrupt(e.what());
  }
  if (!j.is_object()) return corrupt("not an object");
  if (!j.contains("version") || !j["version"].is_number_integer()) return corrupt("no version");
  int version = j["version"].get<int>();
  if (version != kProtocolVersion) {
    return unsupported("protocol version " + std::to_string(version) + " is not supported (" +
                       self + " speaks " + std::to_string(kProtocolVersion) + ")");
  }
  return j;
}

namespace {

// A status reply read in one pass, without building a JSON document: the
// reply of a status with thousands of changes is mostly path strings, and
// `hgvfs status` spends its time here. It accepts only what it fully
// understands (the daemon's own replies: version 1, ok true, each key once,
// every string holding code points up to U+00FF, integers without fraction
// or exponent); anything else, well formed or not, goes to the general
// decoder, which gives the answer or the error.
class StatusReplyScanner {
 public:
  explicit StatusReplyScanner(const std::string& line)
      : p_(line.data()), end_(line.data() + line.size()) {}

  std::optional<StatusReply> scan() {
    StatusReply out;
    bool sawVersion = false, sawOk = false;
    uint32_t seen = 0;
    if (!consume('{')) return std::nullopt;
    if (consume('}')) return std::nullopt;  // no version
    do {
      Bytes key;
      if (!string(key) || !consume(':')) return std::nullopt;
      int index = keyIndex(key);
      if (index >= 0) {
        if (seen & (1u << index)) return std::nullopt;  // the general decoder keeps the last
        seen |= 1u << index;
      }
      bool ok = true;
      switch (index) {
        case kVersion: {
          int64_t v = 0;
          ok = integer(v) && v == kProtocolVersion;
          sawVersion = true;
          break;
        }
        case kOk:
          ok = literal("true");
          sawOk = true;
          break;
        case kP1: {
          Bytes p1;
          ok = string(p1);
          out.p1.assign(p1.begin(), p1.end());
          break;
        }
        case kCopies:
          ok = copies(out.copies);
          break;
        case kMicros:
          ok = integer(out.micros);
          break;
        case -1:
          ok = skipValue(0);
          break;
        default:
          ok = pathList(*listFor(out, index));
      }
      if (!ok) return std::nullopt;
    } while (consume(','));
    if (!consume('}')) return std::nullopt;
    skipSpace();
    if (p_ != end_ || !sawVersion || !sawOk) return std::nullopt;
    return out;
  }

 private:
  enum {
    kVersion,
    kOk,
    kP1,
    kModified,
    kAdded,
    kRemoved,
    kDeleted,
    kUnknown,
    kIgnored,
    kClean,
    kWarnings,
    kCopies,
    kMicros
  };

  static int keyIndex(const Bytes& key) {
    static constexpr std::string_view kNames[] = {
        "version", "ok",      "p1",    "modified", "added",  "removed", "deleted",
        "unknown", "ignored", "clean", "warnings", "copies", "micros"};
    for (size_t i = 0; i < std::size(kNames); ++i) {
      if (std::string_view(key.data(), key.size()) == kNames[i]) return static_cast<int>(i);
    }
    return -1;
  }

  static std::vector<Bytes>* listFor(StatusReply& out, int index) {
    switch (index) {
      case kModified:
        return &out.modified;
      case kAdded:
        return &out.added;
      case kRemoved:
        return &out.removed;
      case kDeleted:
        return &out.deleted;
      case kUnknown:
        return &out.unknown;
      case kIgnored:
        return &out.ignored;
      case kClean:
        return &out.clean;
      default:
        return &out.warnings;
    }
  }

  void skipSpace() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }

  bool consume(char c) {
    skipSpace();
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }

  bool literal(std::string_view word) {
    skipSpace();
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  bool integer(int64_t& out) {
    skipSpace();
    bool negative = p_ != end_ && *p_ == '-';
    if (negative) ++p_;
    const char* start = p_;
    uint64_t v = 0;
    constexpr uint64_t kMax = static_cast<uint64_t>(INT64_MAX);
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') {
      uint64_t digit = static_cast<uint64_t>(*p_ - '0');
      if (v > (kMax - digit) / 10) return false;  // left to the general decoder
      v = v * 10 + digit;
      ++p_;
    }
    size_t digits = static_cast<size_t>(p_ - start);
    if (digits == 0 || (digits > 1 && *start == '0')) return false;
    if (p_ != end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;
    out = negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
    return true;
  }

  static int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // A JSON string whose code points are all up to U+00FF, as those bytes.
  bool string(Bytes& out) {
    skipSpace();
    if (p_ == end_ || *p_ != '"') return false;
    ++p_;
    for (;;) {
      const char* run = p_;
      while (p_ != end_ && static_cast<unsigned char>(*p_) >= 0x20 &&
             static_cast<unsigned char>(*p_) < 0x80 && *p_ != '"' && *p_ != '\\') {
        ++p_;
      }
      out.append(run, p_);
      if (p_ == end_) return false;
      unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c == '\\') {
        if (end_ - p_ < 2) return false;
        char e = p_[1];
        p_ += 2;
        switch (e) {
          case '"':
          case '\\':
          case '/':
            out.push_back(e);
            break;
          case 'b':
            out.push_back('\b');
            break;
          case 'f':
            out.push_back('\f');
            break;
          case 'n':
            out.push_back('\n');
            break;
          case 'r':
            out.push_back('\r');
            break;
          case 't':
            out.push_back('\t');
            break;
          case 'u': {
            if (end_ - p_ < 4) return false;
            int v = 0;
            for (int i = 0; i < 4; ++i) {
              int h = hexValue(p_[i]);
              if (h < 0) return false;
              v = v * 16 + h;
            }
            if (v > 0xff) return false;
            out.push_back(static_cast<char>(v));
            p_ += 4;
            break;
          }
          default:
            return false;
        }
        continue;
      }
      // U+0080..U+00FF as UTF-8: 0xC2 or 0xC3 and one continuation byte.
      if ((c == 0xc2 || c == 0xc3) && end_ - p_ >= 2 &&
          (static_cast<unsigned char>(p_[1]) & 0xc0) == 0x80) {
        out.push_back(static_cast<char>(((c & 0x1f) << 6) | (p_[1] & 0x3f)));
        p_ += 2;
        continue;
      }
      return false;  // a control character, or a code point above U+00FF
    }
  }

  bool pathList(std::vector<Bytes>& out) {
    if (!consume('[')) return false;
    if (consume(']')) return true;
    do {
      Bytes path;
      if (!string(path)) return false;
      out.push_back(std::move(path));
    } while (consume(','));
    return consume(']');
  }

  bool copies(std::vector<std::pair<Bytes, Bytes>>& out) {
    if (!consume('{')) return false;
    if (consume('}')) return true;
    do {
      Bytes dest, source;
      if (!string(dest) || !consume(':') || !string(source)) return false;
      out.emplace_back(std::move(dest), std::move(source));
    } while (consume(','));
    if (!consume('}')) return false;
    // The general decoder reads an object: sorted by key, a repeated key once.
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    return std::adjacent_find(out.begin(), out.end(), [](const auto& a, const auto& b) {
             return a.first == b.first;
           }) == out.end();
  }

  // Any other value, for keys a later daemon may add.
  bool skipValue(int depth) {
    if (depth > 64) return false;
    skipSpace();
    if (p_ == end_) return false;
    switch (*p_) {
      case '"': {
        Bytes ignored;
        return string(ignored);
      }
      case '[':
        ++p_;
        if (consume(']')) return true;
        do {
          if (!skipValue(depth + 1)) return false;
        } while (consume(','));
        return consume(']');
      case '{':
        ++p_;
        if (consume('}')) return true;
        do {
          Bytes key;
          if (!string(key) || !consume(':') || !skipValue(depth + 1)) return false;
        } while (consume(','));
        return consume('}');
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default: {
        int64_t ignored;
        return integer(ignored);
      }
    }
  }

  const char* p_;
  const char* end_;
};

}  // namespace

std::optional<StatusReply> scanPlainStatusReply(const std::string& line) {
  return StatusReplyScanner(line).scan();
}

Result<StatusReply> decodeStatusReply(const std::string& line) {
  if (auto fast = scanPlainStatusReply(line)) return std::move(*fast);
  return decodeStatusReplyGeneral(line);
}

Result<StatusReply> decodeStatusReplyGeneral(const std::string& line) {
  HG_ASSIGN_OR_RETURN(json j, parseReply(line));
  try {
    StatusReply out;
    out.p1 = j.value("p1", "");
    for (auto [key, list] : {std::pair{"modified", &out.modified},
                             {"added", &out.added},
                             {"removed", &out.removed},
                             {"deleted", &out.deleted},
                             {"unknown", &out.unknown},
                             {"ignored", &out.ignored},
                             {"clean", &out.clean},
                             {"warnings", &out.warnings}}) {
      HG_RETURN_IF_ERROR(readPathList(j, key, *list));
    }
    if (j.contains("copies")) {
      if (!j["copies"].is_object()) return corrupt("'copies' is not an object");
      for (const auto& [dest, src] : j["copies"].items()) {
        if (!src.is_string()) return corrupt("'copies' holds a non-string");
        HG_ASSIGN_OR_RETURN(Bytes d, jsonStringToBytes(dest));
        HG_ASSIGN_OR_RETURN(Bytes s, jsonStringToBytes(src.get<std::string>()));
        out.copies.emplace_back(std::move(d), std::move(s));
      }
    }
    // Only an integer: a number out of int64's range would be undefined
    // behaviour to convert.
    if (j.contains("micros") && j["micros"].is_number_integer()) {
      out.micros = j["micros"].get<int64_t>();
    }
    return out;
  } catch (const std::exception& e) {
    return corrupt(std::string("malformed answer from the daemon: ") + e.what());
  }
}

std::string encodeFilesRequest(const FilesRequest& request) {
  json dirs = json::array();
  for (const auto& d : request.dirs) {
    dirs.push_back(json{{"dir", bytesToJsonString(d.dir)}, {"except", pathList(d.except)}});
  }
  return json{{"version", kProtocolVersion},
              {"op", "files"},
              {"node", request.node},
              {"paths", pathList(request.paths)},
              {"dirs", dirs}}
      .dump();
}

std::string encodeFilesReply(const FilesReply& reply) {
  json kinds = json::array();
  for (FileKind k : reply.kinds) {
    if (k == FileKind::kAbsent) {
      kinds.push_back(nullptr);
    } else {
      kinds.push_back(kindName(k));
    }
  }
  json dirs = json::array();
  for (bool b : reply.dirs) dirs.push_back(b);
  return json{{"version", kProtocolVersion},
              {"ok", true},
              {"kinds", kinds},
              {"dirs", dirs},
              {"micros", reply.micros}}
      .dump();
}

std::string encodeRevisionDiffRequest(const RevisionDiffRequest& request) {
  json j{{"version", kProtocolVersion},
         {"op", "revision-diff"},
         {"from", request.from},
         {"to", request.to}};
  if (request.entries) {
    j["entries"] = true;
    j["paths"] = pathList(request.paths);
    if (request.manifestText) j["manifest_text"] = true;
  }
  return j.dump();
}

namespace {

void appendEntryPairList(std::string& out, const char* key,
                         const std::vector<ManifestEntryPair>& pairs) {
  out += ",\"";
  out += key;
  out += "\":[";
  auto node = [&out](const std::optional<std::string>& n) {
    if (n) {
      appendJsonString(out, *n);
    } else {
      out += "null";
    }
  };
  for (size_t i = 0; i < pairs.size(); ++i) {
    const ManifestEntryPair& e = pairs[i];
    if (i) out.push_back(',');
    out.push_back('[');
    appendJsonString(out, e.path);
    out.push_back(',');
    node(e.fromNode);
    out.push_back(',');
    appendJsonString(out, e.fromFlags);
    out.push_back(',');
    node(e.toNode);
    out.push_back(',');
    appendJsonString(out, e.toFlags);
    out.push_back(']');
  }
  out.push_back(']');
}

}  // namespace

// Written directly, as the status reply: an update's diff names every file
// that differs between two revisions (tens of thousands, with two nodes
// each), and a JSON document of it cost more than the diff itself.
std::string encodeRevisionDiffReply(const RevisionDiffReply& reply) {
  size_t size = 256;
  for (const auto* list : {&reply.onlyFrom, &reply.onlyTo}) {
    for (const auto& p : *list) size += p.size() + 3;
  }
  for (const auto* list : {&reply.changes, &reply.entries}) {
    for (const auto& e : *list) size += e.path.size() + 100;
  }
  std::string out;
  out.reserve(size);
  out += "{\"version\":" + std::to_string(kProtocolVersion) + ",\"ok\":true";
  appendPathList(out, "only_from", reply.onlyFrom);
  appendPathList(out, "only_to", reply.onlyTo);
  appendEntryPairList(out, "changes", reply.changes);
  appendEntryPairList(out, "entries", reply.entries);
  for (auto [key, text] : {std::pair{"from_manifest", &reply.fromManifest},
                           std::pair{"to_manifest", &reply.toManifest}}) {
    if (!*text) continue;
    out += ",\"";
    out += key;
    out += "\":";
    appendJsonString(out, **text);
  }
  out += ",\"micros\":" + std::to_string(reply.micros) + "}";
  return out;
}

Result<FilesRequest> decodeFilesRequest(const json& request) {
  FilesRequest out;
  HG_ASSIGN_OR_RETURN(out.node, readNode(request, "node"));
  if (request.contains("paths") && !request["paths"].is_null()) {
    if (!request["paths"].is_array()) return corrupt("'paths' is not a list");
    out.paths.reserve(request["paths"].size());
    for (const auto& item : request["paths"]) {
      HG_ASSIGN_OR_RETURN(Bytes path, readPath(item, "paths"));
      out.paths.push_back(std::move(path));
    }
  }
  if (request.contains("dirs") && !request["dirs"].is_null()) {
    if (!request["dirs"].is_array()) return corrupt("'dirs' is not a list");
    for (const auto& item : request["dirs"]) {
      if (!item.is_object() || !item.contains("dir")) {
        return corrupt("'dirs' holds something other than {\"dir\": ..., \"except\": [...]}");
      }
      FilesRequest::Dir dir;
      HG_ASSIGN_OR_RETURN(dir.dir, readPath(item["dir"], "dir"));
      if (item.contains("except") && !item["except"].is_null()) {
        if (!item["except"].is_array()) return corrupt("'except' is not a list");
        for (const auto& e : item["except"]) {
          HG_ASSIGN_OR_RETURN(Bytes path, readPath(e, "except"));
          dir.except.push_back(std::move(path));
        }
      }
      out.dirs.push_back(std::move(dir));
    }
  }
  return out;
}

Result<RevisionDiffRequest> decodeRevisionDiffRequest(const json& request) {
  RevisionDiffRequest out;
  HG_ASSIGN_OR_RETURN(out.from, readNode(request, "from"));
  HG_ASSIGN_OR_RETURN(out.to, readNode(request, "to"));
  if (request.contains("entries")) {
    if (!request["entries"].is_boolean()) return corrupt("'entries' is not a boolean");
    out.entries = request["entries"].get<bool>();
  }
  if (request.contains("manifest_text")) {
    if (!request["manifest_text"].is_boolean()) {
      return corrupt("'manifest_text' is not a boolean");
    }
    out.manifestText = request["manifest_text"].get<bool>();
  }
  if (request.contains("paths") && !request["paths"].is_null()) {
    if (!request["paths"].is_array()) return corrupt("'paths' is not a list");
    for (const auto& item : request["paths"]) {
      HG_ASSIGN_OR_RETURN(Bytes path, readPath(item, "paths"));
      out.paths.push_back(std::move(path));
    }
  }
  return out;
}

Bytes manifestTextOf(const std::vector<ManifestEntryPair>& changes,
                     const std::vector<ManifestEntryPair>& entries, bool fromSide) {
  std::vector<const ManifestEntryPair*> lines;
  lines.reserve(changes.size() + entries.size());
  for (const auto* list : {&changes, &entries}) {
    for (const auto& e : *list) {
      if (fromSide ? e.fromNode.has_value() : e.toNode.has_value()) lines.push_back(&e);
    }
  }
  std::stable_sort(lines.begin(), lines.end(),
                   [](const auto* a, const auto* b) { return a->path < b->path; });
  Bytes out;
  out.reserve(lines.size() * 100);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i && lines[i]->path == lines[i - 1]->path) continue;  // one line a path
    const ManifestEntryPair& e = *lines[i];
    out += e.path;
    out.push_back('\0');
    out += fromSide ? *e.fromNode : *e.toNode;
    out += fromSide ? e.fromFlags : e.toFlags;
    out.push_back('\n');
  }
  return out;
}

Result<FilesReply> decodeFilesReply(const std::string& line) {
  HG_ASSIGN_OR_RETURN(json j, parseReply(line));
  FilesReply out;
  if (j.contains("kinds")) {
    if (!j["kinds"].is_array()) return corrupt("'kinds' is not a list");
    for (const auto& k : j["kinds"]) {
      if (k.is_null()) {
        out.kinds.push_back(FileKind::kAbsent);
        continue;
      }
      std::string s = k.is_string() ? k.get<std::string>() : "?";
      if (s == "") {
        out.kinds.push_back(FileKind::kRegular);
      } else if (s == "x") {
        out.kinds.push_back(FileKind::kExecutable);
      } else if (s == "l") {
        out.kinds.push_back(FileKind::kSymlink);
      } else {
        return corrupt("'kinds' holds something other than \"\", \"x\", \"l\" or null");
      }
    }
  }
  if (j.contains("dirs")) {
    if (!j["dirs"].is_array()) return corrupt("'dirs' is not a list");
    for (const auto& b : j["dirs"]) {
      if (!b.is_boolean()) return corrupt("'dirs' holds a non-boolean");
      out.dirs.push_back(b.get<bool>());
    }
  }
  if (j.contains("micros") && j["micros"].is_number_integer()) {
    out.micros = j["micros"].get<int64_t>();
  }
  return out;
}

Result<RevisionDiffReply> decodeRevisionDiffReply(const std::string& line) {
  HG_ASSIGN_OR_RETURN(json j, parseReply(line));
  RevisionDiffReply out;
  HG_RETURN_IF_ERROR(readPathList(j, "only_from", out.onlyFrom));
  HG_RETURN_IF_ERROR(readPathList(j, "only_to", out.onlyTo));
  HG_RETURN_IF_ERROR(readEntryPairList(j, "changes", out.changes));
  HG_RETURN_IF_ERROR(readEntryPairList(j, "entries", out.entries));
  for (auto [key, text] :
       {std::pair{"from_manifest", &out.fromManifest}, std::pair{"to_manifest", &out.toManifest}}) {
    if (!j.contains(key)) continue;
    if (!j[key].is_string()) return corrupt(std::string("'") + key + "' is not a string");
    auto bytes = jsonStringToBytes(j[key].get<std::string>());
    if (!bytes.ok()) return corrupt(std::string("'") + key + "': " + bytes.error().what);
    *text = std::move(*bytes);
  }
  if (j.contains("micros") && j["micros"].is_number_integer()) {
    out.micros = j["micros"].get<int64_t>();
  }
  return out;
}

std::string encodeCheckoutRequest(const CheckoutRequest& request) {
  return json{{"version", kProtocolVersion},   {"op", "checkout"},
              {"from", request.from},          {"to", request.to},
              {"get", pathList(request.get)},  {"remove", pathList(request.remove)},
              {"exec", pathList(request.exec)}}
      .dump();
}

std::string encodeCheckoutReply(const CheckoutReply& reply) {
  return json{{"version", kProtocolVersion},
              {"ok", true},
              {"applied", reply.applied},
              {"left", pathList(reply.left)},
              {"refused", pathList(reply.refused)},
              {"swapped", reply.swapped},
              {"materialized", reply.materialized},
              {"dematerialized", reply.dematerialized},
              {"micros", reply.micros}}
      .dump();
}

Result<CheckoutRequest> decodeCheckoutRequest(const json& request) {
  CheckoutRequest out;
  HG_ASSIGN_OR_RETURN(out.from, readNode(request, "from"));
  HG_ASSIGN_OR_RETURN(out.to, readNode(request, "to"));
  for (auto [key, list] : {std::pair<const char*, std::vector<Bytes>*>{"get", &out.get},
                           std::pair<const char*, std::vector<Bytes>*>{"remove", &out.remove},
                           std::pair<const char*, std::vector<Bytes>*>{"exec", &out.exec}}) {
    if (!request.contains(key) || request[key].is_null()) continue;
    if (!request[key].is_array()) return corrupt(std::string("'") + key + "' is not a list");
    list->reserve(request[key].size());
    for (const auto& item : request[key]) {
      HG_ASSIGN_OR_RETURN(Bytes path, readPath(item, key));
      list->push_back(std::move(path));
    }
  }
  return out;
}

Result<CheckoutReply> decodeCheckoutReply(const std::string& line) {
  HG_ASSIGN_OR_RETURN(json j, parseReply(line));
  CheckoutReply out;
  HG_RETURN_IF_ERROR(readPathList(j, "left", out.left));
  HG_RETURN_IF_ERROR(readPathList(j, "refused", out.refused));
  for (auto [key, field] :
       {std::pair<const char*, uint64_t*>{"applied", &out.applied},
        std::pair<const char*, uint64_t*>{"swapped", &out.swapped},
        std::pair<const char*, uint64_t*>{"materialized", &out.materialized},
        std::pair<const char*, uint64_t*>{"dematerialized", &out.dematerialized}}) {
    if (!j.contains(key) || !j[key].is_number_unsigned()) {
      return corrupt(std::string("'") + key + "' is not a count");
    }
    *field = j[key].get<uint64_t>();
  }
  if (j.contains("micros") && j["micros"].is_number_integer()) {
    out.micros = j["micros"].get<int64_t>();
  }
  return out;
}

json latencyToJson(const LatencySummary& s) {
  return json{{"count", s.count},         {"total_us", s.totalNs / 1000},
              {"p50_us", s.p50Ns / 1000}, {"p90_us", s.p90Ns / 1000},
              {"p99_us", s.p99Ns / 1000}, {"max_us", s.maxNs / 1000}};
}

std::string encodeStatsRequest(const StatsRequest&) {
  return json{{"version", kProtocolVersion}, {"op", "stats"}}.dump();
}

std::string encodeStatsReply(const StatsReply& reply) {
  return json{
      {"version", kProtocolVersion}, {"ok", true}, {"stats", reply.stats}, {"micros", reply.micros}}
      .dump();
}

Result<StatsRequest> decodeStatsRequest(const json&) { return StatsRequest{}; }

Result<StatsReply> decodeStatsReply(const std::string& line) {
  HG_ASSIGN_OR_RETURN(json j, parseReply(line));
  if (!j.contains("stats") || !j["stats"].is_object()) return corrupt("'stats' is not an object");
  StatsReply out;
  out.stats = std::move(j["stats"]);
  if (j.contains("micros") && j["micros"].is_number_integer()) {
    out.micros = j["micros"].get<int64_t>();
  }
  return out;
}

}  // namespace hgvfs::control
