#include "base/io.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hgvfs {
namespace {

Error sysError(int err, const std::string& what, const std::string& where) {
  return ioError(err, what + ": " + std::strerror(err), where);
}

}  // namespace

Result<size_t> preadFull(int fd, char* buf, size_t size, off_t offset) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, buf + done, size - done, offset + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sysError(errno, "read failed", {});
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

Status pwriteFull(int fd, ByteView data, off_t offset) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        ::pwrite(fd, data.data() + done, data.size() - done, offset + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sysError(errno, "write failed", {});
    done += static_cast<size_t>(n);
  }
  return okStatus();
}

Status writeFull(int fd, ByteView data) {
  struct stat st {};
  bool socket = ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = socket ? ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL)
                       : ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sysError(errno, "write failed", {});
    if (n == 0) return ioError(EIO, "write made no progress");
    done += static_cast<size_t>(n);
  }
  return okStatus();
}

Result<Bytes> readFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sysError(errno, "cannot read", path);
  Bytes out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return sysError(err, "cannot read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status writeFileAtomically(const std::string& path, ByteView data, mode_t mode) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return sysError(errno, "cannot write", tmp);
  Status written = pwriteFull(fd, data, 0);
  if (!written.ok()) {
    ::close(fd);
    ::unlink(tmp.c_str());
    Error e = std::move(written).takeError();
    e.where = tmp;
    return e;
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return sysError(err, "cannot write", path);
  }
  return okStatus();
}

}  // namespace hgvfs
