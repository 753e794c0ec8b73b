// Overlay::examine (fs/overlay_check.h): each invariant broken on purpose in
// a temporary overlay is reported, left alone without fix, repaired with
// fix, and no user byte is lost (what no entry names is in lost+found).

#include "fs/overlay_check.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "fs/overlay.h"
#include "store/lmdb_env.h"
#include "tests/support/test_support.h"

namespace hgvfs::fs {
namespace {

using Kind = OverlayFinding::Kind;
using test::TempDir;

std::unique_ptr<Overlay> openOverlay(const std::string& dir) {
  auto o = Overlay::open(dir);
  EXPECT_TRUE(o.ok()) << o.error().message();
  return o.ok() ? std::move(o).value() : nullptr;
}

OverlayEntry fileEntry(uint64_t ino) {
  OverlayEntry e;
  e.ino = ino;
  e.mode = S_IFREG | 0644;
  e.materialized = true;
  return e;
}

OverlayEntry dirEntry(uint64_t ino) {
  OverlayEntry e;
  e.ino = ino;
  e.mode = S_IFDIR | 0755;
  e.materialized = true;
  return e;
}

void writeFile(Overlay& o, uint64_t ino, const std::string& content) {
  auto fd = o.createFileWith(ino, content);
  ASSERT_TRUE(fd.ok()) << fd.error().message();
  ::close(*fd);
}

std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every file's content under lost+found.
std::vector<std::string> lostContents(const std::string& dir) {
  std::vector<std::string> out;
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(readAll(e.path()));
  std::sort(out.begin(), out.end());
  return out;
}

size_t count(const std::vector<OverlayFinding>& findings, Kind kind) {
  return std::count_if(findings.begin(), findings.end(),
                       [&](const OverlayFinding& f) { return f.kind == kind; });
}

// A consistent overlay: root { a (file 2), sub/ (dir 3) { b (file 4) } }.
void buildConsistent(Overlay& o) {
  OverlayBatch b;
  b.putHeader(1, OverlayDirHeader{});
  b.putEntry(1, "a", fileEntry(2));
  b.putEntry(1, "sub", dirEntry(3));
  b.putHeader(3, OverlayDirHeader{});
  b.putEntry(3, "b", fileEntry(4));
  writeFile(o, 2, "user bytes of a");
  writeFile(o, 4, "user bytes of b");
  ASSERT_TRUE(o.commit(b).ok());
  ASSERT_TRUE(o.reserveInodes(100).ok());
}

TEST(OverlayCheck, ConsistentOverlayHasNoFindings) {
  TempDir tmp;
  auto o = openOverlay(tmp.path() + "/overlay");
  ASSERT_TRUE(o);
  auto empty = o->examine(false, tmp.path() + "/lost+found");
  ASSERT_TRUE(empty.ok()) << empty.error().message();
  EXPECT_TRUE(empty->empty());
  buildConsistent(*o);
  auto findings = o->examine(true, tmp.path() + "/lost+found");
  ASSERT_TRUE(findings.ok()) << findings.error().message();
  for (const auto& f : *findings) ADD_FAILURE() << f.what;
  EXPECT_FALSE(std::filesystem::exists(tmp.path() + "/lost+found"));
}

TEST(OverlayCheck, EachBrokenInvariantIsFoundAndRepairedWithoutLosingBytes) {
  TempDir tmp;
  std::string lost = tmp.path() + "/lost+found";
  auto o = openOverlay(tmp.path() + "/overlay");
  ASSERT_TRUE(o);
  buildConsistent(*o);
  OverlayBatch b;
  // A record without its file.
  b.putEntry(1, "gone", fileEntry(10));
  // A directory entry without its record.
  b.putEntry(1, "nodir", dirEntry(11));
  // One directory reached twice.
  b.putEntry(1, "sub2", dirEntry(3));  // after "sub" in byte order: the second
  // A directory record no entry reaches, holding a changed file.
  b.putHeader(30, OverlayDirHeader{});
  b.putEntry(30, "deep", fileEntry(31));
  // An inode number above the mark.
  OverlayEntry high;
  high.ino = 5000;
  high.mode = S_IFREG | 0644;
  high.source = "high";
  b.putEntry(3, "high", high);
  ASSERT_TRUE(o->commit(b).ok());
  writeFile(*o, 31, "user bytes in an unreachable directory");
  // A file without a record.
  writeFile(*o, 20, "user bytes nobody names");
  std::string orphan = o->filePath(20);

  auto findings = o->examine(false, lost);
  ASSERT_TRUE(findings.ok()) << findings.error().message();
  EXPECT_EQ(count(*findings, Kind::kRecordWithoutFile), 2u);
  EXPECT_EQ(count(*findings, Kind::kBrokenParentChain), 2u);
  EXPECT_EQ(count(*findings, Kind::kFileWithoutRecord), 1u);
  EXPECT_EQ(count(*findings, Kind::kInodeMarkTooLow), 1u);
  EXPECT_EQ(findings->size(), 6u);
  for (const auto& f : *findings) {
    EXPECT_FALSE(f.fixed);
    EXPECT_FALSE(f.what.empty());
    EXPECT_FALSE(f.fix.empty());
  }
  // Without fix nothing changed.
  EXPECT_TRUE(std::filesystem::exists(orphan));
  EXPECT_FALSE(std::filesystem::exists(lost));
  auto again = o->examine(false, lost);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->size(), 6u);

