// control/: the protocol's encodings, and the client and the server over a
// real socket with a stub handler (the daemon's handler is tested through
// real mounts in tests/integration/status_test.cpp).

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
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

// decodeStatusReply reads plain replies in one pass and hands anything else
// to decodeStatusReplyGeneral; both must give the same answer or the same
// error for every line.
void expectSameDecoding(const std::string& line, std::optional<bool> plain = std::nullopt) {
  SCOPED_TRACE(line);
  if (plain) {
    EXPECT_EQ(scanPlainStatusReply(line).has_value(), *plain);
  }
  auto fast = decodeStatusReply(line);
  auto general = decodeStatusReplyGeneral(line);
  ASSERT_EQ(fast.ok(), general.ok());
  if (!fast.ok()) {
    EXPECT_EQ(fast.error().kind, general.error().kind);
    EXPECT_EQ(fast.error().what, general.error().what);
    return;
  }
  EXPECT_EQ(fast->p1, general->p1);
  EXPECT_EQ(fast->modified, general->modified);
  EXPECT_EQ(fast->added, general->added);
  EXPECT_EQ(fast->removed, general->removed);
  EXPECT_EQ(fast->deleted, general->deleted);
  EXPECT_EQ(fast->unknown, general->unknown);
  EXPECT_EQ(fast->ignored, general->ignored);
  EXPECT_EQ(fast->clean, general->clean);
  EXPECT_EQ(fast->copies, general->copies);
  EXPECT_EQ(fast->warnings, general->warnings);
  EXPECT_EQ(fast->micros, general->micros);
}

