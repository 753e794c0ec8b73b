// posix_parity scenarios on kinds of node beyond files and directories:
// FIFOs, sockets, device nodes, hard links (parity_scenarios.h).

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <utility>

#include "tests/tools/parity_ops.h"
#include "tests/tools/parity_scenarios.h"

namespace hgvfs::parity {

// ---------------------------------------------------------------------------
// Scenario: FIFOs, device nodes, sockets

namespace {

Op opUnixSocket(const std::string& rel) {
  return custom(fmt("bind+connect unix socket %s", quoteBytes(rel).c_str()), [=](Side& s) {
    // Relative to the scenario directory: sun_path is short.
    int cwd = ::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cwd < 0 || ::chdir(s.dir.c_str()) != 0) return failure(errno);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", rel.c_str());
    auto sa = reinterpret_cast<const struct sockaddr*>(&addr);
    int srv = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int cli = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    Outcome o;
    if (::bind(srv, sa, sizeof addr) != 0 || ::listen(srv, 1) != 0 ||
        ::connect(cli, sa, sizeof addr) != 0) {
      o = failure(errno);
    } else {
      int conn = ::accept4(srv, nullptr, nullptr, SOCK_CLOEXEC);
      char buf[8] = {};
      bool sent = ::send(cli, "hi", 2, 0) == 2;
      ssize_t got = conn >= 0 ? ::recv(conn, buf, sizeof buf, 0) : -1;
      o = sent && got == 2 ? success(std::string(buf, 2)) : failure(errno);
      if (conn >= 0) ::close(conn);
    }
    ::close(cli);
    ::close(srv);
    if (::fchdir(cwd) != 0) o = failure(errno);
    ::close(cwd);
    return o;
  });
}

}  // namespace

void specialFiles(Scenario& s, const Options&) {
  s.step(opMknod("fifo", S_IFIFO | 0640, 0), wantOk());
  s.step(opLstat("fifo"), wantOk("fifo 0640 size=0 nlink=1"));
  s.step(custom("mkfifo(\"fifo2\", 0600)",
                [](Side& x) { return fromRc(::mkfifo(x.p("fifo2").c_str(), 0600)); }),
         wantOk());
  s.step(opLstat("fifo2"), wantOk("fifo 0600 size=0 nlink=1"));
  s.step(opMknod("fifo", S_IFIFO | 0640, 0), wantErr(EEXIST));
  s.step(opOpen("ff", "fifo", O_RDWR | O_NONBLOCK), wantOk());
  s.step(opWrite("ff", "ping"), wantOk());
  s.step(opRead("ff", 16), wantOk("ping"));
  s.step(opRead("ff", 16), wantErr(EAGAIN));
  s.step(opClose("ff"));
  s.step(opRename("fifo2", "fifo3"), wantOk());
  s.step(opUnlink("fifo3"), wantOk());
  s.step(opMknod("reg", S_IFREG | 0600, 0), wantOk());
  s.step(opLstat("reg"), wantOk("file 0600 size=0 nlink=1"));
  s.step(opUnixSocket("sock"), wantOk("hi"));
  s.step(opLstat("sock"));
  s.step(opUnlink("sock"), wantOk());
  // A device whose number needs more than 8 bits of major and minor.
  s.step(opMknod("wide", S_IFCHR | 0600, makedev(4095, 1048575)), wantOk());
  s.step(opLstat("wide"));  // rdev=4095:1048575 on both sides
  s.step(opUnlink("wide"), wantOk());
  const std::pair<const char*, mode_t> kDevices[] = {{"chr", S_IFCHR | 0600},
                                                     {"blk", S_IFBLK | 0600}};
  for (auto [name, mode] : kDevices) {
    s.step(opMknod(name, mode, makedev(1, 3)), wantOk());
    s.step(opMknod(name, mode, makedev(1, 3)), wantErr(EEXIST));
    s.step(opLstat(name));
    s.step(opRename(name, std::string(name) + "2"), wantOk());
    s.step(opLstat(std::string(name) + "2"));
    s.step(opChmod(std::string(name) + "2", 0640), wantOk());
    s.step(opLstat(std::string(name) + "2"));
  }
  // Not opened: FUSE mounts are nodev (opening a device there is EACCES).
}

// ---------------------------------------------------------------------------
// Scenario: hard links

