// FileSystem (fs/file_system.h) driven directly, without FUSE, over a
// repository the real hg made: nested directories, an executable, a
// symlink, a name that is not UTF-8, a binary file, and a directory `deep`
// beside a file `deep.txt` (whose order differs between names and paths).
//
// What is checked: every unchanged file reads as `hg cat` prints it, with
// its size, kind and exec bit; listings agree with lookups and resume
// across changes without repeating or skipping an entry; a write
// materializes exactly the file and its ancestors and diff() names exactly
// it; renames, unlinks of held files and forgets follow POSIX and the
// kernel's lookup counting; every change survives a new FileSystem over the
// same overlay, with its inode numbers (a directory's mode and owner too);
// concurrent requests leave a consistent tree; a read-only FileSystem
// answers EROFS to every change; each refusal carries the errno the kernel
// must see (errors are mapped as fs/fuse_server.cpp's errnoFor does).
//
// CTest runs each case as its own process, so the repository is made once
// per case (SetUpTestSuite) and `hg cat` is asked once for all its files.

#include "fs/file_system.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "hgbridge/repository.h"
#include "tests/support/test_support.h"

namespace hgvfs::fs {
namespace {

namespace stdfs = std::filesystem;
using test::TempDir;

const Bytes kLatin1Name = "caf\xe9.txt";  // Latin-1 é: not valid UTF-8
const Bytes kDeepFile = "src/lib/deep/x/y/z.txt";
constexpr uid_t kUid = 4242;
constexpr gid_t kGid = 4343;
constexpr struct timespec kTime = {1'600'000'000, 123};
constexpr Caller kCaller{1234, 5678};

// What the FUSE layer replies for an error (fs/fuse_server.cpp, errnoFor).
int errnoOf(const Error& e) {
  switch (e.kind) {
    case ErrorKind::kNotFound:
      return ENOENT;
    case ErrorKind::kIo:
      return e.err > 0 ? e.err : EIO;
    case ErrorKind::kInvalidArgument:
      return e.err > 0 ? e.err : EINVAL;
    case ErrorKind::kCorrupt:
    case ErrorKind::kUnsupported:
    case ErrorKind::kCensored:
      break;
  }
  return EIO;
}

// 0 on success.
template <typename T>
int errnoOf(const Result<T>& r) {
  return r.ok() ? 0 : errnoOf(r.error());
}

std::string binaryContent(size_t size) {
  std::string s(size, '\0');
  std::mt19937 rng(7);
  for (size_t i = 0; i < size; i += 3) s[i] = static_cast<char>(rng());  // NULs between
  return s;
}

void mustSucceed(const test::CommandResult& r, const char* what) {
  if (r.exitCode != 0) throw std::runtime_error(std::string(what) + ": " + r.err);
}

// rev 0: the tree every test mounts. rev 1: README changed, src/lib/a.c
// removed, new.txt added (a second revision for diff()).
void makeRepo(const std::string& repo) {
  mustSucceed(test::hg({"init", repo}), "hg init");
  for (const char* d : {"bin", "docs", "src/lib/deep/x/y"})
    stdfs::create_directories(repo + "/" + d);
  test::writeFile(repo + "/README", "readme\n");
  test::writeFile(repo + "/big.bin", binaryContent(200 << 10));
  test::writeFile(repo + "/bin/run.sh", "#!/bin/sh\necho run\n");
  stdfs::permissions(repo + "/bin/run.sh", stdfs::perms::owner_exec | stdfs::perms::group_exec,
                     stdfs::perm_options::add);
  test::writeFile(repo + "/docs/guide.txt", "guide\n");
  test::writeFile(repo + "/docs/" + kLatin1Name, "a name in Latin-1\n");
  stdfs::create_symlink("../README", repo + "/docs/link");
  test::writeFile(repo + "/src/main.c", "int main() { return 0; }\n");
  for (const char* f : {"a.c", "b.c", "c.c", "d.c", "e.c"}) {
    test::writeFile(repo + "/src/lib/" + f, std::string(f) + " content\n");
  }
  test::writeFile(repo + "/src/lib/util.h", "#pragma once\n");
  test::writeFile(repo + "/src/lib/deep.txt", "beside the directory deep\n");
  test::writeFile(repo + "/" + kDeepFile, "deep v1\n");
  mustSucceed(test::hg({"commit", "-A", "-q", "-m", "first"}, repo), "hg commit");

  test::writeFile(repo + "/README", "readme v2\n");
  test::writeFile(repo + "/new.txt", "new\n");
  mustSucceed(test::hg({"rm", "-q", "src/lib/a.c"}, repo), "hg rm");
  mustSucceed(test::hg({"commit", "-A", "-q", "-m", "second"}, repo), "hg commit");
}

struct ManifestEntry {
  Bytes path;
  char flag;   // ' ', '*' (executable) or '@' (symlink)
  Bytes node;  // hex
};

// `hg manifest --debug -r REV`: "<hex> <mode> <' '|'*'|'@'> <path>".
std::vector<ManifestEntry> hgManifest(const std::string& repo, int rev) {
  auto r = test::hg({"manifest", "--debug", "-r", std::to_string(rev)}, repo);
  mustSucceed(r, "hg manifest");
  std::vector<ManifestEntry> out;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() < 48) throw std::runtime_error("odd manifest line: " + line);
    out.push_back({line.substr(47), line[45], line.substr(0, 40)});
  }
  return out;
}

// Every file of `rev` as `hg cat` writes it (a symlink: its target).
std::map<Bytes, Bytes> hgCatAll(const std::string& repo, int rev,
                                const std::vector<ManifestEntry>& manifest,
                                const std::string& scratch) {
  std::string out = scratch + "/cat-" + std::to_string(rev);
  std::vector<std::string> args = {"cat", "-r", std::to_string(rev), "-o", out + "/%p"};
  for (const auto& e : manifest) args.push_back(e.path);
  mustSucceed(test::hg(args, repo), "hg cat");
  std::map<Bytes, Bytes> files;
  for (const auto& e : manifest) files[e.path] = test::readFile(out + "/" + e.path);
  return files;
}

std::vector<Bytes> split(ByteView path) {
  std::vector<Bytes> parts;
  size_t start = 0;
  while (start < path.size()) {
    size_t slash = path.find('/', start);
    if (slash == ByteView::npos) slash = path.size();
    parts.emplace_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

Bytes join(const Bytes& dir, ByteView name) {
  return dir.empty() ? Bytes(name) : dir + "/" + Bytes(name);
}

// Looks `path` up one component at a time, as the kernel resolves it (one
// lookup counted per component).
Result<struct stat> lookupPath(FileSystem& fs, ByteView path) {
  Result<struct stat> st = fs.getattr(kRootInode);
  for (const Bytes& name : split(path)) {
    if (!st.ok()) return st;
    st = fs.lookup(InodeNumber(st->st_ino), name);
  }
  return st;
}

// The inode of `path`; invalid (and the test failed) when it is not there.
InodeNumber inodeOf(FileSystem& fs, ByteView path) {
  auto st = lookupPath(fs, path);
  if (!st.ok()) {
    ADD_FAILURE() << "lookup of '" << printable(path) << "': " << st.error().message();
    return InodeNumber();
  }
  return InodeNumber(st->st_ino);
}

// Reads in pieces whose size is no power of two, so reads straddle every
// boundary, until a short read.
Bytes readAll(FileSystem& fs, InodeNumber ino) {
  Bytes out;
  char buf[4000];
  while (true) {
    auto n = fs.read(ino, buf, sizeof buf, out.size());
    if (!n.ok()) {
      ADD_FAILURE() << "read of inode " << ino.value() << ": " << n.error().message();
      return out;
    }
    out.append(buf, *n);
    if (*n < sizeof buf) return out;
  }
}

void writeAt(FileSystem& fs, InodeNumber ino, ByteView bytes, uint64_t offset) {
  auto n = fs.write(ino, bytes.data(), bytes.size(), offset);
  ASSERT_TRUE(n.ok()) << "write of inode " << ino.value() << ": " << n.error().message();
  EXPECT_EQ(*n, bytes.size());
}

// Replaces a file's whole content.
void rewrite(FileSystem& fs, InodeNumber ino, ByteView bytes) {
  AttrChange truncate;
  truncate.size = 0;
  auto st = fs.setattr(ino, truncate);
  ASSERT_TRUE(st.ok()) << st.error().message();
  writeAt(fs, ino, bytes, 0);
}

Bytes preadAll(int fd) {
  Bytes out;
  char buf[4096];
  for (off_t at = 0;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
    at += n;
  }
}

// "M path" / "A path" / "I path" / "R path" lines, paths printable().
std::string render(const WorkingDiff& d) {
  std::string out;
  auto add = [&](char tag, const std::vector<Bytes>& paths) {
    for (const Bytes& p : paths) out += std::string(1, tag) + " " + printable(p) + "\n";
  };
  add('M', d.modified);
  add('A', d.added);
  add('I', d.addedIgnored);
  add('R', d.removed);
  return out;
}

std::string diffOf(FileSystem& fs, const std::optional<store::TreeId>& rev,
                   const DiffOptions& options = {}) {
  auto d = fs.diff(rev, options);
  if (!d.ok()) {
    ADD_FAILURE() << "diff: " << d.error().message();
    return "<error>";
  }
  return render(*d);
}

// Every entry of a directory, `pageSize` at a time.
std::vector<ListedEntry> listAll(FileSystem& fs, InodeNumber dir, size_t pageSize = 1000,
                                 uint64_t after = 0) {
  std::vector<ListedEntry> out;
  for (int pages = 0; pages < 10000; ++pages) {
    auto page = fs.list(dir, after, pageSize);
    if (!page.ok()) {
      ADD_FAILURE() << "list of inode " << dir.value() << ": " << page.error().message();
      return out;
    }
    if (page->empty()) return out;
    EXPECT_LE(page->size(), pageSize);
    for (auto& e : *page) {
      EXPECT_GT(e.cookie, after) << printable(e.name);
      after = e.cookie;
      out.push_back(std::move(e));
    }
  }
  ADD_FAILURE() << "listing never ends";
  return out;
}

std::set<Bytes> namesOf(const std::vector<ListedEntry>& entries) {
  std::set<Bytes> names;
  for (const auto& e : entries) names.insert(e.name);
  return names;
}

// One entry of a whole-tree walk.
struct Seen {
  uint64_t ino;
  mode_t mode;
  uid_t uid;
  gid_t gid;
  struct timespec mtime;
  Bytes content;  // file bytes or symlink target

  bool operator==(const Seen& o) const {
    return ino == o.ino && mode == o.mode && uid == o.uid && gid == o.gid &&
           mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec &&
           content == o.content;
  }
};

std::ostream& operator<<(std::ostream& os, const Seen& n) {
  os << "{ino " << n.ino << ", mode 0" << std::oct << n.mode << std::dec << ", uid " << n.uid
     << ", gid " << n.gid << ", mtime " << n.mtime.tv_sec << "." << n.mtime.tv_nsec << ", "
     << n.content.size() << " bytes '" << printable(n.content.substr(0, 40)) << "'}";
  return os;
}

// The differences between two walks, one line each; empty when equal.
std::string differences(const std::map<Bytes, Seen>& before, const std::map<Bytes, Seen>& after) {
  std::ostringstream out;
  for (const auto& [path, seen] : before) {
    auto it = after.find(path);
    if (it == after.end()) {
      out << "gone: " << printable(path) << " " << seen << "\n";
    } else if (!(it->second == seen)) {
      out << "changed: " << printable(path) << " " << seen << " -> " << it->second << "\n";
    }
  }
  for (const auto& [path, seen] : after) {
    if (!before.count(path)) out << "new: " << printable(path) << " " << seen << "\n";
  }
  return out.str();
}

// The whole mount, path by path, as list, lookup, read and readlink see it.
void walkTree(FileSystem& fs, InodeNumber dir, const Bytes& path, std::map<Bytes, Seen>& out) {
  for (const ListedEntry& e : listAll(fs, dir)) {
    Bytes child = join(path, e.name);
    auto st = fs.lookup(dir, e.name);
    if (!st.ok()) {
      ADD_FAILURE() << "lookup of listed '" << printable(child) << "': " << st.error().message();
      continue;
    }
    EXPECT_EQ(st->st_ino, e.ino) << printable(child);
    EXPECT_EQ(st->st_mode & S_IFMT, e.type) << printable(child);
    Seen n{st->st_ino, st->st_mode, st->st_uid, st->st_gid, st->st_mtim, {}};
    InodeNumber ino(st->st_ino);
    if (S_ISDIR(st->st_mode)) {
      walkTree(fs, ino, child, out);
    } else if (S_ISLNK(st->st_mode)) {
      auto target = fs.readlink(ino);
      EXPECT_TRUE(target.ok()) << printable(child);
      if (target.ok()) n.content = *target;
    } else {
      n.content = readAll(fs, ino);
      EXPECT_EQ(static_cast<size_t>(st->st_size), n.content.size()) << printable(child);
    }
    out[child] = n;
  }
}

class FileSystemTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    repoDir_ = new TempDir();
    try {
      makeRepo(repoPath());
      manifest_ = new std::vector<ManifestEntry>(hgManifest(repoPath(), 0));
      files0_ = new std::map<Bytes, Bytes>(hgCatAll(repoPath(), 0, *manifest_, repoDir_->path()));
    } catch (const std::exception& e) {
      repoError_ = new std::string(e.what());
    }
  }
  static void TearDownTestSuite() {
    delete manifest_;
    delete files0_;
    delete repoError_;
    delete repoDir_;
    manifest_ = nullptr;
    files0_ = nullptr;
    repoError_ = nullptr;
    repoDir_ = nullptr;
  }
  static std::string repoPath() { return repoDir_->path() + "/repo"; }
  static const Bytes& revFile(const Bytes& path) { return files0_->at(path); }

  void SetUp() override {
    ASSERT_EQ(repoError_, nullptr) << *repoError_;
    auto repo = hg::Repository::open(repoPath());
    ASSERT_TRUE(repo.ok()) << repo.error().message();
    auto store = store::ObjectStore::open(std::move(repo).value(), tmp_.path() + "/cache");
    ASSERT_TRUE(store.ok()) << store.error().message();
    store_ = std::move(store).value();
    auto rev0 = store_->importCommit(hg::Revision(0));
    ASSERT_TRUE(rev0.ok()) << rev0.error().message();
    rev0_ = *rev0;
    auto rev1 = store_->importCommit(hg::Revision(1));
    ASSERT_TRUE(rev1.ok()) << rev1.error().message();
    rev1_ = *rev1;
    mount();
  }

  static FileSystemOptions options() {
    FileSystemOptions o;
    o.uid = kUid;
    o.gid = kGid;
    o.time = kTime;
    return o;
  }

  std::string overlayDir() const { return tmp_.path() + "/overlay"; }

  // A FileSystem on revision 0 over the overlay in tmp_ (the same one every
  // time: a remount).
  void mount(const Bytes& dotHg = {}) {
    auto overlay = Overlay::open(overlayDir());
    ASSERT_TRUE(overlay.ok()) << overlay.error().message();
    fs_ = std::make_unique<FileSystem>(store_, rev0_, std::move(overlay).value(), options());
    if (!dotHg.empty()) fs_->setDotHg(dotHg);
    auto started = fs_->start();
    ASSERT_TRUE(started.ok()) << started.error().message();
  }
  void unmount() { fs_.reset(); }

  // The overlay's content files (relative names), whatever names them.
  std::set<std::string> overlayFiles() const {
    std::set<std::string> out;
    std::string root = overlayDir() + "/files";
    for (const auto& e : stdfs::recursive_directory_iterator(root)) {
      if (e.is_regular_file()) out.insert(e.path().string().substr(root.size()));
    }
    return out;
  }
  bool hasOverlayFile(InodeNumber ino) const {
    return stdfs::exists(fs_->overlay()->filePath(ino.value()));
  }

  // The entries `dir` has in revision 0 (name → S_IFMT), from hg's manifest.
  static std::map<Bytes, mode_t> revChildren(const Bytes& dir) {
    std::map<Bytes, mode_t> out;
    Bytes prefix = dir.empty() ? Bytes() : dir + "/";
    for (const auto& e : *manifest_) {
      if (e.path.compare(0, prefix.size(), prefix) != 0) continue;
      Bytes rest = e.path.substr(prefix.size());
      size_t slash = rest.find('/');
      if (slash != Bytes::npos) {
        out[rest.substr(0, slash)] = S_IFDIR;
      } else {
        out[rest] = e.flag == '@' ? S_IFLNK : S_IFREG;
      }
    }
    return out;
  }

  static TempDir* repoDir_;
  static std::vector<ManifestEntry>* manifest_;
  static std::map<Bytes, Bytes>* files0_;
  static std::string* repoError_;

  TempDir tmp_;  // first: outlives the store and the file system
  std::shared_ptr<store::ObjectStore> store_;
  store::TreeId rev0_, rev1_;
  std::unique_ptr<FileSystem> fs_;
};

TempDir* FileSystemTest::repoDir_ = nullptr;
std::vector<ManifestEntry>* FileSystemTest::manifest_ = nullptr;
std::map<Bytes, Bytes>* FileSystemTest::files0_ = nullptr;
std::string* FileSystemTest::repoError_ = nullptr;

// ---------------------------------------------------------------------------
// Unchanged content.

TEST_F(FileSystemTest, UnchangedFilesReadAsHgCatsThem) {
  // The fixture has what the test is about.
  size_t exec = 0, links = 0;
  bool latin1 = false;
  for (const auto& e : *manifest_) {
    exec += e.flag == '*';
    links += e.flag == '@';
    latin1 |= e.path == "docs/" + kLatin1Name;
  }
  ASSERT_EQ(exec, 1u);
  ASSERT_EQ(links, 1u);
  ASSERT_TRUE(latin1);

  for (const auto& e : *manifest_) {
    SCOPED_TRACE(printable(e.path));
    auto st = lookupPath(*fs_, e.path);
    ASSERT_TRUE(st.ok()) << st.error().message();
    const Bytes& want = revFile(e.path);
    InodeNumber ino(st->st_ino);
    EXPECT_EQ(static_cast<uint64_t>(st->st_size), want.size());
    EXPECT_EQ(st->st_uid, kUid);
    EXPECT_EQ(st->st_gid, kGid);
    EXPECT_EQ(st->st_nlink, 1u);
    EXPECT_EQ(st->st_mtim.tv_sec, kTime.tv_sec);
    EXPECT_EQ(st->st_mtim.tv_nsec, kTime.tv_nsec);
    switch (e.flag) {
      case '@': {
        EXPECT_EQ(st->st_mode, static_cast<mode_t>(S_IFLNK | 0777));
        auto target = fs_->readlink(ino);
        ASSERT_TRUE(target.ok()) << target.error().message();
        EXPECT_EQ(*target, want);
        break;
      }
      case '*':
        EXPECT_EQ(st->st_mode, static_cast<mode_t>(S_IFREG | 0755));
        EXPECT_EQ(readAll(*fs_, ino), want);
        break;
      default:
        EXPECT_EQ(st->st_mode, static_cast<mode_t>(S_IFREG | 0644));
        EXPECT_EQ(readAll(*fs_, ino), want);
        EXPECT_EQ(errnoOf(fs_->readlink(ino)), EINVAL);
        break;
    }
    auto again = fs_->getattr(ino);
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_EQ(again->st_ino, st->st_ino);
    EXPECT_EQ(again->st_size, st->st_size);
    EXPECT_EQ(again->st_mode, st->st_mode);
  }
  for (const char* dir : {"src", "src/lib/deep/x/y", "docs"}) {
    auto st = lookupPath(*fs_, dir);
    ASSERT_TRUE(st.ok()) << dir;
    EXPECT_EQ(st->st_mode, static_cast<mode_t>(S_IFDIR | 0755)) << dir;
  }
  auto root = fs_->getattr(kRootInode);
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->st_ino, kRootInode.value());
  EXPECT_TRUE(S_ISDIR(root->st_mode));