TEST(ProtocolTest, StatusRepliesDecodeAlikeInOnePassAndThroughADocument) {
  std::mt19937 random(7);
  auto randomPath = [&] {
    Bytes path;
    size_t n = 1 + random() % 12;
    for (size_t i = 0; i < n; ++i) {
      // Mostly plain characters, and every byte now and then.
      path.push_back(random() % 4 ? static_cast<char>('a' + random() % 26)
                                  : static_cast<char>(random() % 256));
    }
    return path;
  };
  for (int round = 0; round < 300; ++round) {
    StatusReply reply;
    reply.p1 = std::string(40, "0123456789abcdef"[random() % 16]);
    for (auto* list : {&reply.modified, &reply.added, &reply.removed, &reply.deleted,
                       &reply.unknown, &reply.ignored, &reply.clean, &reply.warnings}) {
      size_t n = random() % 5;
      for (size_t i = 0; i < n; ++i) list->push_back(randomPath());
    }
    for (size_t i = random() % 4; i > 0; --i) reply.copies.emplace_back(randomPath(), randomPath());
    if (round % 10 == 0) reply.copies.emplace_back("twice", "first");
    if (round % 10 == 0) reply.copies.emplace_back("twice", "second");
    reply.micros = static_cast<int64_t>(random() % 100000);
    std::string line = encodeStatusReply(reply);
    expectSameDecoding(line, true);
    // The encoding is the reply: read back through a JSON document.
    auto back = decodeStatusReplyGeneral(line);
    ASSERT_TRUE(back.ok()) << back.error().message();
    EXPECT_EQ(back->p1, reply.p1);
    EXPECT_EQ(back->modified, reply.modified);
    EXPECT_EQ(back->unknown, reply.unknown);
    EXPECT_EQ(back->warnings, reply.warnings);
    std::map<Bytes, Bytes> copies;  // a destination named twice: the last source
    for (const auto& [dest, source] : reply.copies) copies[dest] = source;
    std::vector<std::pair<Bytes, Bytes>> lastSources(copies.begin(), copies.end());
    EXPECT_EQ(back->copies, lastSources);
    EXPECT_EQ(back->micros, reply.micros);
    // And every way of cutting it short.
    if (round % 30 == 0) {
      for (size_t cut = 0; cut < line.size(); ++cut) expectSameDecoding(line.substr(0, cut));
    }
  }
  // Well formed, written otherwise than the daemon writes it: one pass.
  for (const char* line : {
           R"( { "version" : 1 , "ok" : true , "added" : [ "a\/b" , "\u00e9\u0001" ] } )",
           R"({"version": 1, "ok": true, "later": {"x": [1, -2, null, false, "s"]}, "micros": 3})",
           R"({"version": 1, "ok": true, "copies": {"b": "x", "a": "y"}})",
           R"({"version": 1, "ok": true, "modified": ["\b\f\n\r\t\"\\"]})",
           R"({"version": 1, "ok": true, "micros": 9223372036854775807})",
           R"({"version": 1, "ok": true, "micros": -12})",
           "{\"version\": 1, \"ok\": true, \"added\": [\"\xc3\xa9\xc2\x80\"]}",
       }) {
    expectSameDecoding(line, true);
  }
  // Left to the document: well formed but not plain, and errors.
  for (const char* line : {
           R"({"version": 1, "ok": true, "added": ["a"], "added": ["b"]})",
           R"({"version": 1, "ok": true, "copies": {"a": "x", "a": "y"}})",
           R"({"version": 1, "ok": true, "micros": 1.5})",
           R"({"version": 1, "ok": true, "micros": 1e3})",
           R"({"version": 1, "ok": true, "micros": 9223372036854775808})",
           R"({"version": 1, "ok": true, "micros": 99999999999999999999})",
           R"({"version": 1, "ok": true, "p1": "\u0100"})",
           R"({"version": 1, "ok": true, "added": ["\u0100"]})",
           R"({"version": 1, "ok": true, "added": ["\ud83d\ude00"]})",
           "{\"version\": 1, \"ok\": true, \"added\": [\"\xe2\x82\xac\"]}",
           "{\"version\": 1, \"ok\": true, \"added\": [\"\x01\"]}",
           "{\"version\": 1, \"ok\": true, \"added\": [\"\xff\"]}",
           R"({"version": 2, "ok": true})",
           R"({"version": 1, "ok": false, "error": "no dirstate"})",
           R"({"version": 1, "ok": 1})",
           R"({"ok": true})",
           R"({"version": 1})",
           R"({"version": 1, "ok": true, "added": "x"})",
           R"({"version": 1, "ok": true, "added": [1]})",
           R"({"version": 1, "ok": true, "copies": {"a": 1}})",
           R"({"version": 1, "ok": true} trailing)",
           R"({"version": 1, "ok": true, "x": [1,]})",
           R"({"version": 01, "ok": true})",
           "[]",
           "",
       }) {
    expectSameDecoding(line, false);
  }
}

TEST(ProtocolTest, FilesRequestAndReplyRoundTrip) {
  FilesRequest request;
  request.node = std::string(40, 'a');
  request.paths = {"a/b", Bytes("caf\xe9"), Bytes("nul\0in", 6)};
  request.dirs = {{"", {}}, {"a", {"a/x", Bytes("a/\xff")}}};
  auto parsed = parseMessage(encodeFilesRequest(request), "test");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  EXPECT_EQ((*parsed)["op"], "files");
  auto back = decodeFilesRequest(*parsed);
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->node, request.node);
  EXPECT_EQ(back->paths, request.paths);
  ASSERT_EQ(back->dirs.size(), 2u);
  EXPECT_EQ(back->dirs[0].dir, "");
  EXPECT_TRUE(back->dirs[0].except.empty());
  EXPECT_EQ(back->dirs[1].dir, "a");
  EXPECT_EQ(back->dirs[1].except, request.dirs[1].except);

  FilesReply reply;
  reply.kinds = {FileKind::kRegular, FileKind::kExecutable, FileKind::kSymlink, FileKind::kAbsent};
  reply.dirs = {true, false};
  reply.micros = 7;
  std::string line = encodeFilesReply(reply);
  json j = json::parse(line);
  EXPECT_EQ(j["kinds"], json::parse(R"(["", "x", "l", null])"));
  EXPECT_EQ(j["dirs"], json::parse("[true, false]"));
  auto decoded = decodeFilesReply(line);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message();
  EXPECT_EQ(decoded->kinds, reply.kinds);
  EXPECT_EQ(decoded->dirs, reply.dirs);
  EXPECT_EQ(decoded->micros, 7);
}

