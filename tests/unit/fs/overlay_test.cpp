// Overlay (fs/overlay.h): format 4 records keep every field, byte for byte
// in the documented layout; an overlay written in format 1 (by hgvfs up to
// 401fa2a) is upgraded once at open and reads back as it was written; one
// of a newer format is refused and left alone; bad bytes are Corrupt, never
// a crash.
//
// LMDB forbids opening one environment twice in one process, so the tests
// reach the overlay's environment directly (RawEnv) only while no Overlay
// is open on it.

#include "fs/overlay.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "fs/log.h"
#include "tests/support/test_support.h"

namespace hgvfs::fs {
namespace {

using test::TempDir;

enum RawDb : size_t { kDirs = 0, kMeta = 1, kXattrs = 2 };

hg::Node nodeFrom(uint8_t seed) {
  uint8_t raw[hg::Node::kSize];
  for (size_t i = 0; i < sizeof raw; ++i) raw[i] = static_cast<uint8_t>(seed + 13 * i);
  return hg::Node::fromRaw(raw);
}

Bytes bytesOf(std::initializer_list<int> values) {
  Bytes out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

OverlayEntry materializedEntry(uint64_t ino, uint32_t mode) {
  OverlayEntry e;
  e.ino = ino;
  e.mode = mode;
  e.uid = 0xfffffffe;
  e.gid = 0x80000001;
  e.materialized = true;
  return e;
}

OverlayEntry revisionEntry(uint64_t ino, uint32_t mode, uint8_t seed, Bytes source) {
  OverlayEntry e;
  e.ino = ino;
  e.mode = mode;
  e.uid = 1000;
  e.gid = 0xffffffff;
  e.materialized = false;
  e.id = nodeFrom(seed);
  e.source = std::move(source);
  return e;
}

OverlayDirHeader header(uint32_t uid, int64_t sec) {
  OverlayDirHeader h;
  h.mode = S_IFDIR | 0750;
  h.uid = uid;
  h.gid = 0xfffffff0;
  h.atime = {static_cast<time_t>(sec), 999999999};
  h.mtime = {static_cast<time_t>(-sec), 1};
  h.ctime = {static_cast<time_t>(int64_t{1} << 40), 0};
  return h;
}

void expectSame(const OverlayEntry& want, const OverlayEntry& got, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(got.ino, want.ino);
  EXPECT_EQ(got.mode, want.mode);
  EXPECT_EQ(got.uid, want.uid);
  EXPECT_EQ(got.gid, want.gid);
  EXPECT_EQ(got.materialized, want.materialized);
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.source, want.source);
}

void expectSameTime(const timespec& want, const timespec& got) {
  EXPECT_EQ(got.tv_sec, want.tv_sec);
  EXPECT_EQ(got.tv_nsec, want.tv_nsec);
}

void expectSame(const OverlayDirHeader& want, const OverlayDirHeader& got) {
  EXPECT_EQ(got.mode, want.mode);
  EXPECT_EQ(got.uid, want.uid);
  EXPECT_EQ(got.gid, want.gid);
  expectSameTime(want.atime, got.atime);
  expectSameTime(want.mtime, got.mtime);
  expectSameTime(want.ctime, got.ctime);
}

void expectSame(const OverlayDir& want, const OverlayDir& got) {
  expectSame(want.header, got.header);
  ASSERT_EQ(got.entries.size(), want.entries.size());
  for (const auto& [name, entry] : want.entries) {
    auto it = got.entries.find(name);
    ASSERT_NE(it, got.entries.end()) << printable(name);
    expectSame(entry, it->second, printable(name));
  }
}

// Format 1, as hgvfs up to 401fa2a wrote it: its encoders, copied (host
// byte order; these tests run on little-endian machines).
namespace format1 {

template <typename T>
void putRaw(Bytes& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void putTime(Bytes& out, const timespec& t) {
  putRaw<int64_t>(out, t.tv_sec);
  putRaw<int64_t>(out, t.tv_nsec);
}

Bytes encode(const OverlayEntry& e) {
  Bytes out;
  putRaw(out, e.ino);
  putRaw(out, e.mode);
  putRaw(out, e.uid);
  putRaw(out, e.gid);
  putRaw<uint8_t>(out, e.materialized ? 1 : 0);
  if (!e.materialized) {
    out += e.id.view();
    out += e.source;
  }
  return out;
}

Bytes encode(const OverlayDirHeader& h) {
  Bytes out;
  putRaw(out, h.mode);
  putRaw(out, h.uid);
  putRaw(out, h.gid);
  putTime(out, h.atime);
  putTime(out, h.mtime);
  putTime(out, h.ctime);
  return out;
}

Bytes reserved(uint64_t upTo) { return Bytes(reinterpret_cast<const char*>(&upTo), 8); }

}  // namespace format1

Bytes dirKey(uint64_t ino) {
  Bytes key;
  for (int shift = 56; shift >= 0; shift -= 8) key.push_back(static_cast<char>(ino >> shift));
  return key;
}

// Every record of the overlay's environment: (database, key) -> value.
using Records = std::map<std::pair<size_t, Bytes>, Bytes>;

Bytes valueOf(const Records& records, size_t db, const Bytes& key) {
  auto it = records.find({db, key});
  return it == records.end() ? "<absent>" : it->second;
}

// The overlay's LMDB environment, opened as the overlay opens it.
class RawEnv {
 public:
  // `xattrs`: with the database format 3 added.
  explicit RawEnv(const std::string& overlayDir, bool xattrs = false) : xattrs_(xattrs) {
    store::LmdbEnv::Options options;
    options.initialMapSize = size_t{64} << 20;
    std::vector<std::string> dbs = {"dirs", "meta"};
    if (xattrs) dbs.push_back("xattrs");
    auto env = store::LmdbEnv::open(overlayDir + "/meta", dbs, options);
    EXPECT_TRUE(env.ok()) << env.error().message();
    if (env.ok()) env_ = std::move(env).value();
  }