  // Reading changes nothing and materializes nothing.
  EXPECT_EQ(diffOf(*fs_, rev0_), "");
  EXPECT_TRUE(overlayFiles().empty());
}

TEST_F(FileSystemTest, ReadsAtAnyOffset) {
  const Bytes& want = revFile("big.bin");
  InodeNumber ino = inodeOf(*fs_, "big.bin");
  ASSERT_TRUE(ino.valid());
  std::vector<char> buf(10000);
  for (uint64_t offset : {uint64_t{0}, uint64_t{4095}, uint64_t{100000}, want.size() - 10,
                          uint64_t{want.size()}, want.size() + 100}) {
    auto n = fs_->read(ino, buf.data(), buf.size(), offset);
    ASSERT_TRUE(n.ok()) << n.error().message();
    size_t expect = offset >= want.size() ? 0 : std::min(buf.size(), want.size() - offset);
    ASSERT_EQ(*n, expect) << "at " << offset;
    EXPECT_EQ(Bytes(buf.data(), *n), want.substr(std::min<uint64_t>(offset, want.size()), expect))
        << "at " << offset;
  }
  // The same file, materialized, reads the same.
  writeAt(*fs_, ino, want.substr(0, 1), 0);
  EXPECT_EQ(readAll(*fs_, ino), want);
  EXPECT_EQ(diffOf(*fs_, rev0_), "");
}

TEST_F(FileSystemTest, ListingsAgreeWithTheRevisionAndWithLookup) {
  for (const Bytes dir : {"", "docs", "src/lib", "src/lib/deep/x"}) {
    SCOPED_TRACE("directory '" + dir + "'");
    InodeNumber ino = dir.empty() ? kRootInode : inodeOf(*fs_, dir);
    ASSERT_TRUE(ino.valid());
    auto entries = listAll(*fs_, ino, 2);
    std::map<Bytes, mode_t> listed;
    for (const auto& e : entries) {
      EXPECT_GE(e.cookie, 4u);
      EXPECT_TRUE(listed.emplace(e.name, e.type).second) << "twice: " << printable(e.name);
      auto st = fs_->lookup(ino, e.name);
      ASSERT_TRUE(st.ok()) << printable(e.name);
      EXPECT_EQ(st->st_ino, e.ino) << printable(e.name);
      EXPECT_EQ(st->st_mode & S_IFMT, e.type) << printable(e.name);
    }
    EXPECT_EQ(listed, revChildren(dir));
  }
  InodeNumber file = inodeOf(*fs_, "README");
  EXPECT_EQ(errnoOf(fs_->list(file, 0, 10)), ENOTDIR);
}

// A first listing with attributes sizes its files first only while
// processes look at single files (ls -l), and never when nothing has (find).
TEST_F(FileSystemTest, ListingsSizeTheirFilesFirstOnlyWhileFilesAreLookedAt) {
  InodeNumber src = inodeOf(*fs_, "src/lib");
  InodeNumber docs = inodeOf(*fs_, "docs");
  ASSERT_TRUE(src.valid() && docs.valid());
  // Nothing has looked at a file yet: the listing computes nothing and names
  // every file as without a size, the second time as the first.
  std::vector<Bytes> unsized = fs_->warmSizes(src);
  std::set<Bytes> files;
  for (const auto& [name, mode] : revChildren("src/lib")) {
    if (mode != S_IFDIR) files.insert(name);
  }
  ASSERT_GE(files.size(), 3u);
  EXPECT_EQ(std::set<Bytes>(unsized.begin(), unsized.end()), files);
  EXPECT_TRUE(std::is_sorted(unsized.begin(), unsized.end()));
  EXPECT_EQ(fs_->warmSizes(src), unsized);

  // An extended attribute read of one file (ls -l reads one per entry):
  // the next first listing sizes all of its files at once, and those of
  // its subdirectories (src/lib's from src's listing).
  auto known = [&](const Bytes& prefix) {
    std::set<Bytes> out;
    for (const auto& e : *manifest_) {
      if (e.path.compare(0, prefix.size(), prefix) != 0) continue;
      if (e.path.find('/', prefix.size()) != Bytes::npos) continue;
      if (store_->knownSize(*hg::Node::fromHex(e.node))) out.insert(e.path.substr(prefix.size()));
    }
    return out;
  };
  EXPECT_EQ(known("src/lib/"), std::set<Bytes>{});
  Caller root{0, 0};
  EXPECT_EQ(errnoOf(fs_->getxattr(src, "security.selinux", root)), ENODATA);
  EXPECT_EQ(fs_->warmSizes(inodeOf(*fs_, "src")), std::vector<Bytes>{});
  EXPECT_EQ(known("src/lib/"), files);
  EXPECT_EQ(known("src/lib/deep/x/y/"), std::set<Bytes>{});  // two levels down
  EXPECT_EQ(fs_->warmSizes(src), std::vector<Bytes>{});
  for (const Bytes& name : files) {
    auto st = fs_->lookup(src, name);
    ASSERT_TRUE(st.ok()) << printable(name);
    if (S_ISREG(st->st_mode)) {
      EXPECT_EQ(static_cast<size_t>(st->st_size), revFile("src/lib/" + name).size())
          << printable(name);
    }
  }
  EXPECT_EQ(fs_->warmSizes(docs), std::vector<Bytes>{});
}