TEST(ProtocolTest, FilesRequestListsAreOptional) {
  auto parsed =
      parseMessage(R"({"version":1,"op":"files","node":")" + std::string(40, '0') + "\"}", "test");
  ASSERT_TRUE(parsed.ok());
  auto request = decodeFilesRequest(*parsed);
  ASSERT_TRUE(request.ok()) << request.error().message();
  EXPECT_TRUE(request->paths.empty());
  EXPECT_TRUE(request->dirs.empty());
  // A dir without an except list excepts nothing.
  parsed = parseMessage(
      R"({"version":1,"op":"files","node":")" + std::string(40, '0') + R"(","dirs":[{"dir":"d"}]})",
      "test");
  ASSERT_TRUE(parsed.ok());
  request = decodeFilesRequest(*parsed);
  ASSERT_TRUE(request.ok()) << request.error().message();
  ASSERT_EQ(request->dirs.size(), 1u);
  EXPECT_TRUE(request->dirs[0].except.empty());
}

TEST(ProtocolTest, RevisionDiffRequestAndReplyRoundTrip) {
  RevisionDiffRequest request;
  request.from = std::string(40, '0');
  request.to = "0123456789abcdef0123456789ABCDEF01234567";
  auto parsed = parseMessage(encodeRevisionDiffRequest(request), "test");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ((*parsed)["op"], "revision-diff");
  auto back = decodeRevisionDiffRequest(*parsed);
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->from, request.from);
  EXPECT_EQ(back->to, request.to);

  RevisionDiffReply reply;
  reply.onlyFrom = {"a", Bytes("\xe9t\xe9")};
  reply.onlyTo = {};
  reply.micros = 3;
  std::string line = encodeRevisionDiffReply(reply);
  EXPECT_EQ(json::parse(line)["only_to"], json::array());
  auto decoded = decodeRevisionDiffReply(line);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message();
  EXPECT_EQ(decoded->onlyFrom, reply.onlyFrom);
  EXPECT_TRUE(decoded->onlyTo.empty());
  EXPECT_EQ(decoded->micros, 3);
  // Asked without entries: the lists are there, and empty.
  EXPECT_EQ(json::parse(line)["changes"], json::array());
  EXPECT_TRUE(decoded->changes.empty());
  EXPECT_TRUE(decoded->entries.empty());
}

