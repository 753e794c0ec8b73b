// Overlay::examine (overlay_check.h): every record read raw, every
// invariant checked, and the repairs, which never delete user bytes.

#include "fs/overlay_check.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "fs/log.h"
#include "fs/overlay.h"

namespace hgvfs::fs {
namespace {

// The databases in the order Overlay::open names them.
constexpr size_t kDirsDb = 0;
constexpr size_t kInodeKeySize = 8;

std::string hex16(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// One directory's records as stored: the header (if any) and its entries.
struct RawDirectory {
  std::optional<Bytes> header;
  std::vector<std::pair<Bytes, Bytes>> entries;  // name, value
};

struct FileOnDisk {
  std::string path;
  std::string name;  // the file's own name under files/XX/
};

// A name under `dir` that does not exist yet: `base`, else base.1, base.2...
std::string freeName(const std::string& dir, const std::string& base) {
  std::string candidate = dir + "/" + base;
  for (int i = 1; ::access(candidate.c_str(), F_OK) == 0; ++i) {
    candidate = dir + "/" + base + "." + std::to_string(i);
  }
  return candidate;
}

Status moveToLostFound(const std::string& from, const std::string& lostFound,
                       const std::string& name, std::string* movedTo) {
  if (::mkdir(lostFound.c_str(), 0700) != 0 && errno != EEXIST) {
    int err = errno;
    return ioError(err, std::string("cannot create lost+found: ") + std::strerror(err), lostFound);
  }
  *movedTo = freeName(lostFound, name);
  if (::rename(from.c_str(), movedTo->c_str()) != 0) {
    int err = errno;
    return ioError(err, std::string("cannot move to lost+found: ") + std::strerror(err), from);
  }
  return okStatus();
}

}  // namespace

const char* findingKindName(OverlayFinding::Kind kind) {
  switch (kind) {
    case OverlayFinding::Kind::kCorruptRecord:
      return "corrupt overlay record";
    case OverlayFinding::Kind::kRecordWithoutFile:
      return "overlay record without its file";
    case OverlayFinding::Kind::kFileWithoutRecord:
      return "overlay file without a record";
    case OverlayFinding::Kind::kBrokenParentChain:
      return "broken overlay parent chain";
    case OverlayFinding::Kind::kInodeMarkTooLow:
      return "overlay inode mark too low";
  }
  return "overlay problem";
}

Result<std::vector<OverlayFinding>> Overlay::examine(bool fix, const std::string& lostFound) {
  std::vector<OverlayFinding> findings;
  auto found = [&](OverlayFinding::Kind kind, std::string what, std::string repair) {
    findings.push_back({kind, std::move(what), std::move(repair), false});
  };
  OverlayBatch repairs;
  uint64_t maxUsed = 1;
  bool anyRecord = false;

  // 1. Every record, raw.
  std::map<uint64_t, RawDirectory> dirs;
  std::vector<Bytes> badKeys;
  MDB_dbi dirsDbi = env_->dbi(kDirsDb);
  HG_RETURN_IF_ERROR(env_->scan(dirsDbi, {}, [&](ByteView key, ByteView value) {
    anyRecord = true;
    if (key.size() < kInodeKeySize) {
      badKeys.emplace_back(key);
      return true;
    }
    uint64_t dir = be64At(key, 0);
    maxUsed = std::max(maxUsed, dir);
    if (key.size() == kInodeKeySize) {
      dirs[dir].header = Bytes(value);
    } else {
      dirs[dir].entries.emplace_back(Bytes(key.substr(kInodeKeySize)), Bytes(value));
    }
    return true;
  }));
  for (const auto& key : badKeys) {
    found(OverlayFinding::Kind::kCorruptRecord,
          "a record with a key of " + std::to_string(key.size()) + " bytes ('" + printable(key) +
              "') in " + env_->path(),
          "remove the record");
    repairs.ops_.push_back({OverlayBatch::Op::kDelete, key, {}});
  }

  // 2. Decode each directory; corrupt headers get default ones, corrupt
  // entries go (an overlay file one named is then found below, unnamed).
  std::map<uint64_t, std::vector<std::pair<Bytes, OverlayEntry>>> decoded;
  for (auto& [dir, raw] : dirs) {
    auto where = "directory inode " + std::to_string(dir);
    if (!raw.header) {
      found(OverlayFinding::Kind::kCorruptRecord, where + " has entries but no header",
            "write a default header (mode 0755)");
      repairs.putHeader(dir, OverlayDirHeader{});
    } else if (auto h = OverlayDirHeader::decode(*raw.header); !h.ok()) {
      found(OverlayFinding::Kind::kCorruptRecord, where + ": " + h.error().message(),
            "rewrite the header with default fields (mode 0755)");
      repairs.putHeader(dir, OverlayDirHeader{});
    }
    auto& list = decoded[dir];
    for (auto& [name, value] : raw.entries) {
      auto e = OverlayEntry::decode(value);
      if (!e.ok()) {
        found(OverlayFinding::Kind::kCorruptRecord,
              "entry '" + printable(name) + "' of " + where + ": " + e.error().message(),
              "remove the entry (an overlay file it named goes to lost+found)");
        repairs.removeEntry(dir, name);
        continue;
      }
      maxUsed = std::max(maxUsed, e->ino);
      list.emplace_back(name, std::move(e).value());
    }
  }

  // 3. The parent chain, from the root: each directory reached once, each
  // materialized entry backed by its file or record.
  std::set<uint64_t> reached;
  std::set<uint64_t> named;  // overlay files of reachable entries
  std::map<uint64_t, Bytes> pathOf;
  std::deque<uint64_t> queue;
  if (dirs.count(1)) {
    queue.push_back(1);
    reached.insert(1);
    pathOf[1] = Bytes();
  }
  while (!queue.empty()) {
    uint64_t dir = queue.front();
    queue.pop_front();
    for (const auto& [name, entry] : decoded[dir]) {
      if (!entry.materialized) continue;
      Bytes path = pathOf[dir].empty() ? name : pathOf[dir] + "/" + name;
      if (S_ISDIR(entry.mode)) {
        if (!dirs.count(entry.ino)) {
          found(OverlayFinding::Kind::kRecordWithoutFile,
                "directory '" + printable(path) + "' (inode " + std::to_string(entry.ino) +
                    ") has no directory record",
                "remove the entry (its contents are the revision's or gone)");
          repairs.removeEntry(dir, name);
        } else if (!reached.insert(entry.ino).second) {
          found(OverlayFinding::Kind::kBrokenParentChain,
                "directory inode " + std::to_string(entry.ino) + " is reached a second time, as '" +
                    printable(path) + "'",
                "remove that second entry (the directory stays under its first name)");
          repairs.removeEntry(dir, name);
        } else {
          pathOf[entry.ino] = path;
          queue.push_back(entry.ino);
        }
        continue;
      }
      if (::access(filePath(entry.ino).c_str(), F_OK) != 0) {
        found(OverlayFinding::Kind::kRecordWithoutFile,
              "'" + printable(path) + "' (inode " + std::to_string(entry.ino) +
                  ") has no overlay file",
              "remove the entry (its content is gone)");
        repairs.removeEntry(dir, name);
        continue;
      }
      named.insert(entry.ino);
    }
  }

  // 4. Directory records the root does not reach: their changed files go
  // to lost+found under the directory's number and their own names.
  struct Move {
    std::string from, name;  // the overlay file, its name in lost+found
    size_t finding;          // the finding it repairs, or SIZE_MAX for a directory's
  };
  std::vector<Move> moves;
  std::set<uint64_t> moving;
  for (const auto& [dir, raw] : dirs) {
    if (reached.count(dir)) continue;
    size_t files = 0;
    for (const auto& [name, entry] : decoded[dir]) {
      if (!entry.materialized || S_ISDIR(entry.mode)) continue;
      if (::access(filePath(entry.ino).c_str(), F_OK) != 0 || !moving.insert(entry.ino).second) {
        continue;
      }
      moves.push_back({filePath(entry.ino), hex16(dir) + "-" + std::string(name), SIZE_MAX});
      ++files;
    }
    found(OverlayFinding::Kind::kBrokenParentChain,
          "directory record " + std::to_string(dir) + " (" + std::to_string(decoded[dir].size()) +
              " entries) is not reached from the root",
          "remove the record" +
              (files ? ", moving its " + std::to_string(files) + " changed files to " + lostFound
                     : std::string()));
    repairs.removeDirectory(dir);
  }

  // 5. Overlay files no reachable entry names, and half-written copies.
  std::string root = directory_ + "/files";
  if (DIR* top = ::opendir(root.c_str())) {
    while (dirent* sub = ::readdir(top)) {
      if (sub->d_name[0] == '.') continue;
      std::string subdir = root + "/" + sub->d_name;
      DIR* d = ::opendir(subdir.c_str());
      if (!d) continue;
      while (dirent* f = ::readdir(d)) {
        if (f->d_name[0] == '.') continue;
        std::string name = f->d_name;
        bool tmp = name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0;
        uint64_t ino = std::strtoull(name.c_str(), nullptr, 16);
        maxUsed = std::max(maxUsed, ino);
        if (!tmp && (named.count(ino) || moving.count(ino))) continue;
        found(OverlayFinding::Kind::kFileWithoutRecord,
              subdir + "/" + name + " is named by no entry",
              "move it to " + lostFound + "/" + name);
        moves.push_back({subdir + "/" + name, name, findings.size() - 1});
      }
      ::closedir(d);
    }
    ::closedir(top);
  }

  // 6. The inode mark.
  bool markLow = (anyRecord || maxUsed > 1) && reserved_ <= maxUsed;
  if (markLow) {
    found(OverlayFinding::Kind::kInodeMarkTooLow,
          "the inode mark " + std::to_string(reserved_) + " is not above inode " +
              std::to_string(maxUsed) + ", which is in use",
          "raise the mark to " + std::to_string(maxUsed + 1));
  }

  if (!fix || findings.empty()) return findings;
  // Files first: a crash after a move and before the commit leaves a record
  // without its file, which the next examine() reports; nothing is lost.
  for (const auto& move : moves) {
    std::string to;
    HG_RETURN_IF_ERROR(moveToLostFound(move.from, lostFound, move.name, &to));
    log().warn("overlay repair: moved {} to {}", move.from, to);
    if (move.finding != SIZE_MAX) findings[move.finding].fix = "moved it to " + to;
  }
  if (!repairs.empty()) HG_RETURN_IF_ERROR(commit(repairs));
  if (markLow) HG_RETURN_IF_ERROR(reserveInodes(maxUsed + 1));
  for (auto& f : findings) f.fixed = true;
  return findings;
}

}  // namespace hgvfs::fs