  void put(RawDb db, ByteView key, ByteView value) {
    Status s = env_->write(
        [&](MDB_txn* txn) { return store::LmdbEnv::put(txn, env_->dbi(db), key, value); });
    ASSERT_TRUE(s.ok()) << s.error().message();
  }

  // Every record of its databases.
  Records dump() {
    Records all;
    std::vector<size_t> dbs = {kDirs, kMeta};
    if (xattrs_) dbs.push_back(kXattrs);
    for (size_t db : dbs) {
      Status s = env_->scan(env_->dbi(db), {}, [&](ByteView k, ByteView v) {
        all[{db, Bytes(k)}] = Bytes(v);
        return true;
      });
      EXPECT_TRUE(s.ok()) << s.error().message();
    }
    return all;
  }

 private:
  bool xattrs_;
  std::unique_ptr<store::LmdbEnv> env_;
};

// Collects what the fs logger writes while it lives.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ostream_sink_st>(out_)) {
    fs::log().sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& sinks = fs::log().sinks();
    std::erase(sinks, sink_);
  }
  std::vector<std::string> linesWith(const std::string& needle) {
    std::vector<std::string> found;
    std::istringstream in(out_.str());
    for (std::string line; std::getline(in, line);) {
      if (line.find(needle) != std::string::npos) found.push_back(line);
    }
    return found;
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_st> sink_;
};

std::unique_ptr<Overlay> openOverlay(const std::string& dir) {
  auto overlay = Overlay::open(dir);
  EXPECT_TRUE(overlay.ok()) << overlay.error().message();
  return overlay.ok() ? std::move(overlay).value() : nullptr;
}

std::optional<OverlayDir> load(Overlay& overlay, uint64_t ino) {
  auto dir = overlay.loadDirectory(ino);
  EXPECT_TRUE(dir.ok()) << dir.error().message();
  return dir.ok() ? std::move(dir).value() : std::nullopt;
}

Bytes fileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

// Names that are not text: invalid UTF-8, a lone continuation byte, bytes
// above 0x7f, an overlong encoding of '/', a name of one byte 0xff.
const std::vector<Bytes> kOddNames = {"plain.txt", "caf\xe9", "\x80start",
                                      "\xc0\xaf",  "\xff",    Bytes("a\x01\x7f b", 6)};

// ---- format 4 records ------------------------------------------------------

TEST(OverlayRecordTest, EntryRoundTripsEveryField) {
  std::vector<OverlayEntry> entries = {
      materializedEntry(0xfffffffffffffffe, S_IFREG | 0644),
      materializedEntry(1, S_IFDIR | 0755),
      revisionEntry(0x8000000000000001, S_IFLNK | 0777, 7, "dir/\xff\xfe/link"),
      revisionEntry(42, S_IFREG | 0755, 9, Bytes("with\0nul", 8)),
      revisionEntry(43, S_IFDIR | 0755, 11, ""),
      revisionEntry(44, S_IFREG | 0644, 13, Bytes(70000, '\x80')),
  };
  for (const auto& e : entries) {
    Bytes encoded = e.encode();
    EXPECT_EQ(static_cast<uint8_t>(encoded[0]), kOverlayFormat);
    EXPECT_EQ(encoded.size(), kOverlayEntryFixedSize + (e.materialized ? 0 : 24 + e.source.size()));
    auto decoded = OverlayEntry::decode(encoded);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message();
    expectSame(e, *decoded, printable(e.source));
  }
}

TEST(OverlayRecordTest, EntryLayoutIsBigEndianAndVersioned) {
  OverlayEntry e = revisionEntry(0x0102030405060708, S_IFREG | 0644, 0, "d/\xff");
  e.uid = 0xfffffffe;
  e.gid = 1000;
  Bytes want = bytesOf({kOverlayFormat, 0,    1,    2,    3,    4,    5, 6, 7,    8,   0, 0,
                        0x81,           0xa4, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0x03, 0xe8});
  want += e.id.view();
  want += bytesOf({0, 0, 0, 3, 'd', '/', 0xff});
  EXPECT_EQ(printable(e.encode()), printable(want));

  OverlayEntry m = materializedEntry(0x0a, S_IFDIR | 0755);
  m.uid = 1;
  m.gid = 2;
  EXPECT_EQ(printable(m.encode()),
            printable(bytesOf({kOverlayFormat, 1,    0, 0, 0, 0, 0, 0, 0, 0x0a, 0, 0,
                               0x41,           0xed, 0, 0, 0, 1, 0, 0, 0, 2})));
}

TEST(OverlayRecordTest, HeaderRoundTripsEveryField) {
  for (int64_t sec : {int64_t{0}, int64_t{-1}, int64_t{1700000000}, int64_t{1} << 62}) {
    OverlayDirHeader h = header(0xffffffff, sec);
    Bytes encoded = h.encode();
    EXPECT_EQ(encoded.size(), kOverlayDirHeaderSize);
    auto decoded = OverlayDirHeader::decode(encoded);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message();
    expectSame(h, *decoded);
  }
}

TEST(OverlayRecordTest, HeaderLayoutIsBigEndianAndVersioned) {
  OverlayDirHeader h;
  h.mode = S_IFDIR | 0755;
  h.uid = 1;
  h.gid = 0x01020304;
  h.atime = {-1, 999999999};
  h.mtime = {static_cast<time_t>(0x0102030405060708), 5};
  h.ctime = {0, 0};
  Bytes want = bytesOf({kOverlayFormat, 0, 0, 0x41, 0xed, 0, 0, 0, 1, 1, 2, 3, 4});
  want += Bytes(8, '\xff') + bytesOf({0, 0, 0, 0, 0x3b, 0x9a, 0xc9, 0xff});
  want += bytesOf({1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 5});
  want += Bytes(16, '\0');
  EXPECT_EQ(printable(h.encode()), printable(want));
}

TEST(OverlayRecordTest, TruncatedOrPaddedRecordsAreCorrupt) {
  for (const OverlayEntry& e :
       {materializedEntry(5, S_IFREG | 0644), revisionEntry(6, S_IFREG | 0644, 3, "some/path")}) {
    Bytes good = e.encode();
    for (size_t n = 0; n < good.size(); ++n) {
      auto decoded = OverlayEntry::decode(ByteView(good).substr(0, n));
      ASSERT_FALSE(decoded.ok()) << n;
      EXPECT_EQ(decoded.error().kind, ErrorKind::kCorrupt)
          << n << ": " << decoded.error().message();
    }
    auto padded = OverlayEntry::decode(good + "x");
    ASSERT_FALSE(padded.ok());
    EXPECT_EQ(padded.error().kind, ErrorKind::kCorrupt);
  }
  Bytes good = header(3, 4).encode();
  for (size_t n = 0; n <= good.size() + 1; ++n) {
    if (n == good.size()) continue;
    Bytes bad = n < good.size() ? good.substr(0, n) : good + "x";
    auto decoded = OverlayDirHeader::decode(bad);
    ASSERT_FALSE(decoded.ok()) << n;
    EXPECT_EQ(decoded.error().kind, ErrorKind::kCorrupt) << n;
  }
}

TEST(OverlayRecordTest, BadVersionsFlagsAndLengthsAreRefused) {
  Bytes entry = revisionEntry(6, S_IFREG | 0644, 3, "p").encode();
  Bytes head = header(3, 4).encode();
  for (uint8_t version : {0, 1, 2}) {
    Bytes e = entry, h = head;
    e[0] = h[0] = static_cast<char>(version);
    EXPECT_EQ(OverlayEntry::decode(e).error().kind, ErrorKind::kCorrupt);
    EXPECT_EQ(OverlayDirHeader::decode(h).error().kind, ErrorKind::kCorrupt);
  }
  for (uint8_t version : {kOverlayFormat + 1, 0xff}) {
    Bytes e = entry, h = head;
    e[0] = h[0] = static_cast<char>(version);
    auto de = OverlayEntry::decode(e);
    EXPECT_EQ(de.error().kind, ErrorKind::kUnsupported);
    EXPECT_NE(de.error().message().find("newer hgvfs"), std::string::npos) << de.error().message();
    EXPECT_EQ(OverlayDirHeader::decode(h).error().kind, ErrorKind::kUnsupported);
  }
  Bytes flags = entry;
  flags[1] = 0x02;
  EXPECT_EQ(OverlayEntry::decode(flags).error().kind, ErrorKind::kCorrupt);
  // The source length says more (or less) than the record holds.
  for (char len : {'\x02', '\x00', '\x7f'}) {
    Bytes bad = entry;
    bad[kOverlayEntryFixedSize + 20 + 3] = len;
    EXPECT_EQ(OverlayEntry::decode(bad).error().kind, ErrorKind::kCorrupt) << int(len);
  }
  Bytes huge = entry;
  huge[kOverlayEntryFixedSize + 20] = '\xff';
  EXPECT_EQ(OverlayEntry::decode(huge).error().kind, ErrorKind::kCorrupt);
}

TEST(OverlayRecordTest, RandomBytesNeverCrash) {
  std::mt19937 rng(20240601);
  Bytes seeds[] = {revisionEntry(6, S_IFREG | 0644, 3, "a/b").encode(), header(3, 4).encode()};
  for (int i = 0; i < 20000; ++i) {
    Bytes data = seeds[i % 2];
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) data[rng() % data.size()] = static_cast<char>(rng());
    if (rng() % 4 == 0) data.resize(rng() % (data.size() + 8), static_cast<char>(rng()));
    auto e = OverlayEntry::decode(data);
    auto h = OverlayDirHeader::decode(data);
    if (!e.ok()) {
      EXPECT_NE(e.error().kind, ErrorKind::kIo);
    }
    if (!h.ok()) {
      EXPECT_NE(h.error().kind, ErrorKind::kIo);
    }
  }
}

// ---- the overlay -----------------------------------------------------------

TEST(OverlayTest, CommittedDirectoriesSurviveReopen) {
  TempDir tmp;
  std::string dir = tmp.path() + "/overlay";
  OverlayDir root, sub;
  root.header = header(1000, 1700000000);
  sub.header = header(0xfffffffe, -5);
  uint64_t ino = 0x100000000;
  for (const Bytes& name : kOddNames) {
    ino += 2;
    root.entries[name] = revisionEntry(ino, S_IFREG | 0644, static_cast<uint8_t>(ino), name);
    sub.entries[name] = materializedEntry(ino + 1, S_IFREG | 0600);
  }
  root.entries["sub"] = materializedEntry(7, S_IFDIR | 0755);
  {
    LogCapture log;
    auto overlay = openOverlay(dir);
    ASSERT_TRUE(overlay);
    EXPECT_TRUE(log.linesWith("upgraded").empty()) << "a new overlay has nothing to upgrade";
    OverlayBatch batch;
    batch.putHeader(1, root.header);
    for (const auto& [name, e] : root.entries) batch.putEntry(1, name, e);
    batch.putHeader(7, sub.header);
    for (const auto& [name, e] : sub.entries) batch.putEntry(7, name, e);
    ASSERT_TRUE(overlay->commit(batch).ok());
    ASSERT_TRUE(overlay->reserveInodes(0xffffffff00000000).ok());
  }
  auto overlay = openOverlay(dir);
  ASSERT_TRUE(overlay);
  EXPECT_EQ(overlay->reservedInodes(), 0xffffffff00000000);
  auto gotRoot = load(*overlay, 1);
  auto gotSub = load(*overlay, 7);
  ASSERT_TRUE(gotRoot && gotSub);
  expectSame(root, *gotRoot);
  expectSame(sub, *gotSub);
  EXPECT_FALSE(load(*overlay, 2).has_value());
  overlay.reset();

  auto records = RawEnv(dir).dump();
  EXPECT_EQ(valueOf(records, kMeta, "format"), bytesOf({kOverlayFormat}));
  EXPECT_EQ(printable(valueOf(records, kMeta, "reserved")),
            printable(bytesOf({kOverlayFormat, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})));
  for (const auto& [key, value] : records) {
    EXPECT_EQ(static_cast<uint8_t>(value.at(0)), kOverlayFormat) << printable(key.second);
  }
}

// What a format 1 client directory held: the root with a file from the
// revision, a changed file, a symlink made in the mount and a changed
// subdirectory (whose own entries have odd names), and the inode mark.
struct Format1Fixture {
  OverlayDir root, sub;
  uint64_t reserved = 70000 + (uint64_t{1} << 33);