TEST(ProtocolTest, RevisionDiffEntriesRoundTrip) {
  RevisionDiffRequest request;
  request.from = std::string(40, 'a');
  request.to = std::string(40, 'b');
  request.entries = true;
  request.paths = {"kept", Bytes("caf\xe9")};
  auto parsed = parseMessage(encodeRevisionDiffRequest(request), "test");
  ASSERT_TRUE(parsed.ok());
  auto back = decodeRevisionDiffRequest(*parsed);
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_TRUE(back->entries);
  EXPECT_EQ(back->paths, request.paths);

  RevisionDiffReply reply;
  reply.changes.push_back({"added", std::nullopt, std::nullopt, "", "x"});
  reply.changes.back().toNode = std::string(40, 'c');
  reply.changes.push_back({"link", std::string(40, 'd'), std::string(40, 'd'), "", "l"});
  reply.entries.push_back({"kept", std::string(40, 'e'), std::string(40, 'e'), "x", "x"});
  reply.entries.push_back({Bytes("caf\xe9"), std::nullopt, std::nullopt, "", ""});
  reply.entries.push_back({Bytes("q\"\\\x01\n\x7f\xff"), std::nullopt, std::nullopt, "", ""});
  reply.onlyFrom = {"gone", Bytes("tab\there")};
  reply.onlyTo = {Bytes("\x80")};
  reply.micros = 17;
  std::string line = encodeRevisionDiffReply(reply);
  EXPECT_EQ(json::parse(line)["changes"][0][1], nullptr);
  auto decoded = decodeRevisionDiffReply(line);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message();
  EXPECT_EQ(decoded->changes, reply.changes);
  EXPECT_EQ(decoded->entries, reply.entries);
  EXPECT_EQ(decoded->onlyFrom, reply.onlyFrom);
  EXPECT_EQ(decoded->onlyTo, reply.onlyTo);
  EXPECT_EQ(decoded->micros, 17);

  for (const std::string bad : {
           R"([["a", "abc", "", null, ""]])",  // node not 40 hex digits
           R"([["a", null, "y", null, ""]])",  // unknown flags
           R"([["a", null, ""]])",             // too short
           R"(["a"])",                         // not a list
           R"([[1, null, "", null, ""]])",     // path not a string
       }) {
    auto r = decodeRevisionDiffReply(R"({"version":1,"ok":true,"changes":)" + bad + "}");
    EXPECT_FALSE(r.ok()) << bad;
  }
  auto badRequest =
      parseMessage(R"({"version":1,"op":"revision-diff","from":")" + std::string(40, '0') +
                       R"(","to":")" + std::string(40, '0') + R"(","entries":"yes"})",
                   "t");
  ASSERT_TRUE(badRequest.ok());
  EXPECT_FALSE(decodeRevisionDiffRequest(*badRequest).ok());
}

TEST(ProtocolTest, RevisionDiffAsManifestText) {
  RevisionDiffRequest request;
  request.from = std::string(40, 'a');
  request.to = std::string(40, 'b');
  request.entries = true;
  request.manifestText = true;
  auto parsed = parseMessage(encodeRevisionDiffRequest(request), "test");
  ASSERT_TRUE(parsed.ok());
  auto back = decodeRevisionDiffRequest(*parsed);
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_TRUE(back->manifestText);

  std::string n1(40, '1'), n2(40, '2'), n3(40, '3');
  std::vector<ManifestEntryPair> changes = {
      {"b", n1, n2, "", "x"},                      // changed
      {"c", std::nullopt, n3, "", "l"},            // only in TO
      {Bytes("d\xe9"), n2, std::nullopt, "", ""},  // only in FROM
  };
  std::vector<ManifestEntryPair> entries = {
      {"a", n1, n1, "", ""},                      // the same in both
      {"b", n1, n2, "", "x"},                     // also a change: one line
      {"z", std::nullopt, std::nullopt, "", ""},  // in neither
  };
  using namespace std::string_literals;
  EXPECT_EQ(manifestTextOf(changes, entries, true),
            "a\0"s + n1 + "\n" + "b\0"s + n1 + "\n" + "d\xe9\0"s + n2 + "\n");
  EXPECT_EQ(manifestTextOf(changes, entries, false),
            "a\0"s + n1 + "\n" + "b\0"s + n2 + "x\n" + "c\0"s + n3 + "l\n");

  RevisionDiffReply reply;
  reply.fromManifest = manifestTextOf(changes, entries, true);
  reply.toManifest = Bytes();
  auto decoded = decodeRevisionDiffReply(encodeRevisionDiffReply(reply));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message();
  EXPECT_EQ(decoded->fromManifest, reply.fromManifest);
  EXPECT_EQ(decoded->toManifest, Bytes());
  EXPECT_FALSE(decodeRevisionDiffReply(encodeRevisionDiffReply(RevisionDiffReply{}))
                   ->fromManifest.has_value());
  EXPECT_FALSE(decodeRevisionDiffReply(R"({"version":1,"ok":true,"from_manifest":1})").ok());
}

