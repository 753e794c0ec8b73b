#include "tests/support/tree_snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>

namespace hgvfs::test {

std::optional<std::string> readFd(int fd) {
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;
    }
    if (n == 0) return data;
    data.append(buf, static_cast<size_t>(n));
  }
}

std::string vformatString(const char* f, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = std::vsnprintf(nullptr, 0, f, ap);
  std::string s(n > 0 ? static_cast<size_t>(n) : 0, '\0');
  if (n > 0) std::vsnprintf(s.data(), s.size() + 1, f, ap2);
  va_end(ap2);
  return s;
}

namespace {

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  va_list ap;
  va_start(ap, f);
  std::string s = vformatString(f, ap);
  va_end(ap);
  return s;
}

void fail(TreeEntry& entry, const char* call, int err) {
  entry.err = err;
  entry.failedCall = call;
}

// Appends the names in a directory but . and .., unsorted. False with errno
// set when the listing fails; `names` then holds what was read before.
bool listNames(const std::string& path, std::vector<std::string>& names) {
  DIR* d = ::opendir(path.c_str());
  if (!d) return false;
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
      names.emplace_back(e->d_name);
    errno = 0;
  }
  int err = errno;
  ::closedir(d);
  errno = err;
  return err == 0;
}

// Fills in what lstat, readlink and read say about `path`.
void readEntry(const std::string& path, TreeEntry& entry) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return fail(entry, "lstat", errno);
  entry.mode = st.st_mode;
  entry.size = st.st_size;
  entry.nlink = st.st_nlink;
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) entry.rdev = st.st_rdev;
  if (S_ISLNK(st.st_mode)) {
    char buf[PATH_MAX + 1];
    ssize_t len = ::readlink(path.c_str(), buf, sizeof buf);
    if (len < 0) return fail(entry, "readlink", errno);
    entry.data.assign(buf, static_cast<size_t>(len));
  } else if (S_ISREG(st.st_mode)) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    auto data = fd >= 0 ? readFd(fd) : std::nullopt;
    if (!data)
      fail(entry, "read", errno);
    else
      entry.data = std::move(*data);
    if (fd >= 0) ::close(fd);
  }
}

void scan(const std::string& root, const std::string& rel, const SnapshotOptions& options,
          std::vector<TreeEntry>& out) {
  std::string dirPath = rel.empty() ? root : root + "/" + rel;
  std::vector<std::string> names;
  if (!listNames(dirPath, names)) {
    int err = errno;
    TreeEntry& entry = out.emplace_back();
    entry.path = rel + "/";
    fail(entry, "list", err);
  }
  for (const auto& n : names) {
    if (rel.empty() && std::find(options.skipAtRoot.begin(), options.skipAtRoot.end(), n) !=
                           options.skipAtRoot.end())
      continue;
    TreeEntry entry;
    entry.path = rel.empty() ? n : rel + "/" + n;
    readEntry(root + "/" + entry.path, entry);
    bool dir = entry.err == 0 && S_ISDIR(entry.mode);
    std::string path = entry.path;
    out.push_back(std::move(entry));
    if (dir) scan(root, path, options, out);
  }
}

bool lessByPath(const TreeEntry& x, const TreeEntry& y) { return x.path < y.path; }

// Paths below mismatched directories, for CompareOptions::belowMismatch.
class Cut {
 public:
  // Cuts what lies below `entry` ("dir" or a listing failure's "dir/").
  void add(const TreeEntry& entry) {
    prefixes_.insert(entry.path.back() == '/' ? entry.path : entry.path + "/");
  }
  bool covers(const std::string& path) const {
    if (prefixes_.empty()) return false;
    for (size_t slash = path.find('/'); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      if (prefixes_.count(path.substr(0, slash + 1))) return true;
    }
    return false;
  }

 private:
  std::set<std::string> prefixes_;
};

// Appends the differences of the entries at one path (either may be
// missing); true when what lies below them cannot be compared.
bool comparePair(const TreeEntry* x, const TreeEntry* y, const CompareOptions& options,
                 std::vector<TreeDifference>& out) {
  using Field = TreeDifference::Field;
  auto add = [&](Field field) { out.push_back(TreeDifference{field, x, y}); };
  if (!x || !y) {
    add(x ? Field::kOnlyInA : Field::kOnlyInB);
    return true;
  }
  if (x->err || y->err) {
    if (x->err == y->err && options.sameErrorIsEqual) return false;
    add(Field::kUnreadable);
    return true;
  }
  if ((x->mode & S_IFMT) != (y->mode & S_IFMT)) {
    add(Field::kKind);
    return true;
  }
  bool dir = x->isDir();
  if ((dir ? options.dirModes : options.modes) && x->permissions() != y->permissions())
    add(Field::kMode);
  if (dir) return false;
  if (options.sizes && x->size != y->size) add(Field::kSize);
  if (options.nlink && x->nlink != y->nlink) add(Field::kNlink);
  if (options.rdev && x->rdev != y->rdev) add(Field::kRdev);
  if (options.data && x->data != y->data) add(Field::kData);
  return false;
}

// What one side of an unreadable or one-sided entry was.
std::string brief(const TreeEntry& x) {
  return x.err ? "unreadable (" + errnoSymbol(x.err) + ")"
               : fmt("%s %04o", kindName(x.mode), x.permissions());
}

}  // namespace