  Format1Fixture() {
    root.header = header(1000, 1690000000);
    root.header.atime.tv_nsec = 123456789;
    root.entries["README"] = revisionEntry(2, S_IFREG | 0644, 1, "README");
    root.entries["moved"] = revisionEntry(3, S_IFREG | 0755, 2, "old/place/\xe9t\xe9");
    root.entries["changed.c"] = materializedEntry(4, S_IFREG | 0644);
    root.entries["link"] = materializedEntry(5, S_IFLNK | 0777);
    root.entries["src"] = materializedEntry(0x1234567890, S_IFDIR | 0755);
    root.entries["tree"] = revisionEntry(6, S_IFDIR | 0755, 3, "tree");
    sub.header = header(0xfffffffe, -86400);
    uint64_t ino = 0x2000000000;
    for (const Bytes& name : kOddNames) {
      sub.entries[name] = revisionEntry(++ino, S_IFREG | 0644, 4, "src/" + name);
    }
    sub.entries["new"] = materializedEntry(++ino, S_IFREG | 0600);
  }

  void write(const std::string& dir) const {
    RawEnv env(dir);
    env.put(kDirs, dirKey(1), format1::encode(root.header));
    for (const auto& [name, e] : root.entries) env.put(kDirs, dirKey(1) + name, format1::encode(e));
    env.put(kDirs, dirKey(0x1234567890), format1::encode(sub.header));
    for (const auto& [name, e] : sub.entries) {
      env.put(kDirs, dirKey(0x1234567890) + name, format1::encode(e));
    }
    env.put(kMeta, "reserved", format1::reserved(reserved));
  }