TEST_F(FileSystemTest, ListingResumesAcrossChangesWithoutRepeatingOrSkipping) {
  InodeNumber lib = inodeOf(*fs_, "src/lib");
  ASSERT_TRUE(lib.valid());
  std::map<Bytes, mode_t> before = revChildren("src/lib");
  ASSERT_GE(before.size(), 6u);

  // Phase 1: the first page comes from the revision's tree; then the
  // directory materializes, an entry already listed and one not yet listed
  // go, and one comes.
  auto first = fs_->list(lib, 0, 3);
  ASSERT_TRUE(first.ok()) << first.error().message();
  ASSERT_EQ(first->size(), 3u);
  std::set<Bytes> firstNames = namesOf(*first);
  Bytes listedGone, unlistedGone;
  for (const auto& e : *first) {
    if (e.type == S_IFREG && listedGone.empty()) listedGone = e.name;
  }
  for (const auto& [name, type] : before) {
    if (type == S_IFREG && !firstNames.count(name)) unlistedGone = name;
  }
  ASSERT_FALSE(listedGone.empty());
  ASSERT_FALSE(unlistedGone.empty());
  ASSERT_TRUE(fs_->unlink(lib, listedGone).ok());
  ASSERT_TRUE(fs_->unlink(lib, unlistedGone).ok());
  ASSERT_TRUE(fs_->create(lib, "aaa.new", 0644, kCaller).ok());
  auto rest = listAll(*fs_, lib, 2, first->back().cookie);

  std::map<Bytes, int> seen;
  for (const auto& e : *first) ++seen[e.name];
  for (const auto& e : rest) ++seen[e.name];
  for (const auto& [name, type] : before) {
    if (name == listedGone || name == unlistedGone) continue;
    EXPECT_EQ(seen[name], 1) << "stayed: " << printable(name);
  }
  EXPECT_EQ(namesOf(rest).count(unlistedGone), 0u) << "removed before it was reached";
  EXPECT_EQ(namesOf(rest).count(listedGone), 0u);
  for (const auto& [name, count] : seen) EXPECT_LE(count, 1) << printable(name);

  // Phase 2: the directory is materialized now; one entry per page, an
  // entry created and the previous one removed between pages.
  std::set<Bytes> stayed = namesOf(listAll(*fs_, lib));
  std::map<Bytes, int> counts;
  uint64_t after = 0;
  for (int page = 0; page < 1000; ++page) {
    auto got = fs_->list(lib, after, 1);
    ASSERT_TRUE(got.ok()) << got.error().message();
    if (got->empty()) break;
    ASSERT_EQ(got->size(), 1u);
    ASSERT_GT(got->front().cookie, after);
    after = got->front().cookie;
    ++counts[got->front().name];
    if (page < 20) {
      Bytes made = "made" + std::to_string(page);
      ASSERT_TRUE(fs_->create(lib, made, 0644, kCaller).ok()) << made;
      if (page > 0) {
        ASSERT_TRUE(fs_->unlink(lib, "made" + std::to_string(page - 1)).ok());
      }
    }
  }
  for (const Bytes& name : stayed) EXPECT_EQ(counts[name], 1) << "stayed: " << printable(name);
  for (const auto& [name, count] : counts) EXPECT_EQ(count, 1) << printable(name);
}

TEST_F(FileSystemTest, DotHgIsAFixedSymlinkInTheRoot) {
  const Bytes target = "/clients/one/.hg";
  unmount();
  ASSERT_NO_FATAL_FAILURE(mount(target));
  auto first = fs_->list(kRootInode, 0, 1);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ(first->front().name, ".hg");
  EXPECT_EQ(first->front().ino, kDotHgInode.value());
  EXPECT_EQ(first->front().type, static_cast<mode_t>(S_IFLNK));
  EXPECT_EQ(first->front().cookie, 3u);
  std::map<Bytes, mode_t> rest;
  for (const auto& e : listAll(*fs_, kRootInode, 2, 3)) rest[e.name] = e.type;
  EXPECT_EQ(rest, revChildren(""));

  auto st = fs_->lookup(kRootInode, ".hg");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_ino, kDotHgInode.value());
  EXPECT_TRUE(S_ISLNK(st->st_mode));
  EXPECT_EQ(static_cast<size_t>(st->st_size), target.size());
  auto link = fs_->readlink(kDotHgInode);
  ASSERT_TRUE(link.ok());
  EXPECT_EQ(*link, target);

  EXPECT_EQ(errnoOf(fs_->unlink(kRootInode, ".hg")), EPERM);
  EXPECT_EQ(errnoOf(fs_->rmdir(kRootInode, ".hg")), ENOTDIR);
  EXPECT_EQ(errnoOf(fs_->rename(kRootInode, ".hg", kRootInode, "hg", 0)), EPERM);
  EXPECT_EQ(errnoOf(fs_->rename(kRootInode, "README", kRootInode, ".hg", 0)), EPERM);
  EXPECT_EQ(errnoOf(fs_->create(kRootInode, ".hg", 0644, kCaller)), EEXIST);
  AttrChange chmod;
  chmod.mode = 0700;
  EXPECT_EQ(errnoOf(fs_->setattr(kDotHgInode, chmod)), EPERM);
  fs_->forget(kDotHgInode, 100);
  EXPECT_TRUE(fs_->getattr(kDotHgInode).ok());
  EXPECT_EQ(diffOf(*fs_, rev0_), "");

  // Still listed once, first, when the root is materialized.
  ASSERT_TRUE(fs_->create(kRootInode, "made", 0644, kCaller).ok());
  auto all = listAll(*fs_, kRootInode);
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.front().name, ".hg");
  EXPECT_EQ(std::count_if(all.begin(), all.end(), [](const auto& e) { return e.name == ".hg"; }),
            1);
  EXPECT_EQ(diffOf(*fs_, rev0_), "A made\n");
}

// ---------------------------------------------------------------------------
// Materialization and diff().

TEST_F(FileSystemTest, AWriteMaterializesTheFileAndItsAncestorsOnly) {
  const Bytes& original = revFile(kDeepFile);
  ASSERT_EQ(original, "deep v1\n");
  std::vector<uint64_t> ancestors = {kRootInode.value()};
  for (const char* dir : {"src", "src/lib", "src/lib/deep", "src/lib/deep/x", "src/lib/deep/x/y"}) {
    InodeNumber ino = inodeOf(*fs_, dir);
    ASSERT_TRUE(ino.valid());
    ancestors.push_back(ino.value());
  }
  InodeNumber file = inodeOf(*fs_, kDeepFile);
  InodeNumber docs = inodeOf(*fs_, "docs");
  InodeNumber sibling = inodeOf(*fs_, "src/lib/util.h");
  ASSERT_TRUE(file.valid() && docs.valid() && sibling.valid());
  EXPECT_TRUE(overlayFiles().empty());

  writeAt(*fs_, file, "DEEP", 0);
  EXPECT_EQ(readAll(*fs_, file), "DEEP v1\n");
  auto st = fs_->getattr(file);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_ino, file.value());
  EXPECT_EQ(static_cast<size_t>(st->st_size), original.size());
  EXPECT_EQ(diffOf(*fs_, rev0_), "M " + kDeepFile + "\n");
  ASSERT_TRUE(hasOverlayFile(file));
  EXPECT_EQ(overlayFiles().size(), 1u);
  EXPECT_EQ(test::readFile(fs_->overlay()->filePath(file.value())), "DEEP v1\n");
  EXPECT_EQ(readAll(*fs_, sibling), revFile("src/lib/util.h"));
  EXPECT_TRUE(*fs_->fileExists(kDeepFile));
  EXPECT_FALSE(*fs_->fileExists("src/lib/deep"));
  EXPECT_FALSE(*fs_->fileExists("src/lib/nope"));
  EXPECT_FALSE(*fs_->fileExists("README/x"));
  EXPECT_TRUE(*fs_->fileExists("docs/link"));

  // Back to the original bytes: nothing differs, though the file stays
  // materialized.
  writeAt(*fs_, file, "deep", 0);
  EXPECT_EQ(diffOf(*fs_, rev0_), "");
  // Grown, then truncated back.
  writeAt(*fs_, file, "more", original.size());
  EXPECT_EQ(diffOf(*fs_, rev0_), "M " + kDeepFile + "\n");
  AttrChange truncate;
  truncate.size = original.size();
  ASSERT_TRUE(fs_->setattr(file, truncate).ok());
  EXPECT_EQ(diffOf(*fs_, rev0_), "");
  EXPECT_EQ(readAll(*fs_, file), original);

  // In the overlay: exactly the ancestors are directory records; the file is
  // materialized in its parent's, the sibling still names the revision's
  // file.
  unmount();
  auto overlay = Overlay::open(overlayDir());
  ASSERT_TRUE(overlay.ok()) << overlay.error().message();
  for (uint64_t dir : ancestors) EXPECT_TRUE((*overlay)->hasDirectory(dir)) << dir;
  EXPECT_FALSE((*overlay)->hasDirectory(docs.value()));
  auto y = (*overlay)->loadDirectory(ancestors.back());
  ASSERT_TRUE(y.ok() && y->has_value());
  ASSERT_EQ((*y)->entries.count("z.txt"), 1u);
  EXPECT_TRUE((*y)->entries.at("z.txt").materialized);
  EXPECT_EQ((*y)->entries.at("z.txt").ino, file.value());
  auto lib = (*overlay)->loadDirectory(ancestors[2]);
  ASSERT_TRUE(lib.ok() && lib->has_value());
  ASSERT_EQ((*lib)->entries.count("util.h"), 1u);
  EXPECT_FALSE((*lib)->entries.at("util.h").materialized);
  EXPECT_EQ((*lib)->entries.at("util.h").source, "src/lib/util.h");
  EXPECT_EQ((*lib)->entries.at("util.h").ino, sibling.value());
}

// Extended attributes: the first one materializes a file or directory
// from the revision (same bytes, nothing for status), they survive a
// remount, and an inode with any is never dematerialized.
TEST_F(FileSystemTest, XattrsMaterializeTheirInodeAndKeepItMaterialized) {
  InodeNumber main = inodeOf(*fs_, "src/main.c");
  InodeNumber docs = inodeOf(*fs_, "docs");
  ASSERT_TRUE(main.valid() && docs.valid());
  Caller root{0, 0}, user{1000, 1000};
  EXPECT_EQ(errnoOf(fs_->getxattr(main, "user.a", root)), ENODATA);
  EXPECT_FALSE(hasOverlayFile(main));
  ASSERT_TRUE(fs_->setxattr(main, "user.a", "1", 0, root).ok());
  ASSERT_TRUE(fs_->setxattr(docs, "trusted.t", "2", 0, root).ok());
  EXPECT_TRUE(hasOverlayFile(main));
  EXPECT_EQ(readAll(*fs_, main), revFile("src/main.c"));
  EXPECT_EQ(diffOf(*fs_, rev0_), "");
  // Namespaces: trusted.* is root's; system.* and others are not kept.
  EXPECT_EQ(errnoOf(fs_->getxattr(docs, "trusted.t", user)), ENODATA);
  EXPECT_EQ(errnoOf(fs_->setxattr(main, "trusted.u", "x", 0, user)), EPERM);
  EXPECT_EQ(errnoOf(fs_->setxattr(main, "system.posix_acl_access", "x", 0, root)), EOPNOTSUPP);
  EXPECT_EQ(errnoOf(fs_->getxattr(main, "other.x", root)), EOPNOTSUPP);
  EXPECT_EQ(errnoOf(fs_->setxattr(main, "user.", "x", 0, root)), EINVAL);
  auto listed = fs_->listxattr(docs, user);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, "");
  listed = fs_->listxattr(docs, root);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, Bytes("trusted.t\0", 10));

  unmount();
  mount();
  main = inodeOf(*fs_, "src/main.c");
  docs = inodeOf(*fs_, "docs");
  auto a = fs_->getxattr(main, "user.a", root);
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_EQ(*a, "1");
  auto t = fs_->getxattr(docs, "trusted.t", root);
  ASSERT_TRUE(t.ok()) << t.error().message();
  EXPECT_EQ(*t, "2");
  // Equal to the revision, but with an attribute: it stays.
  auto demoted = fs_->dematerializeUnchanged(rev0_);
  ASSERT_TRUE(demoted.ok()) << demoted.error().message();
  EXPECT_EQ(*demoted, 0u);
  EXPECT_TRUE(hasOverlayFile(main));
  ASSERT_TRUE(fs_->removexattr(main, "user.a", root).ok());
  EXPECT_EQ(errnoOf(fs_->removexattr(main, "user.a", root)), ENODATA);
  demoted = fs_->dematerializeUnchanged(rev0_);
  ASSERT_TRUE(demoted.ok());
  EXPECT_EQ(*demoted, 1u);
  EXPECT_FALSE(hasOverlayFile(main));
}

