// posix_parity scenarios on the contents of files: open flags, write and
// read, mmap (parity_scenarios.h).

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "tests/tools/parity_ops.h"
#include "tests/tools/parity_scenarios.h"

namespace hgvfs::parity {

// ---------------------------------------------------------------------------
// Scenario: open flags

void openFlags(Scenario& s, const Options&) {
  s.step(opOpen("f", "f", O_CREAT | O_WRONLY, 0644), wantOk());
  s.step(opWrite("f", "hello world"), wantOk());
  s.step(opClose("f"), wantOk());
  s.step(opStat("f"), wantOk("file 0644 size=11 nlink=1"));
  s.step(opOpen("x", "f", O_CREAT | O_EXCL | O_WRONLY), wantErr(EEXIST));
  s.step(opOpen("x", "f", O_CREAT | O_WRONLY, 0600), wantOk());  // existing: mode kept
  s.step(opClose("x"));
  s.step(opStat("f"), wantOk("file 0644 size=11 nlink=1"));
  s.step(opOpen("t", "f", O_WRONLY | O_TRUNC), wantOk());
  s.step(opFstat("t"), wantOk("file 0644 size=0 nlink=1"));
  s.step(opWrite("t", "abc"));
  s.step(opClose("t"));
  // O_APPEND: every write (and on Linux every pwrite) lands at the end.
  s.step(opOpen("ap", "f", O_WRONLY | O_APPEND), wantOk());
  s.step(opLseek("ap", 0, SEEK_SET), wantOk());
  s.step(opWrite("ap", "XYZ"), wantOk());
  s.step(opPwrite("ap", "pw", 0), wantOk());
  s.step(opLseek("ap", 0, SEEK_CUR));
  s.step(opClose("ap"));
  s.step(opReadFile("f"), wantOk("abcXYZpw"));
  s.step(opOpen("rap", "f", O_RDWR | O_APPEND), wantOk());
  s.step(opRead("rap", 3), wantOk("abc"));
  s.step(opWrite("rap", "!"));
  s.step(opLseek("rap", 0, SEEK_CUR));
  s.step(opClose("rap"));
  // Access modes.
  s.step(opOpen("ro", "f", O_RDONLY), wantOk());
  s.step(opWrite("ro", "no"), wantErr(EBADF));
  s.step(opPwrite("ro", "no", 0), wantErr(EBADF));
  s.step(opOpen("wo", "f", O_WRONLY), wantOk());
  s.step(opRead("wo", 10), wantErr(EBADF));
  s.step(opClose("ro"));
  s.step(opClose("wo"));
  s.step(opReadFile("f"), wantOk("abcXYZpw!"));
  // Directories.
  s.step(opOpen("fd", "f", O_RDONLY | O_DIRECTORY), wantErr(ENOTDIR));
  s.step(opMkdir("d"), wantOk());
  s.step(opOpen("dd", "d", O_RDONLY | O_DIRECTORY), wantOk());
  s.step(opRead("dd", 10), wantErr(EISDIR));
  s.step(opClose("dd"));
  s.step(opOpen("dw", "d", O_WRONLY), wantErr(EISDIR));
  s.step(opOpen("dw", "d", O_RDWR), wantErr(EISDIR));
  s.step(opOpen("dw", "d", O_CREAT | O_RDONLY), wantErr(EISDIR));
  s.step(opOpen("dw", "d", O_CREAT | O_EXCL | O_WRONLY), wantErr(EEXIST));
  // Symlinks and O_NOFOLLOW.
  s.step(opSymlink("f", "lf"), wantOk());
  s.step(opOpen("nf", "lf", O_RDONLY | O_NOFOLLOW), wantErr(ELOOP));
  s.step(opOpen("nf", "lf", O_WRONLY | O_CREAT | O_NOFOLLOW), wantErr(ELOOP));
  s.step(opOpen("nf", "lf", O_RDONLY), wantOk());
  s.step(opRead("nf", 100), wantOk("abcXYZpw!"));
  s.step(opClose("nf"));
  s.step(opSymlink("d", "ld"), wantOk());
  s.step(opOpen("nd", "ld", O_RDONLY | O_DIRECTORY | O_NOFOLLOW), wantErr(ENOTDIR));
  s.step(opOpen("nd", "ld", O_RDONLY | O_DIRECTORY), wantOk());
  s.step(opClose("nd"));
  // Creating through a dangling symlink creates its target.
  s.step(opSymlink("newtarget", "dangling"), wantOk());
  s.step(opOpen("dl", "dangling", O_CREAT | O_EXCL | O_WRONLY), wantErr(EEXIST));
  s.step(opOpen("dl", "dangling", O_CREAT | O_WRONLY, 0640), wantOk());
  s.step(opClose("dl"));
  s.step(opStat("newtarget"), wantOk("file 0640 size=0 nlink=1"));
  // Missing and non-directory parents.
  s.step(opOpen("m", "missing/x", O_RDONLY), wantErr(ENOENT));
  s.step(opOpen("m", "missing/x", O_CREAT | O_WRONLY), wantErr(ENOENT));
  s.step(opOpen("m", "f/x", O_CREAT | O_WRONLY), wantErr(ENOTDIR));
  s.step(opOpen("m", "f/x", O_RDONLY), wantErr(ENOTDIR));
  s.step(opMkdir("f/x"), wantErr(ENOTDIR));
  s.step(opStat("f/x"), wantErr(ENOTDIR));
  s.step(opOpen("m", "f/", O_RDONLY), wantErr(ENOTDIR));
  s.step(opOpen("m", "f/", O_CREAT | O_WRONLY), wantErr(EISDIR));
  s.step(opOpen("m", "newfile/", O_CREAT | O_WRONLY), wantErr(EISDIR));
  // Names: the longest allowed and one byte more.
  s.step(opOpen("long", std::string(255, 'n'), O_CREAT | O_WRONLY), wantOk());
  s.step(opClose("long"));
  s.step(opOpen("long", std::string(256, 'n'), O_CREAT | O_WRONLY), wantErr(ENAMETOOLONG));
  s.step(opStat(std::string(256, 'n')), wantErr(ENAMETOOLONG));
  s.step(opMkdir(std::string(256, 'd')), wantErr(ENAMETOOLONG));
  // O_TRUNC with O_RDONLY truncates on Linux (POSIX leaves it unspecified).
  s.step(opWriteFile("rt", "content"));
  s.step(opOpen("rt", "rt", O_RDONLY | O_TRUNC));
  s.step(opClose("rt"));
  s.step(opStat("rt"));
  // Created with mode 0: the owner (root or not) may still write through
  // the descriptor that created it.
  s.step(opOpen("z", "zero-mode", O_CREAT | O_RDWR, 0), wantOk());
  s.step(opWrite("z", "still writable"), wantOk());
  s.step(opClose("z"));
  s.step(opStat("zero-mode"), wantOk("file 0000 size=14 nlink=1"));
}

// ---------------------------------------------------------------------------
// Scenario: write and read

void writeRead(Scenario& s, const Options&) {
  s.step(opOpen("f", "f", O_CREAT | O_RDWR), wantOk());
  s.step(opPwrite("f", "end", 100000), wantOk());
  s.step(opFstat("f"), wantOk("file 0644 size=100003 nlink=1"));
  s.step(opPread("f", 64, 0), wantOk(std::string(64, '\0')));
  s.step(opPread("f", 16, 99995), wantOk(std::string(5, '\0') + "end"));
  s.step(opReadFile("f"));
  s.step(opPwrite("f", "hello", 10));
  s.step(opPwrite("f", "ELL", 11));
  s.step(opPread("f", 9, 8), wantOk(std::string(2, '\0') + "hELLo" + std::string(2, '\0')));
  s.step(opPread("f", 10, 200000), wantOk(""));
  s.step(opLseek("f", 0, SEEK_END), wantOk());
  s.step(opWrite("f", "tail"));
  s.step(opLseek("f", -1, SEEK_SET), wantErr(EINVAL));
  s.step(opLseek("f", -4, SEEK_CUR));
  s.step(opRead("f", 100), wantOk("tail"));
  s.step(opFstat("f"), wantOk("file 0644 size=100007 nlink=1"));
  // A second and a third descriptor on the same path see the writes at once.
  s.step(opOpen("g", "f", O_RDONLY), wantOk());
  s.step(opRead("g", 16));
  s.step(opPwrite("f", "fresh", 0));
  s.step(opPread("g", 5, 0), wantOk("fresh"));
  s.step(opOpen("h", "f", O_WRONLY), wantOk());
  s.step(opPwrite("h", "third", 20));
  s.step(opClose("h"));
  s.step(opPread("g", 5, 20), wantOk("third"));
  s.step(opPwrite("f", pattern(10000, 3), 4000));  // across page boundaries
  s.step(opPread("g", 10050, 3990));
  s.step(opFsync("f"), wantOk());
  s.step(opFsync("f", true), wantOk());
  // Grow and shrink; bytes cut off must not come back when the file regrows.
  s.step(opTruncate("f", 200000), wantOk());
  s.step(opFstat("g"), wantOk("file 0644 size=200000 nlink=1"));
  s.step(opPread("g", 8, 199992), wantOk(std::string(8, '\0')));
  s.step(opPwrite("f", "XXXX", 30));
  s.step(opTruncate("f", 25), wantOk());
  s.step(opFstat("f"), wantOk("file 0644 size=25 nlink=1"));
  s.step(opTruncate("f", 40), wantOk());
  s.step(opPread("g", 40, 0));
  s.step(opFtruncate("f", 5), wantOk());
  s.step(opReadFile("f"), wantOk("fresh"));
  s.step(opFtruncate("f", 12000), wantOk());
  s.step(opReadFile("f"));
  s.step(opFtruncate("g", 10), wantErr(EINVAL));
  s.step(opTruncate("f", -1), wantErr(EINVAL));
  s.step(opMkdir("d"));
  s.step(opTruncate("d", 0), wantErr(EISDIR));
  s.step(opTruncate("missing", 0), wantErr(ENOENT));
  s.step(opClose("g"));
  s.step(opClose("f"));
  // One big write, read back whole.
  s.step(opWriteFile("big", pattern(1 << 20, 11)), wantOk());
  s.step(opReadFile("big"));
  s.step(opStat("big"), wantOk("file 0644 size=1048576 nlink=1"));
  // fallocate: mode 0 extends, KEEP_SIZE does not.
  s.step(opOpen("fa", "fa", O_CREAT | O_RDWR), wantOk());
  s.step(opWrite("fa", "0123456789"));
  s.step(opFallocate("fa", 0, 0, 65536), wantOk());
  s.step(opFstat("fa"), wantOk("file 0644 size=65536 nlink=1"));
  s.step(opPread("fa", 16, 0), wantOk("0123456789" + std::string(6, '\0')));
  s.step(opFallocate("fa", FALLOC_FL_KEEP_SIZE, 0, 1 << 20), wantOk());
  s.step(opFstat("fa"), wantOk("file 0644 size=65536 nlink=1"));
  s.step(opFallocate("fa", 0, 70000, 100), wantOk());
  s.step(opFstat("fa"), wantOk("file 0644 size=70100 nlink=1"));
  s.step(opFallocate("fa", FALLOC_FL_KEEP_SIZE, 80000, 100), wantOk());
  s.step(opFstat("fa"), wantOk("file 0644 size=70100 nlink=1"));
  s.step(opPwrite("fa", "after", 70100));
  s.step(opFallocate("fa", 0, -1, 10), wantErr(EINVAL));
  s.step(opFallocate("fa", 0, 0, 0), wantErr(EINVAL));
  s.step(opOpen("far", "fa", O_RDONLY), wantOk());
  s.step(opFallocate("far", 0, 0, 10), wantErr(EBADF));
  s.step(opClose("far"));
  s.step(opClose("fa"));
  s.step(opReadFile("fa"));
}

// ---------------------------------------------------------------------------
// Scenario: mmap

namespace {

Op opMmap(const std::string& name, const std::string& fdName, size_t len, int prot, int flags) {
  return custom(fmt("%s = mmap(%s, %zu, %s, %s)", name.c_str(), fdName.c_str(), len,
                    prot == PROT_READ ? "PROT_READ" : "PROT_READ|PROT_WRITE",
                    flags == MAP_SHARED ? "MAP_SHARED" : "MAP_PRIVATE"),
                [=](Side& s) {
                  void* addr = ::mmap(nullptr, len, prot, flags, s.fd(fdName), 0);
                  if (addr == MAP_FAILED) return failure(errno);
                  s.maps[name] = Side::Mapping{addr, len};
                  return success();
                });
}

// memcpy into a mapping; EFAULT when the mapping is missing or too short.
Op opPoke(const std::string& name, size_t off, const std::string& data) {
  return custom(fmt("memcpy(%s + %zu, %s)", name.c_str(), off, quoteBytes(data).c_str()),
                [=](Side& s) {
                  auto it = s.maps.find(name);
                  if (it == s.maps.end() || off + data.size() > it->second.len)
                    return failure(EFAULT);
                  std::memcpy(static_cast<char*>(it->second.addr) + off, data.data(), data.size());
                  return success();
                });
}

Op opPeek(const std::string& name, size_t off, size_t len) {
  return custom(fmt("bytes %s[%zu..%zu)", name.c_str(), off, off + len), [=](Side& s) {
    auto it = s.maps.find(name);
    if (it == s.maps.end() || off + len > it->second.len) return failure(EFAULT);
    return success(std::string(static_cast<const char*>(it->second.addr) + off, len));
  });
}

Op opMsync(const std::string& name) {
  return custom(fmt("msync(%s, MS_SYNC)", name.c_str()), [=](Side& s) {
    auto it = s.maps.find(name);
    if (it == s.maps.end()) return failure(EFAULT);
    return fromRc(::msync(it->second.addr, it->second.len, MS_SYNC));
  });
}

Op opMunmap(const std::string& name) {
  return custom(fmt("munmap(%s)", name.c_str()), [=](Side& s) {
    auto it = s.maps.find(name);
    if (it == s.maps.end()) return failure(EFAULT);
    int rc = ::munmap(it->second.addr, it->second.len);
    s.maps.erase(it);
    return fromRc(rc);
  });
}

}  // namespace

void mmapScenario(Scenario& s, const Options&) {
  const size_t len = 3 * 4096 + 100;
  s.step(opOpen("m", "m", O_CREAT | O_RDWR), wantOk());
  s.step(opFtruncate("m", static_cast<off_t>(len)), wantOk());
  s.step(opMmap("m1", "m", len, PROT_READ | PROT_WRITE, MAP_SHARED), wantOk());
  s.step(opPoke("m1", 0, "head"), wantOk());
  s.step(opPoke("m1", 4090, "span-pages"), wantOk());
  s.step(opPoke("m1", len - 4, "tail"), wantOk());
  s.step(opMsync("m1"), wantOk());
  s.step(opOpen("r", "m", O_RDONLY), wantOk());
  s.step(opPread("r", 8, 0), wantOk(std::string("head") + std::string(4, '\0')));
  s.step(opPread("r", 14, 4088),
         wantOk(std::string(2, '\0') + "span-pages" + std::string(2, '\0')));
  s.step(opPread("r", 4, static_cast<off_t>(len - 4)), wantOk("tail"));
  s.step(opReadFile("m"));
  s.step(opMmap("m2", "r", len, PROT_READ, MAP_SHARED), wantOk());
  s.step(opPeek("m2", 4090, 10), wantOk("span-pages"));
  s.step(opPeek("m2", len - 4, 4), wantOk("tail"));
  // write() shows through both mappings; a store through one mapping shows
  // through read() and the other mapping without msync.
  s.step(opPwrite("m", "WRITE", 100), wantOk());
  s.step(opPeek("m1", 100, 5), wantOk("WRITE"));
  s.step(opPeek("m2", 100, 5), wantOk("WRITE"));
  s.step(opPoke("m1", 200, "again"), wantOk());
  s.step(opPread("r", 5, 200), wantOk("again"));
  s.step(opPeek("m2", 200, 5), wantOk("again"));
  // A private mapping's stores stay private.
  s.step(opMmap("p", "m", len, PROT_READ | PROT_WRITE, MAP_PRIVATE), wantOk());
  s.step(opPoke("p", 0, "private"), wantOk());
  s.step(opPeek("p", 0, 7), wantOk("private"));
  s.step(opPread("r", 7, 0), wantOk(std::string("head") + std::string(3, '\0')));
  s.step(opMunmap("p"), wantOk());
  // A writable shared mapping needs a descriptor open for writing.
  s.step(opMmap("bad", "r", len, PROT_READ | PROT_WRITE, MAP_SHARED), wantErr(EACCES));
  s.step(opMmap("bad", "m", 0, PROT_READ, MAP_SHARED), wantErr(EINVAL));
  s.step(opMsync("m1"), wantOk());
  s.step(opMunmap("m1"), wantOk());
  s.step(opMunmap("m2"), wantOk());
  // Grow, map again, store into the new part.
  s.step(opFtruncate("m", 5 * 4096), wantOk());
  s.step(opMmap("m3", "m", 5 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED), wantOk());
  s.step(opPoke("m3", 4 * 4096 + 1, "grown"), wantOk());
  s.step(opMsync("m3"), wantOk());
  s.step(opMunmap("m3"), wantOk());
  s.step(opClose("r"));
  s.step(opClose("m"));
  s.step(opReadFile("m"));
  s.step(opStat("m"), wantOk("file 0644 size=20480 nlink=1"));
}

}  // namespace hgvfs::parity
