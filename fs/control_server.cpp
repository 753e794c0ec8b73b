#include "fs/control_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "fs/control_protocol.h"
#include "fs/log.h"

namespace hgvfs::fs {

namespace {

using nlohmann::json;

json errorReply(const std::string& message) {
  return json{{"version", kControlProtocolVersion}, {"ok", false}, {"error", message}};
}

json pathList(const std::vector<hg::Bytes>& paths) {
  json list = json::array();
  for (const auto& p : paths) list.push_back(bytesToJsonString(p));
  return list;
}

}  // namespace

ControlServer::ControlServer(StatusEngine& status, std::string socketPath)
    : status_(status), path_(std::move(socketPath)) {}

ControlServer::~ControlServer() { stop(); }

hg::Status ControlServer::start() {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof addr.sun_path) {
    return hg::invalidArgument("the control socket path is too long", path_);
  }
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  ::unlink(path_.c_str());  // a socket left by a killed daemon
  listenFd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listenFd_ < 0) return hg::ioError(errno, "cannot create the control socket", path_);
  // Created 0600 from the start: no moment where others could connect.
  mode_t old = ::umask(0177);
  int rc = ::bind(listenFd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::umask(old);
  if (rc != 0 || ::listen(listenFd_, 16) != 0) {
    if (rc == 0) err = errno;
    ::close(listenFd_);
    listenFd_ = -1;
    return hg::ioError(err, std::string("cannot listen on the control socket: ") + strerror(err),
                       path_);
  }
  acceptor_ = std::thread([this] { acceptLoop(); });
  return hg::okStatus();
}

void ControlServer::stop() {
  if (stopping_.exchange(true)) return;
  if (listenFd_ >= 0) ::shutdown(listenFd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  if (listenFd_ >= 0) {
    ::close(listenFd_);
    ::unlink(path_.c_str());
  }
  std::list<std::thread> threads;
  {
    std::lock_guard lock(connectionsMutex_);
    for (int fd : openFds_) ::shutdown(fd, SHUT_RDWR);
    threads.swap(connections_);
  }
  for (auto& t : threads) t.join();
}

void ControlServer::acceptLoop() {
  while (!stopping_) {
    pollfd p{listenFd_, POLLIN, 0};
    int rc = ::poll(&p, 1, 200);
    if (rc <= 0) continue;
    int fd = ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard lock(connectionsMutex_);
    if (stopping_) {
      ::close(fd);
      break;
    }
    openFds_.push_back(fd);
    connections_.emplace_back([this, fd] { serve(fd); });
  }
}

void ControlServer::serve(int fd) {
  std::string pending;
  char buf[4096];
  constexpr size_t kMaxRequest = size_t{1} << 20;
  while (!stopping_) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, static_cast<size_t>(n));
    size_t nl;
    bool tooLong = pending.size() > kMaxRequest && pending.find('\n') == std::string::npos;
    while ((nl = pending.find('\n')) != std::string::npos || tooLong) {
      std::string reply;
      if (tooLong) {
        reply = errorReply("request too long").dump();
        pending.clear();
        tooLong = false;
      } else {
        reply = handle(pending.substr(0, nl));
        pending.erase(0, nl + 1);
      }
      reply.push_back('\n');
      size_t done = 0;
      while (done < reply.size()) {
        ssize_t w = ::send(fd, reply.data() + done, reply.size() - done, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += static_cast<size_t>(w);
      }
    }
  }
  std::lock_guard lock(connectionsMutex_);
  openFds_.remove(fd);
  ::close(fd);
}

std::string ControlServer::handle(const std::string& line) {
  json request;
  try {
    request = json::parse(line);
  } catch (const std::exception& e) {
    return errorReply(std::string("malformed request: ") + e.what()).dump();
  }
  try {
    if (!request.is_object()) return errorReply("malformed request: not an object").dump();
    if (!request.contains("version") || !request["version"].is_number_integer()) {
      return errorReply("malformed request: no version").dump();
    }
    int version = request["version"].get<int>();
    if (version != kControlProtocolVersion) {
      return errorReply("protocol version " + std::to_string(version) +
                        " is not supported (the daemon speaks " +
                        std::to_string(kControlProtocolVersion) + ")")
          .dump();
    }
    std::string op = request.value("op", "");
    if (op == "hello") {
      return json{{"version", kControlProtocolVersion}, {"ok", true}, {"daemon", "hgvfs"}}.dump();
    }
    if (op != "status") return errorReply("unknown op '" + op + "'").dump();
    StatusRequest req;
    req.unknown = request.value("unknown", true);
    req.ignored = request.value("ignored", false);
    req.clean = request.value("clean", false);
    if (request.contains("rev") && !request["rev"].is_null()) {
      req.rev = request["rev"].get<std::string>();
    }
    auto started = std::chrono::steady_clock::now();
    auto result = status_.status(req);
    if (!result.ok()) return errorReply(result.error().message()).dump();
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
    json copies = json::object();
    for (const auto& [dest, source] : result->copies) {
      copies[bytesToJsonString(dest)] = bytesToJsonString(source);
    }
    json warnings = json::array();
    for (const auto& w : result->warnings) warnings.push_back(bytesToJsonString(w));
    json reply{{"version", kControlProtocolVersion},
               {"ok", true},
               {"p1", result->p1.hex()},
               {"modified", pathList(result->modified)},
               {"added", pathList(result->added)},
               {"removed", pathList(result->removed)},
               {"deleted", pathList(result->deleted)},
               {"unknown", pathList(result->unknown)},
               {"ignored", pathList(result->ignored)},
               {"clean", pathList(result->clean)},
               {"copies", copies},
               {"warnings", warnings},
               {"micros", micros}};
    return reply.dump();
  } catch (const std::exception& e) {
    return errorReply(std::string("malformed request: ") + e.what()).dump();
  }
}

}  // namespace hgvfs::fs