void hardlinks(Scenario& s, const Options&) {
  s.step(opWriteFile("orig", "shared"));
  s.step(opLink("orig", "hl"), wantOk());
  s.step(opStat("orig"), wantOk("file 0644 size=6 nlink=2"));
  s.step(opStat("hl"), wantOk("file 0644 size=6 nlink=2"));
  s.step(opWriteFile("hl", "+more", O_WRONLY | O_APPEND), wantOk());
  s.step(opReadFile("orig"), wantOk("shared+more"));
  s.step(opLink("orig", "hl"), wantErr(EEXIST));
  s.step(opLink("missing", "z"), wantErr(ENOENT));
  s.step(opMkdir("d"));
  s.step(opLink("d", "dlink"), wantErr(EPERM));
  s.step(opLink("orig", "d/hl2"), wantOk());
  s.step(opStat("hl"), wantOk("file 0644 size=11 nlink=3"));
  s.step(opRename("orig", "d/orig-moved"), wantOk());
  s.step(opStat("hl"), wantOk("file 0644 size=11 nlink=3"));
  // Renaming one link onto another link of the same file does nothing.
  s.step(opRename("hl", "d/hl2"), wantOk());
  s.step(opStat("hl"), wantOk("file 0644 size=11 nlink=3"));
  s.step(opStat("d/hl2"), wantOk("file 0644 size=11 nlink=3"));
  s.step(opChmod("hl", 0600), wantOk());
  s.step(opStat("d/orig-moved"), wantOk("file 0600 size=11 nlink=3"));
  s.step(opUnlink("d/orig-moved"), wantOk());
  s.step(opStat("hl"), wantOk("file 0600 size=11 nlink=2"));
  s.step(opOpen("h", "hl", O_RDWR), wantOk());
  s.step(opUnlink("hl"), wantOk());
  s.step(opUnlink("d/hl2"), wantOk());
  s.step(opFstat("h"), wantOk("file 0600 size=11 nlink=0"));
  s.step(opPread("h", 20, 0), wantOk("shared+more"));
  s.step(opClose("h"));
  // link() does not follow a symlink: the new name is the symlink itself.
  s.step(opWriteFile("t", "t"));
  s.step(opSymlink("t", "sl"));
  s.step(opLink("sl", "sl-hard"), wantOk());
  s.step(opLstat("sl-hard"), wantOk("symlink 0777 size=1 nlink=2"));
  s.step(opStat("t"), wantOk("file 0644 size=1 nlink=1"));
  // A link made through an open descriptor (linkat AT_EMPTY_PATH needs
  // CAP_DAC_READ_SEARCH; /proc/self/fd works for everyone).
  s.step(opOpen("keep", "t", O_RDONLY), wantOk());
  s.step(custom("linkat(/proc/self/fd/keep, \"t2\", AT_SYMLINK_FOLLOW)",
                [](Side& x) {
                  std::string proc = fmt("/proc/self/fd/%d", x.fd("keep"));
                  return fromRc(::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, x.p("t2").c_str(),
                                         AT_SYMLINK_FOLLOW));
                }),
         wantOk());
  s.step(opClose("keep"));
  s.step(opStat("t2"), wantOk("file 0644 size=1 nlink=2"));
  // Another file renamed over one name leaves the other name its file.
  s.step(opWriteFile("a1", "a"));
  s.step(opLink("a1", "a2"), wantOk());
  s.step(opWriteFile("other", "other"));
  s.step(opRename("other", "a2"), wantOk());
  s.step(opStat("a1"), wantOk("file 0644 size=1 nlink=1"));
  s.step(opReadFile("a2"), wantOk("other"));
  // A name of a linked file renamed over a plain file.
  s.step(opLink("a1", "d/b1"), wantOk());
  s.step(opRename("d/b1", "a2"), wantOk());
  s.step(opStat("a1"), wantOk("file 0644 size=1 nlink=2"));
  s.step(opReadFile("a2"), wantOk("a"));
  s.step(opList("d"), wantOk());
  // Two linked files trade names.
  s.step(opWriteFile("c1", "cc"));
  s.step(opLink("c1", "d/c2"), wantOk());
  s.step(opRename2("a2", "d/c2", RENAME_EXCHANGE), wantOk());
  s.step(opReadFile("a2"), wantOk("cc"));
  s.step(opReadFile("d/c2"), wantOk("a"));
  s.step(opStat("c1"), wantOk("file 0644 size=2 nlink=2"));
  s.step(opUnlink("c1"), wantOk());
  s.step(opStat("a2"), wantOk("file 0644 size=2 nlink=1"));
  s.step(opUnlink("a1"), wantOk());
  s.step(opStat("d/c2"), wantOk("file 0644 size=1 nlink=1"));
  // Many names, then all but one gone.
  for (int i = 0; i < 20; ++i) s.step(opLink("d/c2", fmt("many%d", i)), wantOk());
  s.step(opStat("many7"), wantOk("file 0644 size=1 nlink=21"));
  for (int i = 0; i < 20; ++i) s.step(opUnlink(fmt("many%d", i)), wantOk());
  s.step(opStat("d/c2"), wantOk("file 0644 size=1 nlink=1"));
  s.step(opList(""), wantOk());
}

}  // namespace hgvfs::parity
