#include "control/client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/io.h"

namespace hgvfs::control {

Result<Client> Client::connect(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return invalidArgument("the control socket path is too long", path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ioError(errno, std::string("cannot make a socket: ") + strerror(errno));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd);
    return ioError(err, std::string("cannot reach the daemon (") + strerror(err) + ")", path);
  }
  return Client(fd, path);
}

Client::Client(Client&& other) noexcept
    : fd_(other.fd_), path_(std::move(other.path_)), pending_(std::move(other.pending_)) {
  other.fd_ = -1;
}

Client::~Client() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::string> Client::roundTrip(const std::string& line) {
  if (fd_ < 0) return ioError(EBADF, "the connection is closed", path_);
  if (!writeFull(fd_, line + "\n").ok()) {
    return ioError(EIO, "the daemon closed the connection", path_);
  }
  char buf[65536];
  size_t nl;
  while ((nl = pending_.find('\n')) == std::string::npos) {
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ioError(EIO, "no answer from the daemon", path_);
    pending_.append(buf, static_cast<size_t>(n));
  }
  std::string reply = pending_.substr(0, nl);
  pending_.erase(0, nl + 1);
  return reply;
}

Result<StatusReply> Client::status(const StatusRequest& request) {
  HG_ASSIGN_OR_RETURN(std::string line, roundTrip(encodeStatusRequest(request)));
  return decodeStatusReply(line);
}

}  // namespace hgvfs::control