// After a commit: materialized files equal to the new parent become its
// files again (no overlay file, same inode number, same bytes), also after
// a remount; a file that differs, one with another mode, and one a writer
// holds stay materialized.
TEST_F(FileSystemTest, FilesEqualToANewParentAreDematerialized) {
  InodeNumber readme = inodeOf(*fs_, "README");
  InodeNumber guide = inodeOf(*fs_, "docs/guide.txt");
  InodeNumber main = inodeOf(*fs_, "src/main.c");
  InodeNumber run = inodeOf(*fs_, "bin/run.sh");
  ASSERT_TRUE(readme.valid() && guide.valid() && main.valid() && run.valid());
  AttrChange empty;
  empty.size = 0;
  ASSERT_TRUE(fs_->setattr(readme, empty).ok());
  writeAt(*fs_, readme, "readme v2\n", 0);  // revision 1's README
  writeAt(*fs_, guide, "guide, edited\n", 0);
  AttrChange noExec;
  noExec.mode = 0644;
  ASSERT_TRUE(fs_->setattr(run, noExec).ok());    // materialized, another mode
  writeAt(*fs_, main, revFile("src/main.c"), 0);  // materialized, same bytes
  ASSERT_TRUE(hasOverlayFile(readme) && hasOverlayFile(guide) && hasOverlayFile(main));
  EXPECT_EQ(diffOf(*fs_, rev1_), "M bin/run.sh\nM docs/guide.txt\nA src/lib/a.c\nR new.txt\n");

  {
    // A writer holds src/main.c's overlay file: it stays.
    auto held = fs_->writableFile(main);
    ASSERT_TRUE(held.ok());
    auto demoted = fs_->dematerializeUnchanged(rev1_);
    ASSERT_TRUE(demoted.ok()) << demoted.error().message();
    EXPECT_EQ(*demoted, 1u);  // README
    EXPECT_TRUE(hasOverlayFile(main));
  }
  EXPECT_FALSE(hasOverlayFile(readme));
  EXPECT_TRUE(hasOverlayFile(guide));
  EXPECT_EQ(readAll(*fs_, readme), "readme v2\n");
  EXPECT_EQ(inodeOf(*fs_, "README"), readme);
  auto st = fs_->getattr(readme);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_size, 10);
  EXPECT_EQ(st->st_mode, static_cast<mode_t>(S_IFREG | 0644));
  EXPECT_EQ(diffOf(*fs_, rev1_), "M bin/run.sh\nM docs/guide.txt\nA src/lib/a.c\nR new.txt\n");
  // Nobody holds it now.
  auto demoted = fs_->dematerializeUnchanged(rev1_);
  ASSERT_TRUE(demoted.ok());
  EXPECT_EQ(*demoted, 1u);
  EXPECT_FALSE(hasOverlayFile(main));
  EXPECT_EQ(readAll(*fs_, main), revFile("src/main.c"));
  // Written again: materialized again, under the same number.
  writeAt(*fs_, readme, "R", 0);
  EXPECT_TRUE(hasOverlayFile(readme));
  EXPECT_EQ(readAll(*fs_, readme), "Readme v2\n");
  writeAt(*fs_, readme, "r", 0);

  unmount();
  mount();
  EXPECT_EQ(inodeOf(*fs_, "README"), readme);
  EXPECT_EQ(readAll(*fs_, inodeOf(*fs_, "README")), "readme v2\n");
  EXPECT_EQ(readAll(*fs_, inodeOf(*fs_, "src/main.c")), revFile("src/main.c"));
  EXPECT_EQ(diffOf(*fs_, rev1_), "M bin/run.sh\nM docs/guide.txt\nA src/lib/a.c\nR new.txt\n");
  // After a remount, with nothing open, README goes again.
  demoted = fs_->dematerializeUnchanged(rev1_);
  ASSERT_TRUE(demoted.ok());
  EXPECT_EQ(*demoted, 1u);
  EXPECT_FALSE(hasOverlayFile(inodeOf(*fs_, "README")));
  EXPECT_EQ(diffOf(*fs_, rev1_), "M bin/run.sh\nM docs/guide.txt\nA src/lib/a.c\nR new.txt\n");

  // bin/run.sh back to its mode: it goes, and then bin/ holds nothing but
  // the revision's entries, so it goes too (the root stays).
  InodeNumber bin = inodeOf(*fs_, "bin");
  run = inodeOf(*fs_, "bin/run.sh");
  AttrChange exec;
  exec.mode = 0755;
  ASSERT_TRUE(fs_->setattr(run, exec).ok());
  EXPECT_TRUE(const_cast<Overlay*>(fs_->overlay())->hasDirectory(bin.value()));
  demoted = fs_->dematerializeUnchanged(rev1_);
  ASSERT_TRUE(demoted.ok());
  EXPECT_EQ(*demoted, 1u);
  EXPECT_FALSE(const_cast<Overlay*>(fs_->overlay())->hasDirectory(bin.value()));
  EXPECT_TRUE(const_cast<Overlay*>(fs_->overlay())->hasDirectory(kRootInode.value()));
  EXPECT_EQ(inodeOf(*fs_, "bin"), bin);
  EXPECT_EQ(inodeOf(*fs_, "bin/run.sh"), run);
  EXPECT_EQ(readAll(*fs_, run), revFile("bin/run.sh"));
  EXPECT_EQ(diffOf(*fs_, rev1_), "M docs/guide.txt\nA src/lib/a.c\nR new.txt\n");
  unmount();
  mount();
  EXPECT_EQ(diffOf(*fs_, rev1_), "M docs/guide.txt\nA src/lib/a.c\nR new.txt\n");
  EXPECT_EQ(readAll(*fs_, inodeOf(*fs_, "bin/run.sh")), revFile("bin/run.sh"));
  auto runSt = lookupPath(*fs_, "bin/run.sh");
  ASSERT_TRUE(runSt.ok());
  EXPECT_EQ(runSt->st_mode, static_cast<mode_t>(S_IFREG | 0755));
}

// The change count (what the status engine keeps its last diff by) moves
// with every kind of change, and not with reads, lookups or listings.
TEST_F(FileSystemTest, TheChangeCountMovesWithEveryChangeAndNotWithReads) {
  InodeNumber readme = inodeOf(*fs_, "README");
  InodeNumber src = inodeOf(*fs_, "src");
  ASSERT_TRUE(readme.valid() && src.valid());
  uint64_t before = fs_->changeGeneration();
  (void)readAll(*fs_, readme);
  (void)listAll(*fs_, src);
  ASSERT_TRUE(lookupPath(*fs_, "src/main.c").ok());
  ASSERT_TRUE(fs_->getattr(readme).ok());
  EXPECT_EQ(fs_->changeGeneration(), before) << "a read moved the change count";

  auto moves = [&](const char* what, const std::function<void()>& change) {
    uint64_t at = fs_->changeGeneration();
    change();
    EXPECT_GT(fs_->changeGeneration(), at) << what;
  };
  moves("write", [&] { writeAt(*fs_, readme, "x", 0); });
  moves("write again", [&] { writeAt(*fs_, readme, "y", 0); });
  moves("writes through writableFile", [&] {
    auto file = fs_->writableFile(readme);
    ASSERT_TRUE(file.ok());
    ASSERT_EQ(::pwrite(FileSystem::fdOf(**file), "z", 1, 0), 1);
    fs_->noteChange();
  });
  moves("truncate", [&] {
    AttrChange empty;
    empty.size = 0;
    ASSERT_TRUE(fs_->setattr(readme, empty).ok());
  });
  moves("chmod", [&] {
    AttrChange exec;
    exec.mode = 0755;
    ASSERT_TRUE(fs_->setattr(readme, exec).ok());
  });
  moves("fallocate", [&] { ASSERT_TRUE(fs_->fallocate(readme, 0, 0, 10).ok()); });
  moves("create", [&] { ASSERT_TRUE(fs_->create(src, "new.c", 0644, Caller{}).ok()); });
  moves("mkdir", [&] { ASSERT_TRUE(fs_->mkdir(src, "newdir", 0755, Caller{}).ok()); });
  moves("symlink", [&] { ASSERT_TRUE(fs_->symlink(src, "l", "main.c", Caller{}).ok()); });
  moves("rename", [&] { ASSERT_TRUE(fs_->rename(src, "new.c", src, "renamed.c", 0).ok()); });
  moves("unlink", [&] { ASSERT_TRUE(fs_->unlink(src, "renamed.c").ok()); });
  moves("rmdir", [&] { ASSERT_TRUE(fs_->rmdir(src, "newdir").ok()); });
  moves("chmod of a directory", [&] {
    AttrChange mode;
    mode.mode = 0700;
    ASSERT_TRUE(fs_->setattr(src, mode).ok());
  });
}

TEST_F(FileSystemTest, ModeAndSizeChangesAreChangesAndTimesAreNot) {
  InodeNumber run = inodeOf(*fs_, "bin/run.sh");
  InodeNumber readme = inodeOf(*fs_, "README");
  InodeNumber guide = inodeOf(*fs_, "docs/guide.txt");
  InodeNumber main = inodeOf(*fs_, "src/main.c");
  InodeNumber src = inodeOf(*fs_, "src");
  InodeNumber link = inodeOf(*fs_, "docs/link");
  ASSERT_TRUE(run.valid() && readme.valid() && guide.valid() && main.valid() && src.valid() &&
              link.valid());

  AttrChange noExec;
  noExec.mode = 0644;
  auto st = fs_->setattr(run, noExec);
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->st_mode, static_cast<mode_t>(S_IFREG | 0644));
  EXPECT_EQ(diffOf(*fs_, rev0_), "M bin/run.sh\n");
  AttrChange exec;
  exec.mode = 0755;
  ASSERT_TRUE(fs_->setattr(run, exec).ok());
  EXPECT_EQ(diffOf(*fs_, rev0_), "");
  EXPECT_EQ(readAll(*fs_, run), revFile("bin/run.sh"));

  AttrChange empty;
  empty.size = 0;
  st = fs_->setattr(readme, empty);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_size, 0);
  EXPECT_EQ(readAll(*fs_, readme), "");
  EXPECT_EQ(diffOf(*fs_, rev0_), "M README\n");

  // Truncated to a length, then extended: the revision's bytes, then zeros.
  InodeNumber big = inodeOf(*fs_, "big.bin");
  AttrChange shorter;
  shorter.size = 100;
  ASSERT_TRUE(fs_->setattr(big, shorter).ok());
  EXPECT_EQ(readAll(*fs_, big), revFile("big.bin").substr(0, 100));
  AttrChange longer;
  longer.size = 150;
  st = fs_->setattr(big, longer);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_size, 150);
  EXPECT_EQ(readAll(*fs_, big), revFile("big.bin").substr(0, 100) + Bytes(50, '\0'));
  EXPECT_EQ(diffOf(*fs_, rev0_), "M README\nM big.bin\n");
  AttrChange full;
  full.size = 0;
  ASSERT_TRUE(fs_->setattr(big, full).ok());
  writeAt(*fs_, big, revFile("big.bin"), 0);
  EXPECT_EQ(diffOf(*fs_, rev0_), "M README\n");

  AttrChange times;
  times.mtime = timespec{1000, 5};
  times.atime = timespec{2000, 6};
  st = fs_->setattr(guide, times);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_mtim.tv_sec, 1000);
  EXPECT_EQ(st->st_mtim.tv_nsec, 5);
  EXPECT_EQ(st->st_atim.tv_sec, 2000);
  AttrChange owner;
  owner.uid = 11;
  owner.gid = 12;
  st = fs_->setattr(main, owner);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_uid, 11u);
  EXPECT_EQ(st->st_gid, 12u);
  AttrChange dirMode;
  dirMode.mode = 0700;
  st = fs_->setattr(src, dirMode);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_mode, static_cast<mode_t>(S_IFDIR | 0700));
  EXPECT_EQ(diffOf(*fs_, rev0_), "M README\n");

  EXPECT_EQ(errnoOf(fs_->setattr(link, exec)), EINVAL);
  EXPECT_EQ(errnoOf(fs_->setattr(src, empty)), EISDIR);
}

TEST_F(FileSystemTest, NewEntriesAndDiffAgainstOtherRevisions) {
  // Unchanged, against revision 1 and against the null revision.
  EXPECT_EQ(diffOf(*fs_, rev1_), "M README\nA src/lib/a.c\nR new.txt\n");
  std::string allAdded;
  for (const auto& e : *manifest_) allAdded += "A " + printable(e.path) + "\n";
  EXPECT_EQ(diffOf(*fs_, std::nullopt), allAdded);

  // README made equal to revision 1's.
  InodeNumber readme = inodeOf(*fs_, "README");
  rewrite(*fs_, readme, "readme v2\n");
  EXPECT_EQ(diffOf(*fs_, rev1_), "A src/lib/a.c\nR new.txt\n");
  EXPECT_EQ(diffOf(*fs_, rev0_), "M README\n");

  // New entries, with the caller as owner.
  auto dir = fs_->mkdir(kRootInode, "build", 0750, kCaller);
  ASSERT_TRUE(dir.ok()) << dir.error().message();
  EXPECT_EQ(dir->st_mode, static_cast<mode_t>(S_IFDIR | 0750));
  EXPECT_EQ(dir->st_uid, kCaller.uid);
  EXPECT_EQ(dir->st_gid, kCaller.gid);
  auto obj = fs_->create(InodeNumber(dir->st_ino), "out.o", 0600, kCaller);
  ASSERT_TRUE(obj.ok());
  EXPECT_EQ(obj->st_mode, static_cast<mode_t>(S_IFREG | 0600));
  EXPECT_EQ(obj->st_size, 0);
  auto notes = fs_->create(kRootInode, "notes.txt", 0644, kCaller);
  ASSERT_TRUE(notes.ok());
  writeAt(*fs_, InodeNumber(notes->st_ino), "notes\n", 0);
  auto link = fs_->symlink(kRootInode, "ln", "docs/guide.txt", kCaller);
  ASSERT_TRUE(link.ok());
  EXPECT_TRUE(S_ISLNK(link->st_mode));
  EXPECT_EQ(static_cast<size_t>(link->st_size), std::string("docs/guide.txt").size());
  auto target = fs_->readlink(InodeNumber(link->st_ino));
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(*target, "docs/guide.txt");
  auto fifo = fs_->mknod(kRootInode, "fifo", S_IFIFO | 0644, kCaller);
  ASSERT_TRUE(fifo.ok()) << fifo.error().message();
  EXPECT_TRUE(S_ISFIFO(fifo->st_mode));
  auto dev = fs_->mknod(kRootInode, "dev", S_IFCHR | 0644, kCaller, makedev(1, 3));
  ASSERT_TRUE(dev.ok()) << dev.error().message();
  EXPECT_TRUE(S_ISCHR(dev->st_mode));
  EXPECT_EQ(dev->st_rdev, makedev(1, 3));
  auto blk = fs_->mknod(kRootInode, "blk", S_IFBLK | 0600, kCaller, makedev(259, 65537));
  ASSERT_TRUE(blk.ok()) << blk.error().message();
  auto blkAgain = fs_->getattr(InodeNumber(blk->st_ino));
  ASSERT_TRUE(blkAgain.ok());
  EXPECT_TRUE(S_ISBLK(blkAgain->st_mode));
  EXPECT_EQ(blkAgain->st_rdev, makedev(259, 65537));
  EXPECT_EQ(blkAgain->st_size, 0);

  EXPECT_EQ(diffOf(*fs_, rev0_), "M README\nA build/out.o\nA ln\nA notes.txt\n");
  DiffOptions ignoreBuild;
  ignoreBuild.ignored = [](ByteView path) { return path.substr(0, 5) == "build"; };
  EXPECT_EQ(diffOf(*fs_, rev0_, ignoreBuild), "M README\nA ln\nA notes.txt\n");
  ignoreBuild.listIgnored = true;
  EXPECT_EQ(diffOf(*fs_, rev0_, ignoreBuild), "M README\nA ln\nA notes.txt\nI build/out.o\n");
  EXPECT_TRUE(*fs_->fileExists("build/out.o"));
  EXPECT_TRUE(*fs_->fileExists("ln"));
  EXPECT_FALSE(*fs_->fileExists("build"));

  // Removed and made again with the revision's bytes: no change.
  InodeNumber guideDir = inodeOf(*fs_, "docs");
  ASSERT_TRUE(fs_->unlink(guideDir, "guide.txt").ok());
  EXPECT_EQ(diffOf(*fs_, rev0_), "M README\nA build/out.o\nA ln\nA notes.txt\nR docs/guide.txt\n");
  auto again = fs_->create(guideDir, "guide.txt", 0644, kCaller);
  ASSERT_TRUE(again.ok());
  writeAt(*fs_, InodeNumber(again->st_ino), revFile("docs/guide.txt"), 0);
  EXPECT_EQ(diffOf(*fs_, rev0_), "M README\nA build/out.o\nA ln\nA notes.txt\n");

  // A file where the revision has a directory, and the other way round.
  InodeNumber bin = inodeOf(*fs_, "bin");
  ASSERT_TRUE(fs_->unlink(bin, "run.sh").ok());
  ASSERT_TRUE(fs_->rmdir(kRootInode, "bin").ok());
  ASSERT_TRUE(fs_->create(kRootInode, "bin", 0644, kCaller).ok());
  ASSERT_TRUE(fs_->unlink(kRootInode, "README").ok());
  auto readmeDir = fs_->mkdir(kRootInode, "README", 0755, kCaller);
  ASSERT_TRUE(readmeDir.ok());
  ASSERT_TRUE(fs_->create(InodeNumber(readmeDir->st_ino), "inside", 0644, kCaller).ok());
  EXPECT_EQ(diffOf(*fs_, rev0_),
            "A README/inside\nA bin\nA build/out.o\nA ln\nA notes.txt\nR README\nR bin/run.sh\n");
  EXPECT_FALSE(*fs_->fileExists("README"));
  EXPECT_TRUE(*fs_->fileExists("bin"));
}

