#pragma once
// The daemon's side of the control protocol (control_protocol.h): a thread
// accepting connections on the client's socket, answering each request line
// with one reply line. A malformed request or another protocol version gets
// an error reply, never a crash; one slow client does not block others
// (each connection has its own thread).
//
// Thread rules: start() once; stop() (or the destructor) closes the socket
// and joins every thread.

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "fs/status.h"

namespace hgvfs::fs {

class ControlServer {
 public:
  ControlServer(StatusEngine& status, std::string socketPath);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  hg::Status start();
  void stop();

  // One request line → one reply line (without the newline). Public for
  // tests.
  std::string handle(const std::string& line);

 private:
  void acceptLoop();
  void serve(int fd);

  StatusEngine& status_;
  std::string path_;
  int listenFd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex connectionsMutex_;  // a leaf
  std::list<std::thread> connections_;
  std::list<int> openFds_;
};

}  // namespace hgvfs::fs