  void expectIn(Overlay& overlay) const {
    EXPECT_EQ(overlay.reservedInodes(), reserved);
    auto gotRoot = load(overlay, 1);
    auto gotSub = load(overlay, 0x1234567890);
    ASSERT_TRUE(gotRoot && gotSub);
    expectSame(root, *gotRoot);
    expectSame(sub, *gotSub);
  }
};

TEST(OverlayTest, Format1IsUpgradedOnceAndReadsBackIdentically) {
  TempDir tmp;
  std::string dir = tmp.path() + "/overlay";
  Format1Fixture fixture;
  fixture.write(dir);
  {
    LogCapture log;
    auto overlay = openOverlay(dir);
    ASSERT_TRUE(overlay);
    auto lines = log.linesWith("upgraded");
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find(dir), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("[info]"), std::string::npos) << lines[0];
    fixture.expectIn(*overlay);
  }
  {
    auto records = RawEnv(dir).dump();
    EXPECT_EQ(records.size(), 2 + fixture.root.entries.size() + fixture.sub.entries.size() + 2);
    EXPECT_EQ(valueOf(records, kMeta, "format"), bytesOf({kOverlayFormat}));
    for (const auto& [key, value] : records) {
      EXPECT_EQ(static_cast<uint8_t>(value.at(0)), kOverlayFormat) << printable(key.second);
    }
    EXPECT_EQ(valueOf(records, kDirs, dirKey(1) + "src"), fixture.root.entries.at("src").encode());
  }
  // The second open finds format 4: nothing to upgrade, the same content.
  LogCapture log;
  auto overlay = openOverlay(dir);
  ASSERT_TRUE(overlay);
  EXPECT_TRUE(log.linesWith("upgraded").empty());
  fixture.expectIn(*overlay);
  // And it goes on working: a change, the repair walk.
  OverlayBatch batch;
  batch.putEntry(1, "added", materializedEntry(99, S_IFREG | 0644));
  batch.removeEntry(1, "moved");
  ASSERT_TRUE(overlay->commit(batch).ok());
  for (uint64_t ino : {uint64_t{4}, uint64_t{5}, uint64_t{99}, uint64_t{0x2000000007}}) {
    auto fd = overlay->createFile(ino);
    ASSERT_TRUE(fd.ok()) << fd.error().message();
    ::close(*fd);
  }
  auto report = overlay->check();
  ASSERT_TRUE(report.ok()) << report.error().message();
  EXPECT_EQ(report->directories, 2u);
  EXPECT_EQ(report->files, 4u);
  EXPECT_EQ(report->danglingEntries + report->orphanFiles + report->orphanDirectories, 0u);
  auto root = load(*overlay, 1);
  ASSERT_TRUE(root);
  EXPECT_EQ(root->entries.count("moved"), 0u);
  EXPECT_EQ(root->entries.at("added").ino, 99u);
}

