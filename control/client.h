#pragma once
// The client side of the control protocol (protocol.h): one connection to a
// daemon's socket, requests sent one line at a time. `hgvfs status` uses
// it; so do the tests.
//
// Thread rules: one Client per thread; it owns its socket.

#include <string>

#include "base/result.h"
#include "control/protocol.h"

namespace hgvfs::control {

class Client {
 public:
  // Connects to the socket at `path`; kIo ("cannot reach the daemon") when
  // nothing listens there.
  static Result<Client> connect(const std::string& path);
  Client(Client&& other) noexcept;
  Client& operator=(Client&&) = delete;
  ~Client();

  // One request line → one reply line (without newlines).
  Result<std::string> roundTrip(const std::string& line);
  // The status, or the daemon's error, or a protocol mismatch (Corrupt).
  Result<StatusReply> status(const StatusRequest& request);

 private:
  explicit Client(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
  std::string pending_;  // bytes read past the last reply line
};

}  // namespace hgvfs::control