// ---------------------------------------------------------------------------
// Renames.

TEST_F(FileSystemTest, RenameOverAnExistingFileReplacesIt) {
  auto src = lookupPath(*fs_, "docs/guide.txt");
  auto dst = lookupPath(*fs_, "README");
  InodeNumber docs = inodeOf(*fs_, "docs");
  ASSERT_TRUE(src.ok() && dst.ok() && docs.valid());
  InodeNumber srcIno(src->st_ino), dstIno(dst->st_ino);

  ASSERT_TRUE(fs_->rename(docs, "guide.txt", kRootInode, "README", 0).ok());
  auto now = fs_->lookup(kRootInode, "README");
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->st_ino, srcIno.value());  // the source's inode, under the new name
  EXPECT_EQ(now->st_nlink, 1u);
  EXPECT_EQ(readAll(*fs_, srcIno), revFile("docs/guide.txt"));
  EXPECT_EQ(errnoOf(fs_->lookup(docs, "guide.txt")), ENOENT);
  EXPECT_FALSE(*fs_->fileExists("docs/guide.txt"));
  for (const auto& e : listAll(*fs_, kRootInode)) {
    if (e.name == "README") {
      EXPECT_EQ(e.ino, srcIno.value());
    }
    EXPECT_NE(e.ino, dstIno.value()) << printable(e.name);
  }
  // The replaced file has no name, and is still there for whoever holds it.
  auto old = fs_->getattr(dstIno);
  ASSERT_TRUE(old.ok()) << old.error().message();
  EXPECT_EQ(old->st_nlink, 0u);
  EXPECT_EQ(readAll(*fs_, dstIno), revFile("README"));
  EXPECT_EQ(diffOf(*fs_, rev0_), "M README\nR docs/guide.txt\n");
  fs_->forget(dstIno, 1);
  EXPECT_EQ(errnoOf(fs_->getattr(dstIno)), ENOENT);

  // A materialized target someone holds open: its overlay file goes with
  // the last forget, and the open handle reads it to the end.
  auto held = fs_->create(kRootInode, "held.txt", 0644, kCaller);
  ASSERT_TRUE(held.ok());
  InodeNumber heldIno(held->st_ino);
  writeAt(*fs_, heldIno, "held bytes\n", 0);
  auto handle = fs_->data(heldIno);
  ASSERT_TRUE(handle.ok() && handle->file);
  InodeNumber src2 = inodeOf(*fs_, "src");
  ASSERT_TRUE(fs_->rename(src2, "main.c", kRootInode, "held.txt", 0).ok());
  EXPECT_EQ(readAll(*fs_, inodeOf(*fs_, "held.txt")), revFile("src/main.c"));
  EXPECT_TRUE(hasOverlayFile(heldIno));
  EXPECT_EQ(readAll(*fs_, heldIno), "held bytes\n");
  fs_->forget(heldIno, 1);
  EXPECT_FALSE(hasOverlayFile(heldIno));
  EXPECT_EQ(preadAll(FileSystem::fdOf(*handle->file)), "held bytes\n");

  // A materialized target nobody holds: its overlay file goes at once.
  auto loose = fs_->create(kRootInode, "loose.txt", 0644, kCaller);
  ASSERT_TRUE(loose.ok());
  InodeNumber looseIno(loose->st_ino);
  writeAt(*fs_, looseIno, "loose\n", 0);
  fs_->forget(looseIno, 1);
  EXPECT_TRUE(hasOverlayFile(looseIno));
  ASSERT_TRUE(fs_->rename(kRootInode, "held.txt", kRootInode, "loose.txt", 0).ok());
  EXPECT_FALSE(hasOverlayFile(looseIno));
  EXPECT_EQ(readAll(*fs_, inodeOf(*fs_, "loose.txt")), revFile("src/main.c"));
  EXPECT_EQ(diffOf(*fs_, rev0_), "M README\nA loose.txt\nR docs/guide.txt\nR src/main.c\n");
  EXPECT_TRUE(overlayFiles().empty());  // only revision objects left, none materialized
}

TEST_F(FileSystemTest, RenameNoReplaceAndExchange) {
  InodeNumber docs = inodeOf(*fs_, "docs");
  InodeNumber src = inodeOf(*fs_, "src");
  InodeNumber readme = inodeOf(*fs_, "README");
  InodeNumber main = inodeOf(*fs_, "src/main.c");
  ASSERT_TRUE(docs.valid() && src.valid() && readme.valid() && main.valid());

  EXPECT_EQ(errnoOf(fs_->rename(docs, "guide.txt", kRootInode, "README", RENAME_NOREPLACE)),
            EEXIST);
  EXPECT_EQ(readAll(*fs_, inodeOf(*fs_, "README")), revFile("README"));
  EXPECT_EQ(readAll(*fs_, inodeOf(*fs_, "docs/guide.txt")), revFile("docs/guide.txt"));
  EXPECT_EQ(diffOf(*fs_, rev0_), "");
  EXPECT_EQ(
      errnoOf(fs_->rename(docs, "guide.txt", kRootInode, "x", RENAME_NOREPLACE | RENAME_EXCHANGE)),
      EINVAL);
  EXPECT_EQ(errnoOf(fs_->rename(docs, "guide.txt", kRootInode, "missing", RENAME_EXCHANGE)),
            ENOENT);
  EXPECT_EQ(diffOf(*fs_, rev0_), "");

  ASSERT_TRUE(fs_->rename(docs, "guide.txt", kRootInode, "guide.txt", RENAME_NOREPLACE).ok());
  EXPECT_EQ(readAll(*fs_, inodeOf(*fs_, "guide.txt")), revFile("docs/guide.txt"));

  ASSERT_TRUE(fs_->rename(kRootInode, "README", src, "main.c", RENAME_EXCHANGE).ok());
  auto a = fs_->lookup(kRootInode, "README");
  auto b = fs_->lookup(src, "main.c");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->st_ino, main.value());
  EXPECT_EQ(b->st_ino, readme.value());
  EXPECT_EQ(readAll(*fs_, main), revFile("src/main.c"));
  EXPECT_EQ(readAll(*fs_, readme), revFile("README"));
  EXPECT_EQ(readAll(*fs_, inodeOf(*fs_, "README")), revFile("src/main.c"));
  EXPECT_EQ(readAll(*fs_, inodeOf(*fs_, "src/main.c")), revFile("README"));
  EXPECT_EQ(diffOf(*fs_, rev0_), "M README\nM src/main.c\nA guide.txt\nR docs/guide.txt\n");

  // Materialized while swapped, then swapped back: the bytes follow.
  writeAt(*fs_, readme, "R", 0);
  ASSERT_TRUE(fs_->rename(kRootInode, "README", src, "main.c", RENAME_EXCHANGE).ok());
  EXPECT_EQ(readAll(*fs_, inodeOf(*fs_, "README")), "R" + revFile("README").substr(1));
  EXPECT_EQ(readAll(*fs_, inodeOf(*fs_, "src/main.c")), revFile("src/main.c"));
  EXPECT_EQ(diffOf(*fs_, rev0_), "M README\nA guide.txt\nR docs/guide.txt\n");
}

TEST_F(FileSystemTest, ExchangedDirectoriesKeepTheirContent) {
  InodeNumber bin = inodeOf(*fs_, "bin");
  InodeNumber run = inodeOf(*fs_, "bin/run.sh");  // a live child of each
  InodeNumber guide = inodeOf(*fs_, "docs/guide.txt");
  ASSERT_TRUE(bin.valid() && run.valid() && guide.valid());

  ASSERT_TRUE(fs_->rename(kRootInode, "bin", kRootInode, "docs", RENAME_EXCHANGE).ok());
  auto moved = lookupPath(*fs_, "docs/run.sh");
  ASSERT_TRUE(moved.ok()) << moved.error().message();
  EXPECT_EQ(moved->st_ino, run.value());
  EXPECT_EQ(moved->st_mode, static_cast<mode_t>(S_IFREG | 0755));
  EXPECT_EQ(readAll(*fs_, run), revFile("bin/run.sh"));
  EXPECT_EQ(inodeOf(*fs_, "bin/guide.txt").value(), guide.value());
  EXPECT_EQ(readAll(*fs_, guide), revFile("docs/guide.txt"));
  auto latin1 = lookupPath(*fs_, "bin/" + kLatin1Name);
  ASSERT_TRUE(latin1.ok());
  EXPECT_EQ(readAll(*fs_, InodeNumber(latin1->st_ino)), revFile("docs/" + kLatin1Name));
  EXPECT_EQ(inodeOf(*fs_, "docs").value(), bin.value());

  std::string want;
  for (const char* p : {"bin/caf\\xe9.txt", "bin/guide.txt", "bin/link", "docs/run.sh"}) {
    want += std::string("A ") + p + "\n";
  }
  for (const char* p : {"bin/run.sh", "docs/caf\\xe9.txt", "docs/guide.txt", "docs/link"}) {
    want += std::string("R ") + p + "\n";
  }
  EXPECT_EQ(diffOf(*fs_, rev0_), want);

  // A write below a moved, unmaterialized directory reads the right blob.
  InodeNumber link = inodeOf(*fs_, "bin/link");
  auto target = fs_->readlink(link);
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(*target, revFile("docs/link"));
  writeAt(*fs_, guide, "G", 0);
  EXPECT_EQ(readAll(*fs_, guide), "G" + revFile("docs/guide.txt").substr(1));

  ASSERT_TRUE(fs_->rename(kRootInode, "bin", kRootInode, "docs", RENAME_EXCHANGE).ok());
  EXPECT_EQ(diffOf(*fs_, rev0_), "M docs/guide.txt\n");
}