TEST(OverlayTest, Format1WithOnlyTheInodeMarkIsUpgraded) {
  TempDir tmp;
  std::string dir = tmp.path() + "/overlay";
  RawEnv(dir).put(kMeta, "reserved", format1::reserved(65538));
  LogCapture log;
  auto overlay = openOverlay(dir);
  ASSERT_TRUE(overlay);
  EXPECT_EQ(overlay->reservedInodes(), 65538u);
  EXPECT_EQ(log.linesWith("upgraded").size(), 1u);
}

TEST(OverlayTest, BadFormat1RecordFailsTheWholeUpgrade) {
  TempDir tmp;
  std::string dir = tmp.path() + "/overlay";
  Format1Fixture fixture;
  fixture.write(dir);
  Bytes truncated = format1::encode(revisionEntry(9, S_IFREG | 0644, 5, "")).substr(0, 30);
  RawEnv(dir).put(kDirs, dirKey(0x1234567890) + "\xfftrunc", truncated);
  auto before = RawEnv(dir).dump();

  auto overlay = Overlay::open(dir);
  ASSERT_FALSE(overlay.ok());
  EXPECT_EQ(overlay.error().kind, ErrorKind::kCorrupt);
  std::string message = overlay.error().message();
  EXPECT_NE(message.find("directory inode " + std::to_string(0x1234567890)), std::string::npos)
      << message;
  EXPECT_NE(message.find("\\xfftrunc"), std::string::npos) << message;
  EXPECT_EQ(RawEnv(dir).dump(), before) << "nothing is upgraded unless everything is";
}

