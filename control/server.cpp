#include "control/server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string_view>
#include <system_error>

#include "base/io.h"

namespace hgvfs::control {

namespace {

using nlohmann::json;

}  // namespace

Server::Server(Handler& handler, std::string socketPath, size_t maxRequest,
               std::chrono::milliseconds idleWorkerLife)
    : handler_(handler),
      path_(std::move(socketPath)),
      maxRequest_(maxRequest),
      idleWorkerLife_(idleWorkerLife) {}

Server::~Server() { stop(); }

Status Server::start() {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof addr.sun_path) {
    return invalidArgument("the control socket path is too long", path_);
  }
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  ::unlink(path_.c_str());  // a socket left by a killed daemon
  listenFd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listenFd_ < 0) return ioError(errno, "cannot create the control socket", path_);
  // Created 0600 from the start: no moment where others could connect.
  mode_t old = ::umask(0177);
  int rc = ::bind(listenFd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::umask(old);
  if (rc != 0 || ::listen(listenFd_, 16) != 0) {
    if (rc == 0) err = errno;
    ::close(listenFd_);
    listenFd_ = -1;
    return ioError(err, std::string("cannot listen on the control socket: ") + strerror(err),
                   path_);
  }
  acceptor_ = std::thread([this] { acceptLoop(); });
  return okStatus();
}

void Server::stop() {
  if (stopping_.exchange(true)) return;
  if (listenFd_ >= 0) ::shutdown(listenFd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  if (listenFd_ >= 0) {
    ::close(listenFd_);
    ::unlink(path_.c_str());
  }
  std::list<Worker> workers;
  {
    MutexLock lock(connectionsMutex_);
    for (int fd : openFds_) ::shutdown(fd, SHUT_RDWR);
    workers.swap(workers_);
    workReady_.signalAll();
  }
  for (auto& w : workers) w.thread.join();
  // Connections no worker took.
  MutexLock lock(connectionsMutex_);
  for (int fd : waiting_) {
    openFds_.remove(fd);
    ::close(fd);
  }
  waiting_.clear();
}

size_t Server::connectionThreads() const {
  MutexLock lock(connectionsMutex_);
  return workers_.size();
}

void Server::reapEnded() {
  std::list<Worker> ended;
  {
    MutexLock lock(connectionsMutex_);
    for (auto it = workers_.begin(); it != workers_.end();) {
      auto next = std::next(it);
      if (it->ended) ended.splice(ended.end(), workers_, it);
      it = next;
    }
  }
  // workerLoop marked them ended as its last step: each join is immediate.
  for (auto& w : ended) w.thread.join();
}

void Server::acceptLoop() {
  while (!stopping_) {
    pollfd p{listenFd_, POLLIN, 0};
    int rc = ::poll(&p, 1, 200);
    if (rc <= 0) continue;
    int fd = ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    reapEnded();
    std::string refusal;
    {
      MutexLock lock(connectionsMutex_);
      if (stopping_) {
        ::close(fd);
        break;
      }
      if (openFds_.size() >= kMaxConnections) {
        refusal =
            "too many connections to the daemon (" + std::to_string(kMaxConnections) + " open)";
      } else {
        openFds_.push_back(fd);
        waiting_.push_back(fd);
        // Every waiting connection needs an idle worker of its own (one
        // woken but not yet running still counts as idle, and its
        // connection as waiting).
        if (idle_ < waiting_.size()) {
          workers_.emplace_back();
          Worker* self = &workers_.back();
          try {
            self->thread = std::thread([this, self] { workerLoop(self); });
          } catch (const std::system_error&) {
            // No thread to be had (EAGAIN): refuse this one, keep serving.
            workers_.pop_back();
            waiting_.pop_back();
            openFds_.remove(fd);
            refusal = "the daemon cannot start a thread for this connection";
          }
        }
        workReady_.signal();
      }
    }
    // Not under the lock: refusing waits for the client's request.
    if (!refusal.empty()) refuse(fd, refusal);
  }
}

void Server::workerLoop(Worker* self) {
  connectionsMutex_.lock();
  auto idleSince = std::chrono::steady_clock::now();
  while (true) {
    if (stopping_) break;
    if (waiting_.empty()) {
      ++idle_;
      workReady_.waitUntil(idleSince + idleWorkerLife_);
      --idle_;
      if (waiting_.empty() && !stopping_ &&
          std::chrono::steady_clock::now() >= idleSince + idleWorkerLife_) {
        if (idle_ >= kKeepIdle) break;
        idleSince = std::chrono::steady_clock::now();
      }
      continue;
    }
    int fd = waiting_.front();
    waiting_.pop_front();
    connectionsMutex_.unlock();
    serve(fd);
    connectionsMutex_.lock();
    openFds_.remove(fd);
    ::close(fd);
    idleSince = std::chrono::steady_clock::now();
  }
  self->ended = true;
  connectionsMutex_.unlock();
}

// The error reply, then the connection closed so that the reply arrives:
// closing with the client's request unread would reset the connection and
// drop the reply, so the request is read (and ignored) until the client
// hangs up or 200 ms passed.
void Server::refuse(int fd, const std::string& message) {
  (void)writeFull(fd, encodeError(message) + "\n");
  ::shutdown(fd, SHUT_WR);
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  char buf[4096];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    until - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0 && !(n < 0 && errno == EINTR)) break;
  }
  ::close(fd);
}