TEST_F(FileSystemTest, ARenamedDirectoryKeepsItsUnmaterializedContent) {
  InodeNumber util = inodeOf(*fs_, "src/lib/util.h");
  ASSERT_TRUE(util.valid());
  ASSERT_TRUE(fs_->rename(kRootInode, "src", kRootInode, "source", 0).ok());
  EXPECT_EQ(errnoOf(fs_->lookup(kRootInode, "src")), ENOENT);
  EXPECT_EQ(inodeOf(*fs_, "source/lib/util.h").value(), util.value());
  EXPECT_EQ(readAll(*fs_, util), revFile("src/lib/util.h"));

  std::string added, removed;
  for (const auto& e : *manifest_) {
    if (e.path.rfind("src/", 0) != 0) continue;
    added += "A source/" + printable(e.path.substr(4)) + "\n";
    removed += "R " + printable(e.path) + "\n";
  }
  EXPECT_EQ(diffOf(*fs_, rev0_), added + removed);

  // Materialized through its new path: the old content, then the write.
  InodeNumber deep = inodeOf(*fs_, "source/lib/deep/x/y/z.txt");
  ASSERT_TRUE(deep.valid());
  writeAt(*fs_, deep, "D", 0);
  EXPECT_EQ(readAll(*fs_, deep), "D" + revFile(kDeepFile).substr(1));
  EXPECT_EQ(readAll(*fs_, inodeOf(*fs_, "source/lib/deep.txt")), revFile("src/lib/deep.txt"));
  EXPECT_EQ(diffOf(*fs_, rev0_), added + removed);

  ASSERT_TRUE(fs_->rename(kRootInode, "source", kRootInode, "src", 0).ok());
  EXPECT_EQ(diffOf(*fs_, rev0_), "M " + kDeepFile + "\n");
  EXPECT_EQ(readAll(*fs_, util), revFile("src/lib/util.h"));
}

TEST_F(FileSystemTest, MovingADirectoryBelowItselfIsEinval) {
  InodeNumber src = inodeOf(*fs_, "src");
  InodeNumber lib = inodeOf(*fs_, "src/lib");
  InodeNumber y = inodeOf(*fs_, "src/lib/deep/x/y");
  ASSERT_TRUE(src.valid() && lib.valid() && y.valid());
  EXPECT_EQ(errnoOf(fs_->rename(kRootInode, "src", src, "inner", 0)), EINVAL);
  EXPECT_EQ(errnoOf(fs_->rename(kRootInode, "src", y, "inner", 0)), EINVAL);
  EXPECT_EQ(errnoOf(fs_->rename(src, "lib", lib, "lib", 0)), EINVAL);
  // Exchanging a directory with one of its ancestors moves that ancestor
  // below itself.
  EXPECT_EQ(errnoOf(fs_->rename(lib, "deep", kRootInode, "src", RENAME_EXCHANGE)), EINVAL);
  EXPECT_EQ(errnoOf(fs_->rename(kRootInode, "src", lib, "deep", RENAME_EXCHANGE)), EINVAL);
  EXPECT_EQ(diffOf(*fs_, rev0_), "");
  EXPECT_EQ(readAll(*fs_, inodeOf(*fs_, kDeepFile)), revFile(kDeepFile));
  EXPECT_EQ(fs_->parentOf(lib).value(), src.value());
}

// ---------------------------------------------------------------------------
// Unlinked files, forget, inode numbers.

TEST_F(FileSystemTest, AnUnlinkedFileStaysUsableUntilForgotten) {
  // Materialized, held through FileData.
  InodeNumber readme = inodeOf(*fs_, "README");
  ASSERT_TRUE(readme.valid());
  writeAt(*fs_, readme, "changed", 0);
  auto data = fs_->data(readme);
  ASSERT_TRUE(data.ok() && data->file);
  ASSERT_TRUE(fs_->unlink(kRootInode, "README").ok());
  EXPECT_EQ(errnoOf(fs_->lookup(kRootInode, "README")), ENOENT);
  EXPECT_FALSE(*fs_->fileExists("README"));
  EXPECT_EQ(namesOf(listAll(*fs_, kRootInode)).count("README"), 0u);
  auto st = fs_->getattr(readme);
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->st_nlink, 0u);
  EXPECT_EQ(readAll(*fs_, readme), "changed");
  writeAt(*fs_, readme, "!", 7);
  EXPECT_EQ(readAll(*fs_, readme), "changed!");
  EXPECT_EQ(preadAll(FileSystem::fdOf(*data->file)), "changed!");
  EXPECT_TRUE(hasOverlayFile(readme));

  // Unmaterialized, held through a writable handle taken before the unlink.
  InodeNumber docs = inodeOf(*fs_, "docs");
  InodeNumber guide = inodeOf(*fs_, "docs/guide.txt");
  ASSERT_TRUE(docs.valid() && guide.valid());
  auto handle = fs_->writableFile(guide);
  ASSERT_TRUE(handle.ok()) << handle.error().message();
  ASSERT_TRUE(fs_->unlink(docs, "guide.txt").ok());
  ASSERT_EQ(::pwrite(FileSystem::fdOf(**handle), "GUIDE", 5, 0), 5);
  EXPECT_EQ(readAll(*fs_, guide), "GUIDE\n");

  // Unmaterialized when unlinked: read from the revision, then written.
  InodeNumber src = inodeOf(*fs_, "src");
  InodeNumber main = inodeOf(*fs_, "src/main.c");
  ASSERT_TRUE(src.valid() && main.valid());
  ASSERT_TRUE(fs_->unlink(src, "main.c").ok());
  EXPECT_EQ(readAll(*fs_, main), revFile("src/main.c"));
  writeAt(*fs_, main, "//", 0);
  EXPECT_EQ(readAll(*fs_, main), "//" + revFile("src/main.c").substr(2));
  EXPECT_TRUE(hasOverlayFile(main));

  EXPECT_EQ(diffOf(*fs_, rev0_), "R README\nR docs/guide.txt\nR src/main.c\n");
  EXPECT_EQ(overlayFiles().size(), 3u);

  // The last forget removes each overlay file; open handles still read.
  for (InodeNumber ino : {readme, guide, main}) {
    fs_->forget(ino, 1);
    EXPECT_FALSE(hasOverlayFile(ino)) << ino.value();
    EXPECT_EQ(errnoOf(fs_->getattr(ino)), ENOENT) << ino.value();
  }
  EXPECT_TRUE(overlayFiles().empty());
  EXPECT_EQ(preadAll(FileSystem::fdOf(*data->file)), "changed!");
  EXPECT_EQ(preadAll(FileSystem::fdOf(**handle)), "GUIDE\n");
  EXPECT_EQ(diffOf(*fs_, rev0_), "R README\nR docs/guide.txt\nR src/main.c\n");
}

// Hard links: every name shares one inode and one overlay file, through
// each state a name can be in (loaded, forgotten, the record's own name
// removed while another is not loaded), a remount, a chmod through any
// name, a dematerialization (which must leave it) and a rename over a name.
// ext4's limit (EXT4_LINK_MAX): the 65,000th name is the last; one more is
// EMLINK, and removing a name makes room again.
TEST_F(FileSystemTest, AFileTakesAsManyNamesAsOnExt4AndNoMore) {
  auto dir = fs_->mkdir(kRootInode, "names", 0755, kCaller);
  ASSERT_TRUE(dir.ok()) << dir.error().message();
  InodeNumber names(dir->st_ino);
  auto made = fs_->create(names, "0", 0644, kCaller);
  ASSERT_TRUE(made.ok()) << made.error().message();
  InodeNumber file(made->st_ino);
  for (uint32_t i = 1; i < FileSystem::kMaxLinks; ++i) {
    auto linked = fs_->link(file, names, std::to_string(i));
    ASSERT_TRUE(linked.ok()) << i << ": " << linked.error().message();
  }
  auto st = fs_->getattr(file);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_nlink, 65000u);
  EXPECT_EQ(errnoOf(fs_->link(file, kRootInode, "one-more")), EMLINK);
  EXPECT_EQ(errnoOf(lookupPath(*fs_, "one-more")), ENOENT);
  ASSERT_TRUE(fs_->unlink(names, "123").ok());
  ASSERT_TRUE(fs_->link(file, kRootInode, "one-more").ok());
  st = fs_->getattr(file);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_nlink, 65000u);
}

TEST_F(FileSystemTest, HardLinksShareOneInodeThroughEveryStateOfTheirNames) {
  InodeNumber readme = inodeOf(*fs_, "README");
  InodeNumber docs = inodeOf(*fs_, "docs");
  ASSERT_TRUE(readme.valid() && docs.valid());
  // An unmaterialized file materializes first.
  auto linked = fs_->link(readme, docs, "readme-link");
  ASSERT_TRUE(linked.ok()) << linked.error().message();
  EXPECT_EQ(linked->st_ino, readme.value());
  EXPECT_EQ(linked->st_nlink, 2u);
  EXPECT_TRUE(hasOverlayFile(readme));
  EXPECT_EQ(inodeOf(*fs_, "docs/readme-link"), readme);
  writeAt(*fs_, readme, "linked ", 0);
  EXPECT_EQ(diffOf(*fs_, rev0_), "M README\nA docs/readme-link\n");
  Bytes content = readAll(*fs_, readme);

  // Refusals.
  EXPECT_EQ(errnoOf(fs_->link(docs, kRootInode, "docs2")), EPERM);
  EXPECT_EQ(errnoOf(fs_->link(readme, kRootInode, "README")), EEXIST);

  // The kernel forgets the inode; then the name its record had goes.
  fs_->forget(readme, 3);  // inodeOf twice, and the link
  EXPECT_EQ(errnoOf(fs_->getattr(readme)), ENOENT) << "released";
  ASSERT_TRUE(fs_->unlink(kRootInode, "README").ok());
  EXPECT_TRUE(hasOverlayFile(readme)) << "its other name still holds it";
  auto st = lookupPath(*fs_, "docs/readme-link");
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->st_nlink, 1u);
  EXPECT_EQ(readAll(*fs_, readme), content);

  // Loaded through one name, which then goes while the other is not loaded.
  ASSERT_TRUE(fs_->link(readme, kRootInode, "again").ok());
  ASSERT_TRUE(fs_->unlink(docs, "readme-link").ok());
  st = fs_->getattr(readme);
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->st_nlink, 1u) << "named, though not by the record";
  AttrChange mode;
  mode.mode = 0700;
  ASSERT_TRUE(fs_->setattr(readme, mode).ok());
  st = lookupPath(*fs_, "again");
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->st_ino, readme.value());
  EXPECT_EQ(st->st_mode, static_cast<mode_t>(S_IFREG | 0700));
  EXPECT_TRUE(hasOverlayFile(readme));

  // Three names over a remount; a chmod through one shows on the others.
  ASSERT_TRUE(fs_->link(readme, docs, "l2").ok());
  ASSERT_TRUE(fs_->link(readme, kRootInode, "README").ok());
  unmount();
  ASSERT_NO_FATAL_FAILURE(mount());
  for (const char* path : {"again", "docs/l2", "README"}) {
    auto seen = lookupPath(*fs_, path);
    ASSERT_TRUE(seen.ok()) << path << ": " << seen.error().message();
    EXPECT_EQ(seen->st_ino, readme.value()) << path;
    EXPECT_EQ(seen->st_nlink, 3u) << path;
    EXPECT_EQ(seen->st_mode, static_cast<mode_t>(S_IFREG | 0700)) << path;
  }
  EXPECT_EQ(readAll(*fs_, readme), content);
  mode.mode = 0644;
  ASSERT_TRUE(fs_->setattr(readme, mode).ok());
  unmount();
  ASSERT_NO_FATAL_FAILURE(mount());
  ASSERT_TRUE(lookupPath(*fs_, "README").ok());  // the record's name: the one compared below
  st = lookupPath(*fs_, "docs/l2");
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->st_mode, static_cast<mode_t>(S_IFREG | 0644)) << "every name's entry changed";

  // Equal to the revision's README again: still one file of three names.
  rewrite(*fs_, readme, revFile("README"));
  EXPECT_EQ(diffOf(*fs_, rev0_), "A again\nA docs/l2\n");
  auto demoted = fs_->dematerializeUnchanged(rev0_);
  ASSERT_TRUE(demoted.ok()) << demoted.error().message();
  EXPECT_EQ(*demoted, 0u);
  EXPECT_TRUE(hasOverlayFile(readme));
  EXPECT_EQ(diffOf(*fs_, rev0_), "A again\nA docs/l2\n");
  EXPECT_EQ(lookupPath(*fs_, "again")->st_nlink, 3u);

  // Renames: of one name, then another file over one.
  ASSERT_TRUE(fs_->rename(kRootInode, "again", docs, "moved", 0).ok());
  st = lookupPath(*fs_, "docs/moved");
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->st_nlink, 3u);
  auto other = fs_->create(kRootInode, "other", 0644, kCaller);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(fs_->rename(kRootInode, "other", docs, "l2", 0).ok());
  EXPECT_EQ(fs_->getattr(readme)->st_nlink, 2u);
  ASSERT_TRUE(fs_->unlink(docs, "moved").ok());
  EXPECT_EQ(fs_->getattr(readme)->st_nlink, 1u);
  EXPECT_EQ(readAll(*fs_, readme), revFile("README"));
  unmount();
  ASSERT_NO_FATAL_FAILURE(mount());
  st = lookupPath(*fs_, "README");
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->st_nlink, 1u);
  EXPECT_EQ(lookupPath(*fs_, "docs/l2")->st_ino, other->st_ino);
  // Its last name gone, the file goes with it.
  InodeNumber ino(st->st_ino);
  ASSERT_TRUE(fs_->unlink(kRootInode, "README").ok());
  fs_->forget(ino, 1);
  EXPECT_FALSE(hasOverlayFile(ino));
}