TEST(ProtocolTest, CheckoutRequestAndReplyRoundTrip) {
  CheckoutRequest request;
  request.from = std::string(40, 'a');
  request.to = std::string(40, 'b');
  request.get = {"a/b", Bytes("caf\xe9")};
  request.remove = {"gone"};
  request.exec = {"run.sh"};
  auto parsed = parseMessage(encodeCheckoutRequest(request), "test");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ((*parsed)["op"], "checkout");
  auto back = decodeCheckoutRequest(*parsed);
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->from, request.from);
  EXPECT_EQ(back->to, request.to);
  EXPECT_EQ(back->get, request.get);
  EXPECT_EQ(back->remove, request.remove);
  EXPECT_EQ(back->exec, request.exec);

  CheckoutReply reply;
  reply.applied = 7;
  reply.left = {"run.sh"};
  reply.refused = {"d"};
  reply.swapped = 2;
  reply.materialized = 1;
  reply.dematerialized = 3;
  auto decoded = decodeCheckoutReply(encodeCheckoutReply(reply));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message();
  EXPECT_EQ(decoded->applied, 7u);
  EXPECT_EQ(decoded->left, reply.left);
  EXPECT_EQ(decoded->refused, reply.refused);
  EXPECT_EQ(decoded->swapped, 2u);
  EXPECT_EQ(decoded->materialized, 1u);
  EXPECT_EQ(decoded->dematerialized, 3u);

  // Bad requests are clear errors; a missing list is an empty one.
  auto req = [](const std::string& body) -> Result<CheckoutRequest> {
    HG_ASSIGN_OR_RETURN(json j, parseMessage(R"({"version":1,"op":"checkout")" + body + "}", "t"));
    return decodeCheckoutRequest(j);
  };
  std::string nodes =
      R"(,"from":")" + std::string(40, '0') + R"(","to":")" + std::string(40, '1') + "\"";
  auto bare = req(nodes);
  ASSERT_TRUE(bare.ok()) << bare.error().message();
  EXPECT_TRUE(bare->get.empty() && bare->remove.empty() && bare->exec.empty());
  EXPECT_FALSE(req(R"(,"from":"x")").ok());
  EXPECT_FALSE(req(nodes + R"(,"get":"a")").ok());
  EXPECT_FALSE(req(nodes + R"(,"remove":[1])").ok());
  EXPECT_FALSE(req(nodes + R"(,"exec":["\u0100"])").ok());
  EXPECT_FALSE(decodeCheckoutReply(R"({"version":1,"ok":true,"applied":-1,"left":[]})").ok());
}

TEST(ProtocolTest, BadFilesAndRevisionDiffMessagesAreClearErrors) {
  auto request = [](const std::string& body) -> Result<FilesRequest> {
    HG_ASSIGN_OR_RETURN(json j, parseMessage(R"({"version":1,"op":"files")" + body + "}", "t"));
    return decodeFilesRequest(j);
  };
  std::string node = R"(,"node":")" + std::string(40, 'a') + "\"";
  for (const auto& [body, why] : std::vector<std::pair<std::string, std::string>>{
           {"", "'node' is missing"},
           {R"(,"node":"abc")", "'node' is not 40 hex digits"},
           {R"(,"node":")" + std::string(40, 'g') + "\"", "'node' is not 40 hex digits"},
           {R"(,"node":12)", "'node' is missing or not a string"},
           {node + R"(,"paths":"a")", "'paths' is not a list"},
           {node + R"(,"paths":[1])", "'paths' holds a non-string"},
           {node + R"(,"paths":["\u0100"])", "above U+00FF"},
           {node + R"(,"dirs":["a"])", "'dirs' holds something other"},
           {node + R"(,"dirs":[{"dir":"a","except":"b"}])", "'except' is not a list"},
       }) {
    auto r = request(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().kind, ErrorKind::kCorrupt) << body;
    EXPECT_NE(r.error().what.find(why), std::string::npos) << body << ": " << r.error().what;
  }
  auto diff = parseMessage(
      R"({"version":1,"op":"revision-diff","from":")" + std::string(40, '0') + "\"}", "t");
  ASSERT_TRUE(diff.ok());
  auto missing = decodeRevisionDiffRequest(*diff);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().what.find("'to'"), std::string::npos) << missing.error().what;

  EXPECT_FALSE(decodeFilesReply(R"({"version":1,"ok":true,"kinds":["y"]})").ok());
  EXPECT_FALSE(decodeFilesReply(R"({"version":1,"ok":true,"kinds":[1]})").ok());
  EXPECT_FALSE(decodeFilesReply(R"({"version":1,"ok":true,"dirs":[1]})").ok());
  EXPECT_FALSE(decodeFilesReply(R"({"version":1,"ok":"yes"})").ok());
  EXPECT_FALSE(decodeRevisionDiffReply(R"({"version":1,"ok":true,"only_to":[1]})").ok());
  auto daemonError = decodeRevisionDiffReply(encodeError("unknown revision 'x'"));
  ASSERT_FALSE(daemonError.ok());
  EXPECT_EQ(daemonError.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(daemonError.error().what, "unknown revision 'x'");
}

