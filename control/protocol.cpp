#include "control/protocol.h"

#include <nlohmann/json.hpp>

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

std::string encodeStatusReply(const StatusReply& reply) {
  json copies = json::object();
  for (const auto& [dest, source] : reply.copies) {
    copies[bytesToJsonString(dest)] = bytesToJsonString(source);
  }
  return json{{"version", kProtocolVersion},
              {"ok", true},
              {"p1", reply.p1},
              {"modified", pathList(reply.modified)},
              {"added", pathList(reply.added)},
              {"removed", pathList(reply.removed)},
              {"deleted", pathList(reply.deleted)},
              {"unknown", pathList(reply.unknown)},
              {"ignored", pathList(reply.ignored)},
              {"clean", pathList(reply.clean)},
              {"copies", copies},
              {"warnings", pathList(reply.warnings)},
              {"micros", reply.micros}}
      .dump();
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

Result<StatusReply> decodeStatusReply(const std::string& line) {
  auto parsed = parseMessage(line, "this hgvfs");
  if (!parsed.ok()) {
    if (parsed.error().kind == ErrorKind::kUnsupported) {
      return unsupported("the daemon's answer: " + parsed.error().what +
                         "; remount with this hgvfs");
    }
    return corrupt("malformed answer from the daemon: " + parsed.error().what);
  }
  const json& j = *parsed;
  try {
    if (!j.value("ok", false)) return invalidArgument(j.value("error", "the daemon failed"));
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
    out.micros = j.value("micros", int64_t{0});
    return out;
  } catch (const std::exception& e) {
    return corrupt(std::string("malformed answer from the daemon: ") + e.what());
  }
}

}  // namespace hgvfs::control