TEST_F(FileSystemTest, AnUnlinkedFileHeldAtUnmountIsRemovedAtTheNextStart) {
  InodeNumber readme = inodeOf(*fs_, "README");
  ASSERT_TRUE(readme.valid());
  writeAt(*fs_, readme, "changed", 0);
  ASSERT_TRUE(fs_->unlink(kRootInode, "README").ok());
  std::string file = fs_->overlay()->filePath(readme.value());
  unmount();  // the kernel never forgot it
  EXPECT_TRUE(stdfs::exists(file));
  ASSERT_NO_FATAL_FAILURE(mount());
  EXPECT_FALSE(stdfs::exists(file));
  EXPECT_TRUE(overlayFiles().empty());
  EXPECT_EQ(diffOf(*fs_, rev0_), "R README\n");
}

TEST_F(FileSystemTest, ForgetBringsTheInodeCountBackDown) {
  const size_t base = fs_->inodeCount();
  std::vector<InodeNumber> chain;
  for (const char* name : {"src", "lib", "deep", "x", "y"}) {
    auto st = fs_->lookup(chain.empty() ? kRootInode : chain.back(), name);
    ASSERT_TRUE(st.ok()) << name;
    chain.push_back(InodeNumber(st->st_ino));
  }
  auto z = fs_->lookup(chain.back(), "z.txt");
  ASSERT_TRUE(z.ok());
  InodeNumber file(z->st_ino);
  EXPECT_EQ(fs_->inodeCount(), base + 6);
  ASSERT_TRUE(fs_->lookup(chain.back(), "z.txt").ok());  // the file is known twice
  EXPECT_EQ(fs_->inodeCount(), base + 6);

  // The directories' lookups are forgotten first: they stay while their
  // descendant is known.
  for (InodeNumber dir : chain) fs_->forget(dir, 1);
  EXPECT_EQ(fs_->inodeCount(), base + 6);
  EXPECT_TRUE(fs_->getattr(chain.front()).ok());
  fs_->forget(file, 1);
  EXPECT_EQ(fs_->inodeCount(), base + 6);
  EXPECT_EQ(readAll(*fs_, file), revFile(kDeepFile));
  fs_->forget(file, 1);
  EXPECT_EQ(fs_->inodeCount(), base);
  for (InodeNumber ino : chain) EXPECT_EQ(errnoOf(fs_->getattr(ino)), ENOENT);

  // Several lookups forgotten at once; too many forgotten is harmless; the
  // root and unknown inodes are never freed or made up.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(fs_->lookup(kRootInode, "README").ok());
  InodeNumber readme = inodeOf(*fs_, "README");
  EXPECT_EQ(fs_->inodeCount(), base + 1);
  fs_->forget(readme, 10);
  EXPECT_EQ(fs_->inodeCount(), base);
  fs_->forget(kRootInode, 5);
  fs_->forget(InodeNumber(999999), 1);
  EXPECT_EQ(fs_->inodeCount(), base);
  EXPECT_TRUE(fs_->getattr(kRootInode).ok());

  // A number once given to one file is never another's.
  std::set<uint64_t> old = {file.value(), readme.value()};
  for (InodeNumber ino : chain) old.insert(ino.value());
  auto main = lookupPath(*fs_, "src/main.c");
  ASSERT_TRUE(main.ok());
  EXPECT_EQ(old.count(main->st_ino), 0u);

  // How FUSE's readdirplus uses it: list, look each entry up, forget each.
  InodeNumber docs = inodeOf(*fs_, "docs");
  size_t withDocs = fs_->inodeCount();
  for (const auto& e : listAll(*fs_, docs)) {
    auto st = fs_->lookup(docs, e.name);
    ASSERT_TRUE(st.ok());
    fs_->forget(InodeNumber(st->st_ino), 1);
  }
  EXPECT_EQ(fs_->inodeCount(), withDocs);

  // In a materialized directory an entry keeps its number across forgets.
  auto made = fs_->create(kRootInode, "made", 0644, kCaller);
  ASSERT_TRUE(made.ok());
  fs_->forget(InodeNumber(made->st_ino), 1);
  EXPECT_EQ(fs_->inodeCount(), withDocs);
  auto again = fs_->lookup(kRootInode, "made");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->st_ino, made->st_ino);
  fs_->forget(InodeNumber(again->st_ino), 1);
  EXPECT_EQ(fs_->inodeCount(), withDocs);
}

// ---------------------------------------------------------------------------
// Persistence.

TEST_F(FileSystemTest, ChangesSurviveANewFileSystemWithTheirInodeNumbers) {
  InodeNumber main = inodeOf(*fs_, "src/main.c");
  rewrite(*fs_, main, "int main() { return 1; }\n");
  InodeNumber docs = inodeOf(*fs_, "docs");
  auto added = fs_->create(docs, "new.txt", 0640, kCaller);
  ASSERT_TRUE(added.ok());
  writeAt(*fs_, InodeNumber(added->st_ino), "new file\n", 0);
  auto dir = fs_->mkdir(kRootInode, "newdir", 0750, kCaller);
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(fs_->symlink(InodeNumber(dir->st_ino), "ln", "../README", kCaller).ok());
  ASSERT_TRUE(fs_->create(InodeNumber(dir->st_ino), "empty", 0600, kCaller).ok());
  ASSERT_TRUE(fs_->mkdir(InodeNumber(dir->st_ino), "sub", 0700, kCaller).ok());
  InodeNumber bin = inodeOf(*fs_, "bin");
  ASSERT_TRUE(fs_->rename(bin, "run.sh", kRootInode, "run.sh", 0).ok());
  ASSERT_TRUE(fs_->unlink(docs, "link").ok());
  InodeNumber y = inodeOf(*fs_, "src/lib/deep/x/y");
  InodeNumber x = inodeOf(*fs_, "src/lib/deep/x");
  ASSERT_TRUE(fs_->unlink(y, "z.txt").ok());
  ASSERT_TRUE(fs_->rmdir(x, "y").ok());
  AttrChange exec;
  exec.mode = 0755;
  ASSERT_TRUE(fs_->setattr(inodeOf(*fs_, "README"), exec).ok());
  AttrChange times;
  times.mtime = timespec{1000, 5};
  ASSERT_TRUE(fs_->setattr(inodeOf(*fs_, "docs/guide.txt"), times).ok());
  // (A directory's mode is left alone here: DirectoryAttributesSurvive...
  // covers it.)
  AttrChange dirTimes;
  dirTimes.mtime = timespec{3000, 7};
  ASSERT_TRUE(fs_->setattr(inodeOf(*fs_, "src/lib"), dirTimes).ok());

  const std::string wantDiff =
      "M README\nM src/main.c\nA docs/new.txt\nA newdir/empty\nA newdir/ln\nA run.sh\n"
      "R bin/run.sh\nR docs/link\nR " +
      kDeepFile + "\n";
  EXPECT_EQ(diffOf(*fs_, rev0_), wantDiff);
  std::map<Bytes, Seen> before;
  walkTree(*fs_, kRootInode, "", before);
  std::set<uint64_t> numbers;
  for (const auto& [path, node] : before) numbers.insert(node.ino);
  std::set<std::string> files = overlayFiles();

  unmount();
  ASSERT_NO_FATAL_FAILURE(mount());
  std::map<Bytes, Seen> after;
  walkTree(*fs_, kRootInode, "", after);
  // Every directory holds a change here (so is materialized): every entry
  // keeps its number, not only the changed ones.
  EXPECT_EQ(differences(before, after), "");
  EXPECT_EQ(diffOf(*fs_, rev0_), wantDiff);
  EXPECT_EQ(overlayFiles(), files);
  EXPECT_EQ(after.at("src/lib").mtime.tv_sec, 3000);
  EXPECT_EQ(after.at("src/lib").mtime.tv_nsec, 7);
  EXPECT_EQ(after.at("README").mode, static_cast<mode_t>(S_IFREG | 0755));
  EXPECT_EQ(after.at("docs/new.txt").uid, kCaller.uid);
  EXPECT_EQ(after.at("docs/guide.txt").mtime.tv_sec, 1000);
  EXPECT_EQ(after.count("src/lib/deep/x/y"), 0u);

  // New numbers are new.
  auto made = fs_->create(kRootInode, "after", 0644, kCaller);
  ASSERT_TRUE(made.ok());
  EXPECT_EQ(numbers.count(made->st_ino), 0u);
  EXPECT_GT(made->st_ino, *numbers.rbegin());

  // And a third run sees the second's change too.
  unmount();
  ASSERT_NO_FATAL_FAILURE(mount());
  auto st = fs_->lookup(kRootInode, "after");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_ino, made->st_ino);
}

// A directory's mode and owner are kept twice: in its own header and in
// the entry its parent holds for it, which is what a lookup reads once the
// kernel has forgotten the directory (or after a remount). chmod and chown
// must change both. (They once changed only the header: this test failed
// with mode 0755 and the old owner after forget and after remount.)
TEST_F(FileSystemTest, DirectoryAttributesSurviveForgetAndRemount) {
  InodeNumber src = inodeOf(*fs_, "src");
  InodeNumber lib = inodeOf(*fs_, "src/lib");
  InodeNumber util = inodeOf(*fs_, "src/lib/util.h");
  ASSERT_TRUE(src.valid() && lib.valid() && util.valid());
  AttrChange change;
  change.mode = 0711;
  change.uid = 11;
  change.gid = 12;
  auto st = fs_->setattr(lib, change);
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->st_mode, static_cast<mode_t>(S_IFDIR | 0711));
  st = fs_->setattr(util, change);
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->st_mode, static_cast<mode_t>(S_IFREG | 0711));

  auto check = [&](const char* when) {
    SCOPED_TRACE(when);
    for (const char* path : {"src/lib", "src/lib/util.h"}) {
      auto again = lookupPath(*fs_, path);
      ASSERT_TRUE(again.ok()) << path;
      EXPECT_EQ(again->st_mode & 07777, 0711u) << path;
      EXPECT_EQ(again->st_uid, 11u) << path;
      EXPECT_EQ(again->st_gid, 12u) << path;
    }
  };
  // Forgotten by the kernel (every lookup of each), then looked up again.
  for (InodeNumber ino : {util, lib, src}) fs_->forget(ino, 3);
  ASSERT_EQ(fs_->inodeCount(), 1u);
  check("after forget");
  unmount();
  ASSERT_NO_FATAL_FAILURE(mount());
  check("after remount");
  EXPECT_EQ(diffOf(*fs_, rev0_), "M src/lib/util.h\n");  // the exec bit
}

// ---------------------------------------------------------------------------
// Threads.

// Every method may be called from any FUSE worker at once: each thread
// changes its own directory while all of them read the same files and
// list, look up and forget in the same unmaterialized directory. Run under
// the sanitizer presets, this is the test that finds data races.
TEST_F(FileSystemTest, ConcurrentRequestsLeaveAConsistentTree) {
  constexpr int kThreads = 4;
  constexpr int kFiles = 40;
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto fail = [&](const std::string& what) {
        if (failures[t].empty()) failures[t] = what;
      };
      Bytes dirName = "t" + std::to_string(t);
      auto dir = fs_->mkdir(kRootInode, dirName, 0755, kCaller);
      if (!dir.ok()) return fail("mkdir: " + dir.error().message());
      InodeNumber d(dir->st_ino);
      for (int i = 0; i < kFiles; ++i) {
        Bytes name = "f" + std::to_string(i);
        Bytes content = dirName + "/" + name + "\n";
        auto f = fs_->create(d, name, 0644, kCaller);
        if (!f.ok()) return fail("create: " + f.error().message());
        InodeNumber ino(f->st_ino);
        auto n = fs_->write(ino, content.data(), content.size(), 0);
        if (!n.ok() || *n != content.size()) return fail("write " + name);
        if (!fs_->rename(d, name, d, "g" + std::to_string(i), 0).ok()) return fail("rename");
        if (i % 2 && !fs_->unlink(d, "g" + std::to_string(i)).ok()) return fail("unlink");
        char buf[64];
        auto got = fs_->read(ino, buf, sizeof buf, 0);
        if (!got.ok() || Bytes(buf, *got) != content) return fail("read back " + name);
        fs_->forget(ino, 1);

        auto lib = fs_->lookup(kRootInode, "src");
        if (!lib.ok()) return fail("lookup src");
        InodeNumber src(lib->st_ino);
        auto listed = fs_->list(src, 0, 100);
        if (!listed.ok() || listed->size() != 2) return fail("list src");
        for (const auto& e : *listed) {
          // Not necessarily e.ino: another thread's lookup and forget may
          // free the listed inode in between, and an entry of an
          // unmaterialized directory gets a new number when looked up again.
          auto st = fs_->lookup(src, e.name);
          if (!st.ok()) return fail("lookup of listed " + e.name + ": " + st.error().message());
          if ((st->st_mode & S_IFMT) != e.type) return fail("type of listed " + e.name);
          fs_->forget(InodeNumber(st->st_ino), 1);
        }
        fs_->forget(src, 1);
        auto readme = fs_->lookup(kRootInode, "README");
        if (!readme.ok()) return fail("lookup README");
        got = fs_->read(InodeNumber(readme->st_ino), buf, sizeof buf, 0);
        if (!got.ok() || Bytes(buf, *got) != revFile("README")) return fail("read README");
        fs_->forget(InodeNumber(readme->st_ino), 1);
        if (i % 8 == 0 && !fs_->diff(rev0_, {}).ok()) return fail("diff");
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], "") << "thread " << t;

  std::string want;
  for (int t = 0; t < kThreads; ++t) {
    std::set<std::string> names;  // sorted as diff() sorts: bytewise
    for (int i = 0; i < kFiles; i += 2)
      names.insert("t" + std::to_string(t) + "/g" + std::to_string(i));
    for (const auto& n : names) want += "A " + n + "\n";
  }
  EXPECT_EQ(diffOf(*fs_, rev0_), want);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kFiles; i += 2) {
      Bytes path = "t" + std::to_string(t) + "/g" + std::to_string(i);
      EXPECT_EQ(readAll(*fs_, inodeOf(*fs_, path)),
                "t" + std::to_string(t) + "/f" + std::to_string(i) + "\n");
    }
  }
  // Every unlinked file was forgotten: no overlay file is left for one.
  EXPECT_EQ(overlayFiles().size(), static_cast<size_t>(kThreads * kFiles / 2));
}

