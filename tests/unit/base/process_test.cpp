// base/process.h: running a program and collecting what it says.

#include "base/process.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "tests/support/test_support.h"

namespace hgvfs {
namespace {

TEST(ProcessTest, CapturesBothStreamsAndTheExitCode) {
  auto r = runProcess({"sh", "-c", "printf 'out\\0put'; printf err >&2; exit 3"});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->out, std::string("out\0put", 7));
  EXPECT_EQ(r->err, "err");
  EXPECT_EQ(r->exitCode, 3);
}

TEST(ProcessTest, ASignalIs128PlusItsNumber) {
  auto r = runProcess({"sh", "-c", "kill -TERM $$"});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->exitCode, 128 + 15);
}

// More than a pipe holds on both streams: neither may stall the child.
TEST(ProcessTest, LargeOutputOnBothStreams) {
  auto r = runProcess({"sh", "-c", "head -c 1000000 /dev/zero; head -c 300000 /dev/zero >&2"});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->out.size(), 1000000u);
  EXPECT_EQ(r->err.size(), 300000u);
}

TEST(ProcessTest, RunsInTheGivenDirectory) {
  test::TempDir tmp;
  auto r = runProcess({"pwd"}, {}, tmp.path());
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->out, tmp.path() + "\n");
  auto missing = runProcess({"pwd"}, {}, tmp.path() + "/absent");
  EXPECT_FALSE(missing.ok()) << "a directory that does not exist is an error, not another cwd";
}

TEST(ProcessTest, ExtraEnvironmentReplacesAVariable) {
  setenv("HGVFS_PROCESS_TEST", "outer", 1);
  auto r =
      runProcess({"sh", "-c", "env | grep '^HGVFS_PROCESS_TEST='"}, {"HGVFS_PROCESS_TEST=inner"});
  unsetenv("HGVFS_PROCESS_TEST");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->out, "HGVFS_PROCESS_TEST=inner\n") << "set once, to the extra value";
}

TEST(ProcessTest, AProgramThatCannotStartIsAnError) {
  auto r = runProcess({"hgvfs-no-such-program"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("hgvfs-no-such-program"), std::string::npos);
  EXPECT_FALSE(runProcess({}).ok());
}

// Children started while other threads allocate all finish: a child made
// by fork that allocated before exec could block on an allocator lock
// another thread held at the fork.
TEST(ProcessTest, SpawnsWhileOtherThreadsAllocate) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> allocators;
  for (int t = 0; t < 2; ++t) {
    allocators.emplace_back([&stop] {
      while (!stop.load(std::memory_order_relaxed)) {
        std::vector<std::unique_ptr<char[]>> blocks;
        for (int i = 0; i < 64; ++i) blocks.emplace_back(new char[(i % 7 + 1) * 512]);
      }
    });
  }
  int ok = 0;
  for (int i = 0; i < 100; ++i) {
    auto r = runProcess({"true"});
    ok += r.ok() && r->exitCode == 0;
  }
  stop = true;
  for (auto& t : allocators) t.join();
  EXPECT_EQ(ok, 100);
}

}  // namespace
}  // namespace hgvfs
