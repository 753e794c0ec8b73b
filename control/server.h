#pragma once
// The daemon's side of the control protocol (protocol.h): a thread
// accepting connections on the client's socket, answering each request line
// with one reply line. A malformed request or another protocol version gets
// an error reply, never a crash; one slow client does not block others
// (each open connection has a worker thread of its own).
//
// The server knows the protocol, not what answers it: requests go to a
// Handler (the daemon's, which asks the status engine).
//
// Threads: connections are served by worker threads that stay for the next
// connection (starting and ending a thread costs more than a status call:
// `hgvfs status` connects once per call). A worker idle for
// kIdleWorkerLife ends while kKeepIdle others are idle, and the accept loop
// joins it; so a burst of clients leaves no more than kKeepIdle threads
// behind. At most kMaxConnections connections are open at once (served, or
// waiting for a worker); one more gets an error reply and is closed.
//
// Thread rules: start() once; stop() (or the destructor) closes the socket
// and joins every thread. Handler methods are called from connection
// threads, several at once.

#include <atomic>
#include <chrono>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/latency_histogram.h"
#include "base/thread_annotations.h"
#include "control/protocol.h"

namespace hgvfs::control {

// What answers requests. An error becomes an error reply carrying its
// message (for an unknown node, one naming it: the extension then answers
// from the manifest itself).
class Handler {
 public:
  virtual ~Handler() = default;
  virtual Result<StatusReply> status(const StatusRequest& request) = 0;
  virtual Result<FilesReply> files(const FilesRequest& request) = 0;
  virtual Result<RevisionDiffReply> revisionDiff(const RevisionDiffRequest& request) = 0;
  virtual Result<CheckoutReply> checkout(const CheckoutRequest& request) {
    (void)request;
    return invalidArgument("checkout is not supported here");
  }
  // The mount's numbers; the server adds "calls" (its own timings).
  virtual Result<StatsReply> stats(const StatsRequest& request) {
    (void)request;
    return invalidArgument("stats is not supported here");
  }
};

class Server {
 public:
  // A request line longer than `maxRequest` bytes gets an error reply and
  // the rest of it is skipped; the connection goes on. A checkout request
  // names every path the update writes: ~40 bytes each, so the default
  // takes an update of millions of files.
  static constexpr size_t kMaxRequest = size_t{256} << 20;
  // A worker idle for `idleWorkerLife` ends while kKeepIdle others are idle.
  static constexpr std::chrono::milliseconds kIdleWorkerLife{10000};
  Server(Handler& handler, std::string socketPath, size_t maxRequest = kMaxRequest,
         std::chrono::milliseconds idleWorkerLife = kIdleWorkerLife);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  static constexpr size_t kMaxConnections = 64;
  static constexpr size_t kKeepIdle = 4;

  Status start();
  void stop();
  // Worker threads not yet joined (serving, idle, or ended and not reaped
  // yet).
  size_t connectionThreads() const EXCLUDES(connectionsMutex_);

  // One request line → one reply line (without the newline). Public for
  // tests.
  std::string handle(const std::string& line);

 private:
  // A decoded request through one Handler method to its reply line.
  template <typename Request, typename Reply>
  std::string answer(Result<Request> request, Result<Reply> (Handler::*method)(const Request&),
                     std::string (*encode)(const Reply&), LatencyHistogram* times = nullptr);
  std::string answerStats(const nlohmann::json& request);
  struct Worker {
    std::thread thread;
    bool ended = false;  // workerLoop returned (guarded by connectionsMutex_)
  };
  void acceptLoop() EXCLUDES(connectionsMutex_);
  // Takes waiting connections one after another until it has been idle for
  // kIdleWorkerLife with kKeepIdle others idle, or the server stops.
  void workerLoop(Worker* self) EXCLUDES(connectionsMutex_);
  void serve(int fd);
  void refuse(int fd, const std::string& message);
  // Joins the workers whose workerLoop has returned.
  void reapEnded() EXCLUDES(connectionsMutex_);

  Handler& handler_;
  std::string path_;
  const size_t maxRequest_;
  const std::chrono::milliseconds idleWorkerLife_;
  int listenFd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  // A leaf: nothing else is locked while it is held.
  mutable Mutex connectionsMutex_;
  std::list<Worker> workers_ GUARDED_BY(connectionsMutex_);
  std::deque<int> waiting_ GUARDED_BY(connectionsMutex_);  // accepted, no worker yet
  std::list<int> openFds_ GUARDED_BY(connectionsMutex_);   // waiting or being served
  size_t idle_ GUARDED_BY(connectionsMutex_) = 0;          // workers waiting for work
  CondVar workReady_{&connectionsMutex_};
  // How long each kind of call took, since the start (hgvfs stats).
  LatencyHistogram statusTimes_, checkoutTimes_, filesTimes_, revisionDiffTimes_;
};

}  // namespace hgvfs::control