// ---------------------------------------------------------------------------
// Refusals.

TEST_F(FileSystemTest, AReadOnlyFileSystemAnswersErofsToEveryChange) {
  FileSystem ro(store_, rev0_, nullptr, options());
  ASSERT_TRUE(ro.start().ok());
  EXPECT_FALSE(ro.writable());
  InodeNumber readme = inodeOf(ro, "README");
  InodeNumber src = inodeOf(ro, "src");
  InodeNumber lib = inodeOf(ro, "src/lib");
  ASSERT_TRUE(readme.valid() && src.valid() && lib.valid());
  EXPECT_EQ(readAll(ro, readme), revFile("README"));

  EXPECT_EQ(errnoOf(ro.write(readme, "x", 1, 0)), EROFS);
  EXPECT_EQ(errnoOf(ro.writableFile(readme)), EROFS);
  AttrChange mode, size, times, owner;
  mode.mode = 0600;
  size.size = 0;
  times.mtime = timespec{1, 0};
  owner.uid = 1;
  for (const AttrChange* c : {&mode, &size, &times, &owner}) {
    EXPECT_EQ(errnoOf(ro.setattr(readme, *c)), EROFS);
  }
  EXPECT_EQ(errnoOf(ro.setattr(src, mode)), EROFS);
  EXPECT_EQ(errnoOf(ro.fallocate(readme, 0, 0, 4096)), EROFS);
  EXPECT_EQ(errnoOf(ro.create(kRootInode, "new", 0644, kCaller)), EROFS);
  EXPECT_EQ(errnoOf(ro.mknod(kRootInode, "fifo", S_IFIFO | 0644, kCaller)), EROFS);
  EXPECT_EQ(errnoOf(ro.mkdir(src, "dir", 0755, kCaller)), EROFS);
  EXPECT_EQ(errnoOf(ro.symlink(kRootInode, "ln", "README", kCaller)), EROFS);
  EXPECT_EQ(errnoOf(ro.unlink(kRootInode, "README")), EROFS);
  EXPECT_EQ(errnoOf(ro.unlink(lib, "util.h")), EROFS);
  EXPECT_EQ(errnoOf(ro.rmdir(src, "lib")), EROFS);
  for (unsigned flags : {0u, unsigned{RENAME_NOREPLACE}, unsigned{RENAME_EXCHANGE}}) {
    EXPECT_EQ(errnoOf(ro.rename(kRootInode, "README", src, "main.c", flags)), EROFS) << flags;
  }
  EXPECT_EQ(errnoOf(ro.rename(kRootInode, "README", kRootInode, "README2", 0)), EROFS);

  // Nothing changed.
  EXPECT_TRUE(ro.fsync(readme, false).ok());
  EXPECT_TRUE(ro.syncMetadata().ok());
  EXPECT_EQ(readAll(ro, readme), revFile("README"));
  EXPECT_EQ(errnoOf(ro.lookup(kRootInode, "new")), ENOENT);
  EXPECT_EQ(errnoOf(ro.lookup(kRootInode, "README2")), ENOENT);
  EXPECT_EQ(diffOf(ro, rev0_), "");
  std::map<Bytes, mode_t> listed;
  for (const auto& e : listAll(ro, kRootInode)) listed[e.name] = e.type;
  EXPECT_EQ(listed, revChildren(""));
}

TEST_F(FileSystemTest, RefusalsCarryTheErrnoTheKernelMustSee) {
  InodeNumber readme = inodeOf(*fs_, "README");
  InodeNumber src = inodeOf(*fs_, "src");
  InodeNumber lib = inodeOf(*fs_, "src/lib");
  ASSERT_TRUE(readme.valid() && src.valid() && lib.valid());
  char buf[16];

  // ENOTDIR: a file used as a directory.
  EXPECT_EQ(errnoOf(fs_->lookup(readme, "x")), ENOTDIR);
  EXPECT_EQ(errnoOf(fs_->list(readme, 0, 10)), ENOTDIR);
  EXPECT_EQ(errnoOf(fs_->create(readme, "x", 0644, kCaller)), ENOTDIR);
  EXPECT_EQ(errnoOf(fs_->mkdir(readme, "x", 0755, kCaller)), ENOTDIR);
  EXPECT_EQ(errnoOf(fs_->unlink(readme, "x")), ENOTDIR);
  EXPECT_EQ(errnoOf(fs_->rmdir(kRootInode, "README")), ENOTDIR);
  EXPECT_EQ(errnoOf(fs_->rename(kRootInode, "docs", kRootInode, "README", 0)), ENOTDIR);
  EXPECT_EQ(errnoOf(fs_->rename(kRootInode, "big.bin", readme, "x", 0)), ENOTDIR);

  // EISDIR: a directory used as a file.
  EXPECT_EQ(errnoOf(fs_->read(src, buf, sizeof buf, 0)), EISDIR);
  EXPECT_EQ(errnoOf(fs_->write(src, "x", 1, 0)), EISDIR);
  EXPECT_EQ(errnoOf(fs_->data(src)), EISDIR);
  EXPECT_EQ(errnoOf(fs_->writableFile(src)), EISDIR);
  EXPECT_EQ(errnoOf(fs_->unlink(kRootInode, "src")), EISDIR);
  EXPECT_EQ(errnoOf(fs_->rename(kRootInode, "README", kRootInode, "src", 0)), EISDIR);

  // ENOTEMPTY: tracked directories are never empty.
  EXPECT_EQ(errnoOf(fs_->rmdir(kRootInode, "src")), ENOTEMPTY);
  EXPECT_EQ(errnoOf(fs_->rmdir(src, "lib")), ENOTEMPTY);
  EXPECT_EQ(errnoOf(fs_->rename(kRootInode, "docs", kRootInode, "src", 0)), ENOTEMPTY);

  // ENAMETOOLONG: past NAME_MAX bytes.
  const Bytes tooLong(NAME_MAX + 1, 'n');
  EXPECT_EQ(errnoOf(fs_->lookup(kRootInode, tooLong)), ENAMETOOLONG);
  EXPECT_EQ(errnoOf(fs_->create(kRootInode, tooLong, 0644, kCaller)), ENAMETOOLONG);
  EXPECT_EQ(errnoOf(fs_->mkdir(kRootInode, tooLong, 0755, kCaller)), ENAMETOOLONG);
  EXPECT_EQ(errnoOf(fs_->symlink(kRootInode, tooLong, "README", kCaller)), ENAMETOOLONG);
  EXPECT_EQ(errnoOf(fs_->rename(kRootInode, "README", kRootInode, tooLong, 0)), ENAMETOOLONG);

  // EEXIST: the name is taken, in the revision or by a new entry.
  EXPECT_EQ(errnoOf(fs_->create(kRootInode, "README", 0644, kCaller)), EEXIST);
  EXPECT_EQ(errnoOf(fs_->create(lib, "util.h", 0644, kCaller)), EEXIST);
  EXPECT_EQ(errnoOf(fs_->mkdir(kRootInode, "src", 0755, kCaller)), EEXIST);
  EXPECT_EQ(errnoOf(fs_->symlink(kRootInode, "docs", "README", kCaller)), EEXIST);
  EXPECT_EQ(errnoOf(fs_->mknod(kRootInode, "README", S_IFIFO | 0644, kCaller)), EEXIST);

  // ENOENT and EINVAL.
  EXPECT_EQ(errnoOf(fs_->lookup(kRootInode, "missing")), ENOENT);
  EXPECT_EQ(errnoOf(fs_->unlink(kRootInode, "missing")), ENOENT);
  EXPECT_EQ(errnoOf(fs_->rmdir(kRootInode, "missing")), ENOENT);
  EXPECT_EQ(errnoOf(fs_->rename(kRootInode, "missing", kRootInode, "x", 0)), ENOENT);
  EXPECT_EQ(errnoOf(fs_->symlink(kRootInode, "ln", "", kCaller)), ENOENT);
  for (const Bytes& bad : {Bytes("."), Bytes(".."), Bytes("a/b"), Bytes("a\0b", 3), Bytes()}) {
    EXPECT_EQ(errnoOf(fs_->create(kRootInode, bad, 0644, kCaller)), EINVAL) << printable(bad);
  }
  EXPECT_EQ(errnoOf(fs_->readlink(readme)), EINVAL);

  // Every refusal left everything as it was.
  EXPECT_EQ(diffOf(*fs_, rev0_), "");
  EXPECT_TRUE(overlayFiles().empty());
  EXPECT_EQ(readAll(*fs_, readme), revFile("README"));

  // The same, on materialized directories and new entries.
  const Bytes longest(NAME_MAX, 'n');
  ASSERT_TRUE(fs_->create(kRootInode, longest, 0644, kCaller).ok());
  EXPECT_EQ(errnoOf(fs_->create(kRootInode, longest, 0644, kCaller)), EEXIST);
  auto dir = fs_->mkdir(kRootInode, "d", 0755, kCaller);
  ASSERT_TRUE(dir.ok());
  InodeNumber d(dir->st_ino);
  ASSERT_TRUE(fs_->create(d, "f", 0644, kCaller).ok());
  EXPECT_EQ(errnoOf(fs_->rmdir(kRootInode, "d")), ENOTEMPTY);
  EXPECT_EQ(errnoOf(fs_->rename(kRootInode, "bin", kRootInode, "d", 0)), ENOTEMPTY);
  EXPECT_EQ(errnoOf(fs_->rename(kRootInode, "README", kRootInode, "d", 0)), EISDIR);
  EXPECT_EQ(errnoOf(fs_->rename(kRootInode, "d", kRootInode, "README", 0)), ENOTDIR);
  ASSERT_TRUE(fs_->unlink(d, "f").ok());
  // Empty now: a directory may replace it, and rmdir removes it.
  ASSERT_TRUE(fs_->mkdir(kRootInode, "e", 0755, kCaller).ok());
  ASSERT_TRUE(fs_->rename(kRootInode, "e", kRootInode, "d", 0).ok());
  auto replaced = fs_->getattr(d);
  ASSERT_TRUE(replaced.ok()) << replaced.error().message();
  EXPECT_EQ(replaced->st_nlink, 0u);
  ASSERT_TRUE(fs_->rmdir(kRootInode, "d").ok());
  // A tracked directory emptied by unlinks can be removed.
  InodeNumber bin = inodeOf(*fs_, "bin");
  ASSERT_TRUE(fs_->unlink(bin, "run.sh").ok());
  ASSERT_TRUE(fs_->rmdir(kRootInode, "bin").ok());
  EXPECT_EQ(diffOf(*fs_, rev0_), "A " + longest + "\nR bin/run.sh\n");
}

TEST_F(FileSystemTest, ARemovedDirectoryStillHeldAnswersAsEmpty) {
  // Made in an earlier run: this one reads its record from the overlay.
  auto old = fs_->mkdir(kRootInode, "old", 0755, kCaller);
  ASSERT_TRUE(old.ok());
  unmount();
  ASSERT_NO_FATAL_FAILURE(mount());
  InodeNumber oldIno = inodeOf(*fs_, "old");
  ASSERT_TRUE(oldIno.valid());
  EXPECT_EQ(oldIno.value(), old->st_ino);
  // Made in this run.
  auto made = fs_->mkdir(kRootInode, "made", 0755, kCaller);
  ASSERT_TRUE(made.ok());
  InodeNumber madeIno(made->st_ino);

  for (const Bytes name : {"made", "old"}) {
    SCOPED_TRACE(name);
    InodeNumber ino = name == "made" ? madeIno : oldIno;
    ASSERT_TRUE(fs_->rmdir(kRootInode, name).ok());
    auto st = fs_->getattr(ino);
    ASSERT_TRUE(st.ok()) << st.error().message();
    EXPECT_EQ(st->st_nlink, 0u);
    auto listed = fs_->list(ino, 0, 10);
    ASSERT_TRUE(listed.ok()) << listed.error().message();
    EXPECT_TRUE(listed->empty());
    EXPECT_EQ(errnoOf(fs_->lookup(ino, "x")), ENOENT);
    EXPECT_EQ(errnoOf(fs_->create(ino, "x", 0644, kCaller)), ENOENT);
    EXPECT_EQ(errnoOf(fs_->mkdir(ino, "x", 0755, kCaller)), ENOENT);
    EXPECT_EQ(errnoOf(fs_->lookup(kRootInode, name)), ENOENT);
    fs_->forget(ino, 1);
    EXPECT_EQ(errnoOf(fs_->getattr(ino)), ENOENT);
  }
  EXPECT_EQ(diffOf(*fs_, rev0_), "");
}

}  // namespace
}  // namespace hgvfs::fs