void Server::serve(int fd) {
  std::string pending;
  char buf[65536];
  // After an over-long line was answered: its remaining bytes, up to and
  // including its newline, are not a request.
  bool skipping = false;
  bool open = true;
  while (open && !stopping_) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::string_view chunk(buf, static_cast<size_t>(n));
    if (skipping) {
      size_t nl = chunk.find('\n');
      if (nl == std::string_view::npos) continue;
      chunk.remove_prefix(nl + 1);
      skipping = false;
    }
    size_t scanFrom = pending.size();
    pending.append(chunk);
    size_t nl;
    while (open && (nl = pending.find('\n', scanFrom)) != std::string::npos) {
      std::string reply = handle(pending.substr(0, nl));
      pending.erase(0, nl + 1);
      scanFrom = 0;
      reply.push_back('\n');
      open = writeFull(fd, reply).ok();
    }
    if (open && pending.size() > maxRequest_) {
      std::string reply =
          encodeError("request too long (more than " + std::to_string(maxRequest_) + " bytes)");
      reply.push_back('\n');
      pending.clear();
      skipping = true;
      open = writeFull(fd, reply).ok();
    }
  }
}

template <typename Request, typename Reply>
std::string Server::answer(Result<Request> request,
                           Result<Reply> (Handler::*method)(const Request&),
                           std::string (*encode)(const Reply&), LatencyHistogram* times) {
  if (!request.ok()) return encodeError("malformed request: " + request.error().what);
  auto started = std::chrono::steady_clock::now();
  Result<Reply> reply = (handler_.*method)(*request);
  auto elapsed = std::chrono::steady_clock::now() - started;
  if (times) times->record(std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
  if (!reply.ok()) return encodeError(reply.error().message());
  reply->micros = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
  return encode(*reply);
}

std::string Server::answerStats(const json& request) {
  auto decoded = decodeStatsRequest(request);
  if (!decoded.ok()) return encodeError("malformed request: " + decoded.error().what);
  auto started = std::chrono::steady_clock::now();
  auto reply = handler_.stats(*decoded);
  if (!reply.ok()) return encodeError(reply.error().message());
  reply->stats["calls"] = json{{"status", latencyToJson(statusTimes_.summary())},
                               {"checkout", latencyToJson(checkoutTimes_.summary())},
                               {"files", latencyToJson(filesTimes_.summary())},
                               {"revision-diff", latencyToJson(revisionDiffTimes_.summary())}};
  reply->micros = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  return encodeStatsReply(*reply);
}

std::string Server::handle(const std::string& line) {
  auto parsed = parseMessage(line, "the daemon");
  if (!parsed.ok()) {
    const Error& e = parsed.error();
    return encodeError(e.kind == ErrorKind::kUnsupported ? e.what : "malformed request: " + e.what);
  }
  const json& request = *parsed;
  try {
    std::string op = request.value("op", "");
    if (op == "hello") {
      return json{{"version", kProtocolVersion}, {"ok", true}, {"daemon", "hgvfs"}}.dump();
    }
    if (op == "files")
      return answer(decodeFilesRequest(request), &Handler::files, encodeFilesReply, &filesTimes_);
    if (op == "revision-diff") {
      return answer(decodeRevisionDiffRequest(request), &Handler::revisionDiff,
                    encodeRevisionDiffReply, &revisionDiffTimes_);
    }
    if (op == "checkout") {
      return answer(decodeCheckoutRequest(request), &Handler::checkout, encodeCheckoutReply,
                    &checkoutTimes_);
    }
    if (op == "stats") return answerStats(request);
    if (op != "status") return encodeError("unknown op '" + op + "'");
    StatusRequest req;
    req.unknown = request.value("unknown", true);
    req.ignored = request.value("ignored", false);
    req.clean = request.value("clean", false);
    if (request.contains("rev") && !request["rev"].is_null()) {
      req.rev = request["rev"].get<std::string>();
    }
    auto started = std::chrono::steady_clock::now();
    auto result = handler_.status(req);
    auto elapsed = std::chrono::steady_clock::now() - started;
    statusTimes_.record(std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
    if (!result.ok()) return encodeError(result.error().message());
    result->micros = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
    return encodeStatusReply(*result);
  } catch (const std::exception& e) {
    return encodeError(std::string("malformed request: ") + e.what());
  }
}

}  // namespace hgvfs::control