  auto fixed = o->examine(true, lost);
  ASSERT_TRUE(fixed.ok()) << fixed.error().message();
  EXPECT_EQ(fixed->size(), 6u);
  for (const auto& f : *fixed) EXPECT_TRUE(f.fixed) << f.what;

  auto after = o->examine(false, lost);
  ASSERT_TRUE(after.ok()) << after.error().message();
  for (const auto& f : *after) ADD_FAILURE() << "left after fix: " << f.what;
  EXPECT_GT(o->reservedInodes(), 5000u);
  // No user byte lost: the named files are where they were, the rest in
  // lost+found.
  EXPECT_EQ(readAll(o->filePath(2)), "user bytes of a");
  EXPECT_EQ(readAll(o->filePath(4)), "user bytes of b");
  EXPECT_EQ(lostContents(lost), (std::vector<std::string>{"user bytes in an unreachable directory",
                                                          "user bytes nobody names"}));
  auto root = o->loadDirectory(1);
  ASSERT_TRUE(root.ok() && *root);
  std::vector<std::string> names;
  for (const auto& [name, e] : (*root)->entries) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"a", "sub"}));
  auto sub = o->loadDirectory(3);
  ASSERT_TRUE(sub.ok() && *sub);
  EXPECT_EQ((*sub)->entries.size(), 2u);  // b and high
  EXPECT_FALSE(o->hasDirectory(30));
  // The check the mount runs finds nothing more to remove.
  auto report = o->check();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->orphanFiles + report->orphanDirectories + report->danglingEntries, 0u);
}

TEST(OverlayCheck, CorruptRecordsAreFoundAndTheirFilesKept) {
  TempDir tmp;
  std::string dir = tmp.path() + "/overlay";
  std::string lost = tmp.path() + "/lost+found";
  std::string orphanPath;
  {
    auto o = openOverlay(dir);
    ASSERT_TRUE(o);
    buildConsistent(*o);
    orphanPath = o->filePath(4);
  }
  {
    // Entry "b" of directory 3 and the header of directory 3, garbled.
    store::LmdbEnv::Options options;
    options.initialMapSize = size_t{64} << 20;
    auto env = store::LmdbEnv::open(dir + "/meta", {"dirs", "meta"}, options);
    ASSERT_TRUE(env.ok()) << env.error().message();
    Bytes key(7, '\0');
    key += '\x03';
    Status s = (*env)->write([&](MDB_txn* txn) -> Status {
      HG_RETURN_IF_ERROR(store::LmdbEnv::put(txn, (*env)->dbi(0), key + "b", "garbage"));
      return store::LmdbEnv::put(txn, (*env)->dbi(0), key, Bytes(1, '\x02'));
    });
    ASSERT_TRUE(s.ok()) << s.error().message();
  }
  auto o = openOverlay(dir);
  ASSERT_TRUE(o);
  auto findings = o->examine(false, lost);
  ASSERT_TRUE(findings.ok()) << findings.error().message();
  EXPECT_EQ(count(*findings, Kind::kCorruptRecord), 2u);
  EXPECT_EQ(count(*findings, Kind::kFileWithoutRecord), 1u);  // b's file, its entry unreadable
  auto fixed = o->examine(true, lost);
  ASSERT_TRUE(fixed.ok()) << fixed.error().message();
  auto after = o->examine(false, lost);
  ASSERT_TRUE(after.ok());
  for (const auto& f : *after) ADD_FAILURE() << "left after fix: " << f.what;
  auto sub = o->loadDirectory(3);
  ASSERT_TRUE(sub.ok()) << sub.error().message();
  ASSERT_TRUE(*sub);
  EXPECT_TRUE((*sub)->entries.empty());
  EXPECT_EQ(lostContents(lost), (std::vector<std::string>{"user bytes of b"}));
}

}  // namespace
}  // namespace hgvfs::fs