class StubHandler : public Handler {
 public:
  Result<StatusReply> status(const StatusRequest& request) override {
    ++calls;
    {
      MutexLock lock(mu);
      last = request;
    }
    if (request.rev && *request.rev == "fail") return notFound("unknown revision 'fail'");
    StatusReply reply;
    reply.p1 = std::string(40, '0');
    reply.modified = {"m"};
    if (request.unknown) reply.unknown = {"u"};
    return reply;
  }
  Result<FilesReply> files(const FilesRequest& request) override {
    ++calls;
    {
      MutexLock lock(mu);
      lastFiles = request;
    }
    if (request.node == std::string(40, 'f')) {
      return notFound("unknown revision '" + request.node + "'");
    }
    FilesReply reply;
    for (const auto& p : request.paths) {
      reply.kinds.push_back(p == "x" ? FileKind::kExecutable : FileKind::kAbsent);
    }
    for (const auto& d : request.dirs) reply.dirs.push_back(d.except.empty());
    return reply;
  }
  Result<RevisionDiffReply> revisionDiff(const RevisionDiffRequest& request) override {
    ++calls;
    RevisionDiffReply reply;
    reply.onlyFrom = {Bytes(request.from.substr(0, 2))};
    reply.onlyTo = {Bytes(request.to.substr(0, 2))};
    return reply;
  }
  std::atomic<int> calls{0};
  // Connections are served on several threads at once.
  Mutex mu;
  StatusRequest last GUARDED_BY(mu);
  FilesRequest lastFiles GUARDED_BY(mu);
  StatusRequest lastStatus() EXCLUDES(mu) {
    MutexLock lock(mu);
    return last;
  }
  FilesRequest lastFilesRequest() EXCLUDES(mu) {
    MutexLock lock(mu);
    return lastFiles;
  }
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
  EXPECT_EQ(handler_.lastStatus().clean, true);
  EXPECT_EQ(handler_.lastStatus().rev.value_or(""), "tip");
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

// A line over the limit gets an error reply, its rest is skipped (even when
// it comes in many reads), and the next request on the same connection is
// answered.
TEST(ServerLimitTest, AnOverlongRequestIsRefusedAndTheConnectionGoesOn) {
  test::TempDir tmp;
  StubHandler handler;
  std::string path = socketPath(tmp.path());
  Server server(handler, path, 1000);
  ASSERT_TRUE(server.start().ok());
  auto client = Client::connect(path);
  ASSERT_TRUE(client.ok());
  std::string big = R"({"version": 1, "op": "hello", "pad": ")" + std::string(300000, 'x') + "\"}";
  auto refused = client->roundTrip(big);
  ASSERT_TRUE(refused.ok()) << refused.error().message();
  json r = json::parse(*refused);
  EXPECT_EQ(r["ok"], false);
  EXPECT_NE(r["error"].get<std::string>().find("request too long"), std::string::npos) << *refused;
  for (int i = 0; i < 3; ++i) {
    auto hello = client->roundTrip(R"({"version": 1, "op": "hello"})");
    ASSERT_TRUE(hello.ok()) << hello.error().message();
    EXPECT_EQ(json::parse(*hello)["ok"], true) << *hello;
  }
  auto small = client->roundTrip(R"({"version": 1, "op": "hello", "pad": ")" +
                                 std::string(900, 'y') + "\"}");
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(json::parse(*small)["ok"], true) << *small;
}