TEST(OverlayTest, NewerFormatIsRefusedAndLeftUntouched) {
  TempDir tmp;
  std::string dir = tmp.path() + "/overlay";
  {
    RawEnv env(dir);
    env.put(kMeta, "format", bytesOf({kOverlayFormat + 1}));
    env.put(kMeta, "reserved", bytesOf({kOverlayFormat + 1, 1, 2, 3}));
    env.put(kDirs, dirKey(1), "a header this version cannot read");
  }
  auto before = RawEnv(dir).dump();
  Bytes data = fileBytes(dir + "/meta/data.mdb");
  ASSERT_FALSE(data.empty());

  auto overlay = Overlay::open(dir);
  ASSERT_FALSE(overlay.ok());
  EXPECT_EQ(overlay.error().kind, ErrorKind::kUnsupported);
  std::string message = overlay.error().message();
  EXPECT_NE(message.find(dir), std::string::npos) << message;
  EXPECT_NE(message.find("newer hgvfs"), std::string::npos) << message;
  EXPECT_NE(message.find("mount it with that hgvfs"), std::string::npos) << message;

  EXPECT_EQ(fileBytes(dir + "/meta/data.mdb"), data);
  EXPECT_FALSE(std::filesystem::exists(dir + "/files"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/reserve"));
  EXPECT_EQ(RawEnv(dir).dump(), before);
}

TEST(OverlayTest, NewerRecordInAKnownOverlayIsUnsupported) {
  TempDir tmp;
  std::string dir = tmp.path() + "/overlay";
  ASSERT_TRUE(openOverlay(dir));
  {
    RawEnv env(dir);
    env.put(kDirs, dirKey(1), header(1, 2).encode());
    Bytes future = materializedEntry(5, S_IFREG | 0644).encode() + "more fields";
    future[0] = kOverlayFormat + 1;
    env.put(kDirs, dirKey(1) + "future", future);
  }
  auto overlay = openOverlay(dir);
  ASSERT_TRUE(overlay);
  auto loaded = overlay->loadDirectory(1);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().kind, ErrorKind::kUnsupported);
}

TEST(OverlayTest, CorruptRecordsAreCorruptErrors) {
  TempDir tmp;
  std::string dir = tmp.path() + "/overlay";
  ASSERT_TRUE(openOverlay(dir));
  {
    RawEnv env(dir);
    env.put(kDirs, dirKey(1), header(1, 2).encode());
    env.put(kDirs, dirKey(1) + "ok", materializedEntry(5, S_IFREG | 0644).encode());
    Bytes cut = revisionEntry(6, S_IFREG | 0644, 1, "path").encode();
    env.put(kDirs,
            dirKey(1) +
                "\xff"
                "cut",
            cut.substr(0, cut.size() - 1));
    env.put(kDirs, dirKey(2), header(1, 2).encode().substr(0, 40));
    env.put(kDirs, dirKey(3), "");
  }
  auto overlay = openOverlay(dir);
  ASSERT_TRUE(overlay);
  for (uint64_t ino : {1, 2, 3}) {
    auto loaded = overlay->loadDirectory(ino);
    ASSERT_FALSE(loaded.ok()) << ino;
    EXPECT_EQ(loaded.error().kind, ErrorKind::kCorrupt) << ino;
    std::string message = loaded.error().message();
    EXPECT_NE(message.find(dir + "/meta"), std::string::npos) << message;
    EXPECT_NE(message.find("directory inode " + std::to_string(ino)), std::string::npos) << message;
  }
  EXPECT_NE(overlay->loadDirectory(1).error().message().find("\\xffcut"), std::string::npos);
  auto checked = overlay->check();
  ASSERT_FALSE(checked.ok());
  EXPECT_EQ(checked.error().kind, ErrorKind::kCorrupt);
}

TEST(OverlayTest, CorruptMarkerOrInodeMarkIsRefused) {
  for (const auto& [key, value] :
       std::vector<std::pair<Bytes, Bytes>>{{"format", ""},
                                            {"format", bytesOf({1})},
                                            {"format", bytesOf({kOverlayFormat, 0})},
                                            {"reserved", bytesOf({kOverlayFormat, 0, 0, 0})},
                                            {"reserved", bytesOf({1, 0, 0, 0, 0, 0, 0, 0, 5})}}) {
    SCOPED_TRACE(key + " = " + printable(value));
    TempDir tmp;
    std::string dir = tmp.path() + "/overlay";
    ASSERT_TRUE(openOverlay(dir));
    RawEnv(dir).put(kMeta, key, value);
    auto overlay = Overlay::open(dir);
    ASSERT_FALSE(overlay.ok());
    EXPECT_EQ(overlay.error().kind, ErrorKind::kCorrupt) << overlay.error().message();
    EXPECT_NE(overlay.error().message().find(dir), std::string::npos) << overlay.error().message();
  }
}

}  // namespace
}  // namespace hgvfs::fs

