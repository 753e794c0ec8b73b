// control/: the protocol's encodings, and the client and the server over a
// real socket with a stub handler (the daemon's handler is tested through
// real mounts in tests/integration/status_test.cpp).

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "control/client.h"
#include "control/protocol.h"
#include "control/server.h"
#include "tests/support/test_support.h"

namespace hgvfs::control {
namespace {

using nlohmann::json;

TEST(ProtocolTest, EveryByteRoundTrips) {
  Bytes all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  auto back = jsonStringToBytes(bytesToJsonString(all));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, all);
  EXPECT_FALSE(jsonStringToBytes("\xe2\x82\xac").ok());  // U+20AC is not a byte
  EXPECT_FALSE(jsonStringToBytes("\xc3").ok());          // cut short
}

TEST(ProtocolTest, StatusReplyRoundTrips) {
  StatusReply reply;
  reply.p1 = std::string(40, 'a');
  reply.modified = {"a", "dir/\xff\xfe name"};
  reply.added = {"new"};
  reply.removed = {"gone"};
  reply.deleted = {"missing"};
  reply.unknown = {"?"};
  reply.ignored = {"x.o"};
  reply.clean = {"c"};
  reply.copies = {{"new", "a"}, {"\xe9", "\x01"}};
  reply.warnings = {"careful"};
  reply.micros = 42;
  auto back = decodeStatusReply(encodeStatusReply(reply));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->p1, reply.p1);
  EXPECT_EQ(back->modified, reply.modified);
  EXPECT_EQ(back->added, reply.added);
  EXPECT_EQ(back->removed, reply.removed);
  EXPECT_EQ(back->deleted, reply.deleted);
  EXPECT_EQ(back->unknown, reply.unknown);
  EXPECT_EQ(back->ignored, reply.ignored);
  EXPECT_EQ(back->clean, reply.clean);
  auto sorted = reply.copies;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(back->copies, sorted);
  EXPECT_EQ(back->warnings, reply.warnings);
  EXPECT_EQ(back->micros, 42);
}

TEST(ProtocolTest, BadRepliesAreClearErrors) {
  auto version = decodeStatusReply(R"({"version": 2, "ok": true})");
  ASSERT_FALSE(version.ok());
  EXPECT_EQ(version.error().kind, ErrorKind::kUnsupported);
  EXPECT_NE(version.error().what.find("protocol version 2 is not supported (this hgvfs speaks 1)"),
            std::string::npos)
      << version.error().what;
  EXPECT_FALSE(decodeStatusReply(R"({"ok": true})").ok());
  EXPECT_FALSE(decodeStatusReply("not json").ok());
  EXPECT_FALSE(decodeStatusReply("[]").ok());
  EXPECT_FALSE(decodeStatusReply(R"({"version": 1, "ok": true, "added": "x"})").ok());
  EXPECT_FALSE(decodeStatusReply(R"({"version": 1, "ok": true, "added": [1]})").ok());
  auto daemonError = decodeStatusReply(encodeError("no dirstate"));
  ASSERT_FALSE(daemonError.ok());
  EXPECT_EQ(daemonError.error().what, "no dirstate");
}

class StubHandler : public Handler {
 public:
  Result<StatusReply> status(const StatusRequest& request) override {
    ++calls;
    last = request;
    if (request.rev && *request.rev == "fail") return notFound("unknown revision 'fail'");
    StatusReply reply;
    reply.p1 = std::string(40, '0');
    reply.modified = {"m"};
    if (request.unknown) reply.unknown = {"u"};
    return reply;
  }
  std::atomic<int> calls{0};
  StatusRequest last;
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = socketPath(tmp_.path());
    server_ = std::make_unique<Server>(handler_, path_);
    ASSERT_TRUE(server_->start().ok());
  }
  test::TempDir tmp_;
  std::string path_;
  StubHandler handler_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, AnswersStatusThroughTheClient) {
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto client = Client::connect(path_);
  ASSERT_TRUE(client.ok()) << client.error().message();
  StatusRequest req;
  req.unknown = false;
  req.clean = true;
  req.rev = "tip";
  auto reply = client->status(req);
  ASSERT_TRUE(reply.ok()) << reply.error().message();
  EXPECT_EQ(reply->modified, std::vector<Bytes>{"m"});
  EXPECT_TRUE(reply->unknown.empty());
  EXPECT_EQ(handler_.last.clean, true);
  EXPECT_EQ(handler_.last.rev.value_or(""), "tip");
  // Several requests on one connection, and the handler's error as an error.
  req.rev = "fail";
  auto failed = client->status(req);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().what.find("unknown revision 'fail'"), std::string::npos);
  EXPECT_EQ(handler_.calls, 2);
}

TEST_F(ServerTest, RefusesBadRequestsAndKeepsServing) {
  for (const char* line :
       {"garbage", "[1]", R"({"op": "status"})", R"({"version": 9, "op": "status"})",
        R"({"version": 1, "op": "nope"})", R"({"version": 1, "op": "status", "clean": "yes"})"}) {
    json reply = json::parse(server_->handle(line));
    EXPECT_EQ(reply["ok"], false) << line;
    EXPECT_EQ(reply["version"], kProtocolVersion) << line;
    EXPECT_FALSE(reply["error"].get<std::string>().empty()) << line;
  }
  json hello = json::parse(server_->handle(R"({"version": 1, "op": "hello"})"));
  EXPECT_EQ(hello["ok"], true);
  auto client = Client::connect(path_);
  ASSERT_TRUE(client.ok());
  EXPECT_TRUE(client->status({}).ok());
}

TEST_F(ServerTest, ManyClientsAtOnceAndStopJoinsThem) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      auto client = Client::connect(path_);
      if (!client.ok()) return;
      for (int i = 0; i < 20; ++i) {
        if (client->status({}).ok()) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 160);
  // A client that connects and says nothing must not keep stop() waiting.
  auto idle = Client::connect(path_);
  ASSERT_TRUE(idle.ok());
  server_->stop();
  EXPECT_NE(::access(path_.c_str(), F_OK), 0);  // the socket is gone
  EXPECT_FALSE(Client::connect(path_).ok());
}

TEST(ClientTest, NothingListeningIsAClearError) {
  test::TempDir tmp;
  auto client = Client::connect(tmp.path() + "/socket");
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().kind, ErrorKind::kIo);
  EXPECT_NE(client.error().message().find("cannot reach the daemon"), std::string::npos);
}

}  // namespace
}  // namespace hgvfs::control