TEST(ServerWorkerTest, WorkersServeOneConnectionAfterAnotherAndIdleOnesEnd) {
  test::TempDir tmp;
  StubHandler handler;
  std::string path = socketPath(tmp.path());
  Server server(handler, path, Server::kMaxRequest, std::chrono::milliseconds(200));
  ASSERT_TRUE(server.start().ok());
  // One client after another: a worker or two serve them all (the next
  // client may come before the last one's worker has seen it hang up).
  for (int i = 0; i < 50; ++i) {
    auto client = Client::connect(path);
    ASSERT_TRUE(client.ok());
    ASSERT_TRUE(client->status({}).ok()) << i;
  }
  size_t sequential = server.connectionThreads();
  EXPECT_LE(sequential, Server::kKeepIdle);
  // Twenty at once: a worker each.
  std::vector<Client> open;
  for (int i = 0; i < 20; ++i) {
    auto client = Client::connect(path);
    ASSERT_TRUE(client.ok());
    ASSERT_TRUE(client->status({}).ok()) << i;
    open.push_back(std::move(client).value());
  }
  EXPECT_GE(server.connectionThreads(), 20u);
  EXPECT_LE(server.connectionThreads(), 20u + sequential);
  open.clear();
  // Idle past their life, all but kKeepIdle end; the next accept joins them.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  size_t threads = 0;
  for (int i = 0; i < 100; ++i) {
    auto client = Client::connect(path);
    ASSERT_TRUE(client.ok());
    ASSERT_TRUE(client->status({}).ok());
    threads = server.connectionThreads();
    if (threads <= Server::kKeepIdle) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_LE(threads, Server::kKeepIdle);
  EXPECT_GE(threads, 1u);
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

// A client that connects once per request, thousands of times (the
// extension's dirstate map did), must not pile up threads: ended
// connections are joined, and past kMaxConnections live ones a connection
// gets an error reply instead of a thread.
TEST_F(ServerTest, ShortConnectionsDoNotPileUpThreads) {
  for (int i = 0; i < 3000; ++i) {
    auto client = Client::connect(path_);
    ASSERT_TRUE(client.ok()) << i << ": " << client.error().message();
    ASSERT_TRUE(client->status({}).ok()) << i;
  }
  // Workers are reused: one client after another needs a worker or two (a
  // few more on a loaded machine, when the next client comes before the
  // last one's worker has seen it hang up). Without reuse there would be
  // 3,000 threads.
  EXPECT_LE(server_->connectionThreads(), 2 * Server::kKeepIdle);
  std::vector<Client> idle;
  for (size_t i = 0; i < Server::kMaxConnections; ++i) {
    auto client = Client::connect(path_);
    ASSERT_TRUE(client.ok());
    ASSERT_TRUE(client->status({}).ok());  // served: its thread is live
    idle.push_back(std::move(client).value());
  }
  auto refused = Client::connect(path_);
  ASSERT_TRUE(refused.ok());
  auto reply = refused->status({});
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(reply.error().what.find("too many connections"), std::string::npos)
      << reply.error().what;
  idle.clear();
  // Their threads end as the server sees the hang-ups; then a new client
  // is served again.
  bool served = false;
  for (int i = 0; i < 500 && !served; ++i) {
    auto later = Client::connect(path_);
    ASSERT_TRUE(later.ok());
    served = later->status({}).ok();
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(served);
}

TEST(ClientTest, NothingListeningIsAClearError) {
  test::TempDir tmp;
  auto client = Client::connect(tmp.path() + "/socket");
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().kind, ErrorKind::kIo);
  EXPECT_NE(client.error().message().find("cannot reach the daemon"), std::string::npos);
}

TEST_F(ServerTest, AnswersFilesAndRevisionDiff) {
  std::string node = std::string(40, 'a');
  json files = json::parse(server_->handle(
      R"({"version":1,"op":"files","node":")" + node +
      R"(","paths":["x","y"],"dirs":[{"dir":"d","except":[]},{"dir":"","except":["z"]}]})"));
  EXPECT_EQ(files["ok"], true) << files.dump();
  EXPECT_EQ(files["kinds"], json::parse(R"(["x", null])"));
  EXPECT_EQ(files["dirs"], json::parse("[true, false]"));
  EXPECT_TRUE(files["micros"].is_number_integer());
  EXPECT_EQ(handler_.lastFilesRequest().node, node);

  json unknown = json::parse(
      server_->handle(R"({"version":1,"op":"files","node":")" + std::string(40, 'f') + "\"}"));
  EXPECT_EQ(unknown["ok"], false);
  EXPECT_NE(unknown["error"].get<std::string>().find(std::string(40, 'f')), std::string::npos)
      << unknown.dump();

  json bad = json::parse(server_->handle(R"({"version":1,"op":"files","node":"tip"})"));
  EXPECT_EQ(bad["ok"], false);
  EXPECT_NE(bad["error"].get<std::string>().find("malformed request"), std::string::npos);

  json diff = json::parse(server_->handle(R"({"version":1,"op":"revision-diff","from":")" +
                                          std::string(40, '1') + R"(","to":")" +
                                          std::string(40, '2') + "\"}"));
  EXPECT_EQ(diff["ok"], true) << diff.dump();
  EXPECT_EQ(diff["only_from"], json::parse(R"(["11"])"));
  EXPECT_EQ(diff["only_to"], json::parse(R"(["22"])"));
  // Through a real connection as well.
  auto client = Client::connect(path_);
  ASSERT_TRUE(client.ok()) << client.error().message();
  FilesRequest request{node, {"x"}, {}};
  auto line = client->roundTrip(encodeFilesRequest(request));
  ASSERT_TRUE(line.ok()) << line.error().message();
  auto reply = decodeFilesReply(*line);
  ASSERT_TRUE(reply.ok()) << reply.error().message();
  EXPECT_EQ(reply->kinds, std::vector<FileKind>{FileKind::kExecutable});
}

}  // namespace
}  // namespace hgvfs::control