namespace hgvfs::fs {
namespace {

int errOf(const Status& s) { return s.ok() ? 0 : s.error().err; }

// ---- format 2, upgraded ----------------------------------------------------

// Format 3 (no two entries naming one inode) has the same records.
// A root directory of two entries, as an older format (`version`, 2 or
// 3) wrote it: this format's records with that version byte, plus
// `xattrs` (key, value) from format 3 on.
OverlayDir writeOlderFormat(const std::string& dir, uint8_t version,
                            const std::map<Bytes, Bytes>& xattrs = {}) {
  OverlayDir root;
  root.header = header(7, 1690000000);
  root.entries["a"] = revisionEntry(2, S_IFREG | 0644, 1, "a");
  root.entries["b"] = materializedEntry(3, S_IFREG | 0600);
  auto older = [version](Bytes value) {
    value[0] = static_cast<char>(version);
    return value;
  };
  RawEnv env(dir, /*xattrs=*/version >= 3);
  env.put(kMeta, "format", bytesOf({version}));
  env.put(kMeta, "reserved", bytesOf({version, 0, 0, 0, 0, 0, 1, 0, 0}));
  env.put(kDirs, dirKey(1), older(root.header.encode()));
  for (const auto& [name, e] : root.entries) env.put(kDirs, dirKey(1) + name, older(e.encode()));
  for (const auto& [key, value] : xattrs) env.put(kXattrs, key, value);
  return root;
}

TEST(OverlayTest, Format3IsUpgradedToFormat4InPlaceWithItsXattrs) {
  TempDir tmp;
  std::string dir = tmp.path() + "/overlay";
  OverlayDir root = writeOlderFormat(dir, 3, {{dirKey(3) + "user.k", bytesOf({3, 'v'})}});
  {
    LogCapture log;
    auto overlay = openOverlay(dir);
    ASSERT_TRUE(overlay);
    EXPECT_EQ(log.linesWith("upgraded from format 3").size(), 1u);
    auto got = load(*overlay, 1);
    ASSERT_TRUE(got);
    expectSame(root, *got);
    auto x = overlay->getXattr(3, "user.k");
    ASSERT_TRUE(x.ok()) << x.error().message();
    EXPECT_EQ(x->value_or("<none>"), "v");
  }
  auto records = RawEnv(dir, true).dump();
  EXPECT_EQ(valueOf(records, kMeta, "format"), bytesOf({kOverlayFormat}));
  EXPECT_EQ(records.size(), 6u);
  for (const auto& [key, value] : records) {
    EXPECT_EQ(static_cast<uint8_t>(value.at(0)), kOverlayFormat) << printable(key.second);
  }
}

TEST(OverlayTest, Format2IsUpgradedToFormat4InPlace) {
  TempDir tmp;
  std::string dir = tmp.path() + "/overlay";
  OverlayDir root = writeOlderFormat(dir, 2);
  {
    LogCapture log;
    auto overlay = openOverlay(dir);
    ASSERT_TRUE(overlay);
    EXPECT_EQ(log.linesWith("upgraded from format 2").size(), 1u);
    auto got = load(*overlay, 1);
    ASSERT_TRUE(got);
    expectSame(root, *got);
    EXPECT_EQ(overlay->reservedInodes(), uint64_t{1} << 16);
  }
  auto records = RawEnv(dir).dump();
  EXPECT_EQ(valueOf(records, kMeta, "format"), bytesOf({kOverlayFormat}));
  for (const auto& [key, value] : records) {
    EXPECT_EQ(static_cast<uint8_t>(value.at(0)), kOverlayFormat) << printable(key.second);
  }
  LogCapture log;
  ASSERT_TRUE(openOverlay(dir));
  EXPECT_TRUE(log.linesWith("upgraded").empty());
}

// ---- extended attributes ---------------------------------------------------

TEST(OverlayXattrTest, SetGetListRemoveWithExt4Errnos) {
  TempDir tmp;
  std::string dir = tmp.path() + "/overlay";
  auto overlay = openOverlay(dir);
  ASSERT_TRUE(overlay);
  EXPECT_FALSE(overlay->hasXattrs(5));
  auto none = overlay->getXattr(5, "user.a");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  Bytes binary("\0\xff\x01 value", 9);
  ASSERT_TRUE(overlay->setXattr(5, "user.a", binary, 0).ok());
  ASSERT_TRUE(overlay->setXattr(5, "trusted.t", "", 0).ok());
  ASSERT_TRUE(overlay->setXattr(6, "user.other", "x", 0).ok());
  EXPECT_EQ(errOf(overlay->setXattr(5, "user.a", "v", XATTR_CREATE)), EEXIST);
  EXPECT_EQ(errOf(overlay->setXattr(5, "user.b", "v", XATTR_REPLACE)), ENODATA);
  ASSERT_TRUE(overlay->setXattr(5, "user.ab", "longer name", XATTR_CREATE).ok());
  auto a = overlay->getXattr(5, "user.a");
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ(**a, binary);
  auto names = overlay->listXattrs(5);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<Bytes>{"trusted.t", "user.a", "user.ab"}));
  // The space of one ext4 block: a value that cannot fit is ENOSPC, and so
  // is one that would pass what the others left.
  EXPECT_EQ(errOf(overlay->setXattr(5, "user.big", Bytes(5000, 'x'), 0)), ENOSPC);
  ASSERT_TRUE(overlay->setXattr(7, "user.big", Bytes(3900, 'x'), 0).ok());
  EXPECT_EQ(errOf(overlay->setXattr(7, "user.more", Bytes(200, 'x'), 0)), ENOSPC);
  ASSERT_TRUE(overlay->setXattr(7, "user.big", Bytes(3000, 'y'), XATTR_REPLACE).ok());
  ASSERT_TRUE(overlay->setXattr(7, "user.more", Bytes(200, 'x'), 0).ok());
  EXPECT_EQ(errOf(overlay->removeXattr(5, "user.none")), ENODATA);
  ASSERT_TRUE(overlay->removeXattr(5, "user.ab").ok());
  overlay.reset();

