#include "cli/stats_command.h"

#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "base/byte_size.h"
#include "base/mountinfo.h"
#include "control/client.h"
#include "control/protocol.h"
#include "daemon/client_dir.h"

namespace hgvfs::cli {
namespace {

using nlohmann::json;

int fail(const std::string& message) {
  std::fprintf(stderr, "hgvfs: %s\n", message.c_str());
  return 255;
}

uint64_t count(const json& j, const char* key) {
  return j.contains(key) && j[key].is_number_unsigned() ? j[key].get<uint64_t>() : 0;
}

std::string hitRate(uint64_t hits, uint64_t misses) {
  if (hits + misses == 0) return "no lookups";
  char buf[96];
  std::snprintf(buf, sizeof buf, "%llu hits, %llu misses, %.0f%%",
                static_cast<unsigned long long>(hits), static_cast<unsigned long long>(misses),
                100.0 * static_cast<double>(hits) / static_cast<double>(hits + misses));
  return buf;
}

void printTimings(const json& table) {
  std::printf("  %-16s %10s %12s %9s %9s %9s %9s\n", "", "count", "total ms", "p50 us", "p90 us",
              "p99 us", "max us");
  for (const auto& [name, t] : table.items()) {
    std::printf("  %-16s %10llu %12.1f %9llu %9llu %9llu %9llu\n", name.c_str(),
                static_cast<unsigned long long>(count(t, "count")),
                static_cast<double>(count(t, "total_us")) / 1000.0,
                static_cast<unsigned long long>(count(t, "p50_us")),
                static_cast<unsigned long long>(count(t, "p90_us")),
                static_cast<unsigned long long>(count(t, "p99_us")),
                static_cast<unsigned long long>(count(t, "max_us")));
  }
}

void printHuman(const std::string& mountPoint, const json& s) {
  const json& in = s["inodes"];
  const json& ov = s["overlay"];
  const json& mem = s["cache"]["memory"];
  const json& lmdb = s["cache"]["lmdb"];
  const json& repo = s["cache"]["repository"];
  std::printf("mount: %s\n\n", mountPoint.c_str());
  std::printf("inodes loaded: %llu directories, %llu files (%s in memory)\n",
              static_cast<unsigned long long>(count(in, "directories")),
              static_cast<unsigned long long>(count(in, "files")),
              formatByteSize(count(in, "memory_bytes")).c_str());
  std::printf("materialized (loaded): %llu directories, %llu files\n",
              static_cast<unsigned long long>(count(in, "materialized_directories")),
              static_cast<unsigned long long>(count(in, "materialized_files")));
  std::printf("overlay: %llu files, %s; metadata %s\n\n",
              static_cast<unsigned long long>(count(ov, "files")),
              formatByteSize(count(ov, "file_bytes")).c_str(),
              formatByteSize(count(ov, "meta_bytes")).c_str());
  std::printf("cache:\n");
  std::printf("  memory trees: %s (%s)\n", formatByteSize(count(mem, "tree_bytes")).c_str(),
              hitRate(count(mem, "tree_hits"), count(mem, "tree_misses")).c_str());
  std::printf("  memory blobs: %s (%s)\n", formatByteSize(count(mem, "blob_bytes")).c_str(),
              hitRate(count(mem, "blob_hits"), count(mem, "blob_misses")).c_str());
  std::printf("  lmdb: %s on disk; blobs %s; sizes %llu hits; %llu tree reads\n",
              formatByteSize(count(lmdb, "file_bytes")).c_str(),
              hitRate(count(lmdb, "blob_hits"), count(repo, "blob_reads")).c_str(),
              static_cast<unsigned long long>(count(lmdb, "size_hits")),
              static_cast<unsigned long long>(count(lmdb, "tree_reads")));
  std::printf("  repository: %llu blob reads, %llu size reads\n\n",
              static_cast<unsigned long long>(count(repo, "blob_reads")),
              static_cast<unsigned long long>(count(repo, "size_reads")));
  std::printf("fuse requests since mount:\n");
  printTimings(s["fuse"]);
  std::printf("\ncalls:\n");
  printTimings(s["calls"]);
}

// The mount point the arguments name, as an absolute path.
std::string mountPointFor(const std::string& given, std::string* why) {
  char buf[PATH_MAX];
  if (given.empty()) {
    if (!::getcwd(buf, sizeof buf)) {
      *why = std::string("getcwd: ") + strerror(errno);
      return {};
    }
    std::string mount = innermostMountOf(buf, "fuse.hgvfs");
    if (mount.empty()) *why = std::string("not inside an hgvfs mount (") + buf + ")";
    return mount;
  }
  if (!::realpath(given.c_str(), buf)) {
    *why = given + ": " + strerror(errno);
    return {};
  }
  auto type = mountTypeAt(buf);
  if (!type || *type != "fuse.hgvfs") {
    *why = std::string(buf) + " is not an hgvfs mount";
    return {};
  }
  return buf;
}

}  // namespace

int statsCommand(const StatsArgs& args) {
  if (!args.template_.empty() && args.template_ != "json") {
    return fail("only -T json is supported (got '" + args.template_ + "')");
  }
  std::string why;
  std::string mountPoint = mountPointFor(args.mount, &why);
  if (mountPoint.empty()) return fail(why);
  std::string socket = control::socketPath(daemon::clientDirectoryFor(mountPoint));
  auto client = control::Client::connect(socket);
  if (!client.ok()) return fail(client.error().message());
  auto line = client->roundTrip(control::encodeStatsRequest({}));
  if (!line.ok()) return fail(line.error().message());
  auto reply = control::decodeStatsReply(*line);
  if (!reply.ok()) return fail(reply.error().message());
  json& s = reply->stats;
  for (const char* key : {"inodes", "overlay", "cache", "fuse", "calls"}) {
    if (!s.contains(key) || !s[key].is_object()) {
      return fail(std::string("the daemon's stats have no '") + key + "'");
    }
  }
  if (args.template_ == "json") {
    s["mount"] = mountPoint;
    std::printf("%s\n", s.dump(1).c_str());
  } else {
    printHuman(mountPoint, s);
  }
  return 0;
}

}  // namespace hgvfs::cli