namespace hgvfs::control {
namespace {

class StatsHandler : public StubHandler {
 public:
  Result<StatsReply> stats(const StatsRequest&) override {
    StatsReply reply;
    reply.stats = json{{"inodes", {{"files", 3}}}};
    return reply;
  }
};

TEST(ServerStatsTest, StatsCarryTheHandlersNumbersAndTheCallTimes) {
  StatsHandler handler;
  Server server(handler, "/nonexistent/socket");  // handle() needs no socket
  std::string status = server.handle(R"({"version":1,"op":"status"})");
  ASSERT_EQ(json::parse(status)["ok"], true) << status;
  std::string line = server.handle(encodeStatsRequest({}));
  auto reply = decodeStatsReply(line);
  ASSERT_TRUE(reply.ok()) << line;
  EXPECT_EQ(reply->stats["inodes"]["files"], 3);
  EXPECT_EQ(reply->stats["calls"]["status"]["count"], 1) << line;
  EXPECT_EQ(reply->stats["calls"]["checkout"]["count"], 0) << line;
}

TEST(ServerStatsTest, AHandlerWithoutStatsAnswersAnError) {
  StubHandler handler;
  Server server(handler, "/nonexistent/socket");
  auto reply = decodeStatsReply(server.handle(encodeStatsRequest({})));
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(reply.error().message().find("stats is not supported"), std::string::npos);
}

}  // namespace
}  // namespace hgvfs::control