bool TreeEntry::isDir() const { return err == 0 && S_ISDIR(mode); }
bool TreeEntry::isSymlink() const { return err == 0 && S_ISLNK(mode); }
bool TreeEntry::isFile() const { return err == 0 && S_ISREG(mode); }

const TreeEntry* TreeSnapshot::find(std::string_view path) const {
  auto it = std::lower_bound(entries.begin(), entries.end(), path,
                             [](const TreeEntry& e, std::string_view p) { return e.path < p; });
  return it != entries.end() && it->path == path ? &*it : nullptr;
}

TreeSnapshot snapshotTree(const std::string& root, const SnapshotOptions& options) {
  TreeSnapshot snapshot;
  scan(root, "", options, snapshot.entries);
  std::sort(snapshot.entries.begin(), snapshot.entries.end(), lessByPath);
  return snapshot;
}

std::vector<TreeDifference> compareSnapshots(const TreeSnapshot& a, const TreeSnapshot& b,
                                             const CompareOptions& options) {
  std::vector<TreeDifference> out;
  if (!options.belowMismatch) {
    // A root that cannot be listed hides the whole tree, but its entry "/"
    // sorts among the names: look at it first.
    const TreeEntry* x = a.find("/");
    const TreeEntry* y = b.find("/");
    if ((x || y) && comparePair(x, y, options, out)) return out;
  }
  Cut cut;
  auto ia = a.entries.begin(), ib = b.entries.begin();
  while (ia != a.entries.end() || ib != b.entries.end()) {
    const TreeEntry* x =
        ia == a.entries.end() || (ib != b.entries.end() && ib->path < ia->path) ? nullptr : &*ia++;
    const TreeEntry* y = ib == b.entries.end() || (x && x->path < ib->path) ? nullptr : &*ib++;
    const std::string& path = x ? x->path : y->path;
    if (options.belowMismatch) {
      comparePair(x, y, options, out);
    } else if (path != "/" && !cut.covers(path) && comparePair(x, y, options, out)) {
      cut.add(x ? *x : *y);
    }
  }
  return out;
}

std::string describeDifference(const TreeDifference& d) {
  using Field = TreeDifference::Field;
  std::string shown = quoteBytes(d.path());
  switch (d.field) {
    case Field::kOnlyInA:
      return shown + " only in A (" + brief(*d.a) + ")";
    case Field::kOnlyInB:
      return shown + " only in B (" + brief(*d.b) + ")";
    case Field::kUnreadable:
      return shown + ": A " + brief(*d.a) + ", B " + brief(*d.b);
    case Field::kKind:
      return shown + ": kind " + kindName(d.a->mode) + " in A, " + kindName(d.b->mode) + " in B";
    case Field::kMode:
      return shown + fmt(": mode %04o in A, %04o in B", d.a->permissions(), d.b->permissions());
    case Field::kSize:
      return shown + fmt(": size %lld in A, %lld in B", d.a->size, d.b->size);
    case Field::kNlink:
      return shown + fmt(": nlink %lu in A, %lu in B", d.a->nlink, d.b->nlink);
    case Field::kRdev:
      return shown + ": device numbers differ";
    case Field::kData: {
      const std::string& x = d.a->data;
      const std::string& y = d.b->data;
      size_t at = firstDifferingByte(x, y);
      return shown +
             fmt(": %s differs at byte %zu (A has %zu bytes, B %zu)",
                 d.a->isSymlink() ? "target" : "content", at, x.size(), y.size()) +
             " A: " + quoteBytes(x.substr(at, 24)) + " B: " + quoteBytes(y.substr(at, 24));
    }
  }
  return shown + ": differs";
}

std::vector<std::string> describeDifferences(const TreeSnapshot& a, const TreeSnapshot& b,
                                             const CompareOptions& options) {
  std::vector<std::string> out;
  for (const auto& d : compareSnapshots(a, b, options)) out.push_back(describeDifference(d));
  return out;
}

const char* kindName(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "dir";
  if (S_ISLNK(m)) return "symlink";
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISCHR(m)) return "chardev";
  if (S_ISBLK(m)) return "blockdev";
  if (S_ISSOCK(m)) return "socket";
  return "unknown";
}

std::string escapeBytes(std::string_view s, size_t max) {
  std::string out;
  size_t i = 0;
  while (i < s.size() && out.size() < max) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t run = 1;
    while (i + run < s.size() && s[i + run] == s[i]) ++run;
    std::string one = c == '\\'                 ? "\\\\"
                      : c == '\n'               ? "\\n"
                      : (c >= 0x20 && c < 0x7f) ? std::string(1, static_cast<char>(c))
                                                : fmt("\\x%02x", c);
    if (run >= 8) {
      out += one + fmt("*%zu", run);
      i += run;
    } else {
      out += one;
      ++i;
    }
  }
  if (i < s.size()) out += fmt("...(%zu bytes)", s.size());
  return out;
}

std::string quoteBytes(std::string_view s) { return "\"" + escapeBytes(s, 48) + "\""; }

size_t firstDifferingByte(std::string_view a, std::string_view b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return i;
}

std::string errnoSymbol(int e) {
  if (e == 0) return "ok";
  const char* n = strerrorname_np(e);
  return n ? n : fmt("errno %d", e);
}

}  // namespace hgvfs::test