  overlay = openOverlay(dir);
  ASSERT_TRUE(overlay);
  names = overlay->listXattrs(5);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<Bytes>{"trusted.t", "user.a"}));
  a = overlay->getXattr(5, "user.a");
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ(**a, binary);
  ASSERT_TRUE(overlay->removeXattr(5, "user.a").ok());
  ASSERT_TRUE(overlay->removeXattr(5, "trusted.t").ok());
  EXPECT_FALSE(overlay->hasXattrs(5));
  EXPECT_TRUE(overlay->hasXattrs(6));
}

TEST(OverlayXattrTest, AttributesGoWithTheirFileOrDirectoryAndOrphansAtCheck) {
  TempDir tmp;
  std::string dir = tmp.path() + "/overlay";
  auto overlay = openOverlay(dir);
  ASSERT_TRUE(overlay);
  OverlayBatch batch;
  batch.putHeader(1, header(0, 1));
  batch.putEntry(1, "f", materializedEntry(10, S_IFREG | 0644));
  batch.putEntry(1, "g", materializedEntry(11, S_IFREG | 0644));
  batch.putEntry(1, "d", materializedEntry(12, S_IFDIR | 0755));
  batch.putHeader(12, header(0, 1));
  ASSERT_TRUE(overlay->commit(batch).ok());
  for (uint64_t ino : {10, 11}) {
    auto fd = overlay->createFile(ino);
    ASSERT_TRUE(fd.ok());
    ::close(*fd);
  }
  for (uint64_t ino : {1, 10, 11, 12, 99}) {
    ASSERT_TRUE(overlay->setXattr(ino, "user.k", "v" + std::to_string(ino), 0).ok()) << ino;
  }
  // A file's go with its overlay file, a directory's with its record.
  overlay->removeFile(11);
  EXPECT_FALSE(overlay->hasXattrs(11));
  OverlayBatch rmdir;
  rmdir.removeEntry(1, "d");
  rmdir.removeDirectory(12);
  ASSERT_TRUE(overlay->commit(rmdir).ok());
  EXPECT_FALSE(overlay->hasXattrs(12));
  overlay.reset();
  // Inode 99's (nothing names it) are found at the next check; the
  // others stay.
  overlay = openOverlay(dir);
  ASSERT_TRUE(overlay);
  EXPECT_TRUE(overlay->hasXattrs(99));
  auto report = overlay->check();
  ASSERT_TRUE(report.ok()) << report.error().message();
  EXPECT_EQ(report->orphanXattrs, 1u);
  EXPECT_FALSE(overlay->hasXattrs(99));
  for (uint64_t ino : {1, 10}) {
    auto v = overlay->getXattr(ino, "user.k");
    ASSERT_TRUE(v.ok() && v->has_value()) << ino;
    EXPECT_EQ(**v, "v" + std::to_string(ino));
  }
}

}  // namespace
}  // namespace hgvfs::fs
