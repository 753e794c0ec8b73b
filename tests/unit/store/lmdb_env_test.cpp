// LmdbEnv (store/lmdb_env.h): reads and writes from many threads, a map
// that starts tiny and must grow under load, and two environments on one
// directory in two processes — as two mounts of one repository are — that
// see each other's writes, including after the other one grew the map.
//
// LMDB forbids opening one environment twice in the same process (its
// fcntl locks are per process), so the second "mount" is a forked child.

#include "store/lmdb_env.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/test_support.h"

namespace hgvfs::store {
namespace {

using test::TempDir;

const std::vector<std::string> kNames = {"first", "second"};

std::unique_ptr<LmdbEnv> openEnv(const std::string& dir, size_t mapSize = size_t{1} << 30) {
  LmdbEnv::Options options;
  options.initialMapSize = mapSize;
  auto env = LmdbEnv::open(dir, kNames, options);
  EXPECT_TRUE(env.ok()) << env.error().message();
  return env.ok() ? std::move(env).value() : nullptr;
}

Status putOne(LmdbEnv& env, size_t db, const std::string& key, const std::string& value,
              bool overwrite = true) {
  return env.write(
      [&](MDB_txn* txn) { return LmdbEnv::put(txn, env.dbi(db), key, value, overwrite); });
}

std::string getOne(LmdbEnv& env, size_t db, const std::string& key) {
  auto v = env.get(env.dbi(db), key);
  if (!v.ok()) return "<error: " + v.error().message() + ">";
  return *v ? **v : "<absent>";
}

// A value that differs per key, so a read of the wrong record shows.
std::string valueFor(const std::string& key, size_t size) {
  std::string v;
  v.reserve(size);
  std::mt19937 rng(static_cast<unsigned>(std::hash<std::string>()(key)));
  while (v.size() < size) v.push_back(static_cast<char>('a' + rng() % 26));
  return v;
}

// Runs `body` in a forked child and returns its exit code (0 = success).
int inChild(const std::function<int()>& body) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(LmdbEnvTest, OpenCreatesTheDirectoryAndNamedDatabases) {
  TempDir tmp;
  std::string dir = tmp.path() + "/repos/key/cache";
  auto env = openEnv(dir);
  ASSERT_TRUE(env);
  EXPECT_EQ(env->path(), dir);
  EXPECT_TRUE(std::filesystem::exists(dir + "/data.mdb"));
  EXPECT_NE(env->dbi(0), env->dbi(1));
  ASSERT_TRUE(putOne(*env, 0, "k", "in first").ok());
  EXPECT_EQ(getOne(*env, 0, "k"), "in first");
  EXPECT_EQ(getOne(*env, 1, "k"), "<absent>") << "databases are separate";
}

TEST(LmdbEnvTest, PutGetDelete) {
  TempDir tmp;
  auto env = openEnv(tmp.path());
  ASSERT_TRUE(env);
  std::string binaryKey("\0\xff\x01", 3);
  ASSERT_TRUE(putOne(*env, 0, binaryKey, std::string("v\0v", 3)).ok());
  EXPECT_EQ(getOne(*env, 0, binaryKey), std::string("v\0v", 3));
  ASSERT_TRUE(putOne(*env, 0, "empty", "").ok());
  EXPECT_EQ(getOne(*env, 0, "empty"), "") << "an empty value is present, not absent";
  // Without overwrite the first value stays (and it is not an error).
  ASSERT_TRUE(putOne(*env, 0, "once", "first", false).ok());
  ASSERT_TRUE(putOne(*env, 0, "once", "second", false).ok());
  EXPECT_EQ(getOne(*env, 0, "once"), "first");
  ASSERT_TRUE(putOne(*env, 0, "once", "third", true).ok());
  EXPECT_EQ(getOne(*env, 0, "once"), "third");
  ASSERT_TRUE(
      env->write([&](MDB_txn* txn) { return LmdbEnv::del(txn, env->dbi(0), "once"); }).ok());
  EXPECT_EQ(getOne(*env, 0, "once"), "<absent>");
  // Deleting what is not there is fine.
  EXPECT_TRUE(
      env->write([&](MDB_txn* txn) { return LmdbEnv::del(txn, env->dbi(0), "none"); }).ok());
}

TEST(LmdbEnvTest, FailedWriteIsRolledBack) {
  TempDir tmp;
  auto env = openEnv(tmp.path());
  ASSERT_TRUE(env);
  Status st = env->write([&](MDB_txn* txn) -> Status {
    HG_RETURN_IF_ERROR(LmdbEnv::put(txn, env->dbi(0), "a", "1"));
    return corrupt("the caller gave up");
  });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kCorrupt);
  EXPECT_EQ(getOne(*env, 0, "a"), "<absent>");
}

TEST(LmdbEnvTest, DataSurvivesReopening) {
  TempDir tmp;
  {
    auto env = openEnv(tmp.path());
    ASSERT_TRUE(env);
    ASSERT_TRUE(putOne(*env, 1, "k", "v").ok());
  }
  auto env = openEnv(tmp.path());
  ASSERT_TRUE(env);
  EXPECT_EQ(getOne(*env, 1, "k"), "v");
}

TEST(LmdbEnvTest, ManyThreadsReadAndWrite) {
  TempDir tmp;
  auto env = openEnv(tmp.path());
  ASSERT_TRUE(env);
  constexpr int kWriters = 4, kReaders = 4, kPerWriter = 300;
  std::atomic<bool> failed{false}, wrongValue{false}, writersDone{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kPerWriter; ++i) {
        std::string key = "w" + std::to_string(w) + "-" + std::to_string(i);
        if (!putOne(*env, static_cast<size_t>(i % 2), key, valueFor(key, 100 + i)).ok()) {
          failed = true;
        }
      }
    });
  }
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      std::mt19937 rng(static_cast<unsigned>(r));
      while (!writersDone) {
        int i = static_cast<int>(rng() % kPerWriter);
        std::string key = "w" + std::to_string(rng() % kWriters) + "-" + std::to_string(i);
        auto v = env->get(env->dbi(static_cast<size_t>(i % 2)), key);
        if (!v.ok()) {
          failed = true;
        } else if (*v && **v != valueFor(key, 100 + i)) {
          wrongValue = true;
        }
      }
    });
  }
  for (int w = 0; w < kWriters; ++w) threads[static_cast<size_t>(w)].join();
  writersDone = true;
  for (size_t t = kWriters; t < threads.size(); ++t) threads[t].join();
  EXPECT_FALSE(failed);
  EXPECT_FALSE(wrongValue);
  for (int w = 0; w < kWriters; ++w) {
    for (int i = 0; i < kPerWriter; ++i) {
      std::string key = "w" + std::to_string(w) + "-" + std::to_string(i);
      ASSERT_EQ(getOne(*env, static_cast<size_t>(i % 2), key), valueFor(key, 100 + i)) << key;
    }
  }
}

// A 64 KiB map must grow to hold several MB: in one big transaction, in many
// small ones from several threads while others read, and for one value
// larger than the whole map.
TEST(LmdbEnvTest, TinyMapGrows) {
  TempDir tmp;
  constexpr size_t kTiny = 64 << 10;
  auto env = openEnv(tmp.path(), kTiny);
  ASSERT_TRUE(env);
  size_t start = env->mapSize();
  EXPECT_LT(start, size_t{1} << 20);

  // One transaction of 4 MiB.
  Status big = env->write([&](MDB_txn* txn) -> Status {
    for (int i = 0; i < 256; ++i) {
      std::string key = "big" + std::to_string(i);
      HG_RETURN_IF_ERROR(LmdbEnv::put(txn, env->dbi(0), key, valueFor(key, 16 << 10)));
    }
    return okStatus();
  });
  ASSERT_TRUE(big.ok()) << big.error().message();
  EXPECT_GT(env->mapSize(), size_t{4} << 20);

  // One value larger than the map was before.
  std::string huge = valueFor("huge", size_t{8} << 20);
  ASSERT_TRUE(putOne(*env, 1, "huge", huge).ok());

  // Many small transactions from 4 threads, with readers running.
  std::atomic<bool> failed{false}, stop{false};
  std::vector<std::thread> writers, readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!stop) {
        if (getOne(*env, 0, "big7") != valueFor("big7", 16 << 10)) failed = true;
      }
    });
  }
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 64; ++i) {
        std::string key = "t" + std::to_string(w) + "-" + std::to_string(i);
        if (!putOne(*env, 0, key, valueFor(key, 20000)).ok()) failed = true;
      }
    });
  }
  for (auto& t : writers) t.join();
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_FALSE(failed);
  EXPECT_GT(env->mapSize(), size_t{16} << 20);

  auto checkAll = [&](LmdbEnv& e) {
    for (int i = 0; i < 256; ++i) {
      std::string key = "big" + std::to_string(i);
      ASSERT_EQ(getOne(e, 0, key), valueFor(key, 16 << 10)) << key;
    }
    for (int w = 0; w < 4; ++w) {
      for (int i = 0; i < 64; ++i) {
        std::string key = "t" + std::to_string(w) + "-" + std::to_string(i);
        ASSERT_EQ(getOne(e, 0, key), valueFor(key, 20000)) << key;
      }
    }
    ASSERT_EQ(getOne(e, 1, "huge"), huge);
  };
  checkAll(*env);
  // Reopened with the tiny size asked again, it adopts the grown map.
  env.reset();
  auto again = openEnv(tmp.path(), kTiny);
  ASSERT_TRUE(again);
  EXPECT_GT(again->mapSize(), size_t{16} << 20);
  checkAll(*again);
}

// Two environments on one directory, in two processes (two mounts of the
// same repository): each sees what the other committed, also when the other
// grew the map past the size this one has mapped.
TEST(LmdbEnvTest, TwoProcessesShareOneEnvironment) {
  TempDir tmp;
  constexpr size_t kTiny = 64 << 10;
  auto env = openEnv(tmp.path(), kTiny);
  ASSERT_TRUE(env);
  ASSERT_TRUE(putOne(*env, 0, "from-parent-1", "p1").ok());
  size_t parentMap = env->mapSize();

  int rc = inChild([&] {
    LmdbEnv::Options options;
    options.initialMapSize = kTiny;
    auto child = LmdbEnv::open(tmp.path(), kNames, options);
    if (!child.ok()) return 10;
    if (getOne(**child, 0, "from-parent-1") != "p1") return 11;
    // 6 MiB: far past the parent's map.
    for (int i = 0; i < 96; ++i) {
      std::string key = "filler" + std::to_string(i);
      if (!putOne(**child, 1, key, valueFor(key, 64 << 10)).ok()) return 12;
    }
    if (!putOne(**child, 0, "from-child", "c1").ok()) return 13;
    return 0;
  });
  ASSERT_EQ(rc, 0) << "child failed at step " << rc;

  // The parent still has its small map; reads must adopt the grown one.
  EXPECT_EQ(getOne(*env, 0, "from-child"), "c1");
  for (int i = 0; i < 96; i += 7) {
    std::string key = "filler" + std::to_string(i);
    ASSERT_EQ(getOne(*env, 1, key), valueFor(key, 64 << 10)) << key;
  }
  EXPECT_GT(env->mapSize(), parentMap);
  // And the parent writes on top of it, growing further.
  for (int i = 0; i < 48; ++i) {
    std::string key = "parent-filler" + std::to_string(i);
    ASSERT_TRUE(putOne(*env, 1, key, valueFor(key, 64 << 10)).ok()) << key;
  }
  ASSERT_TRUE(putOne(*env, 0, "from-parent-2", "p2").ok());

  rc = inChild([&] {
    auto child = LmdbEnv::open(tmp.path(), kNames);
    if (!child.ok()) return 20;
    if (getOne(**child, 0, "from-parent-2") != "p2") return 21;
    if (getOne(**child, 0, "from-child") != "c1") return 22;
    std::string key = "parent-filler47";
    if (getOne(**child, 1, key) != valueFor(key, 64 << 10)) return 23;
    return 0;
  });
  EXPECT_EQ(rc, 0) << "second child failed at step " << rc;
}

TEST(LmdbEnvTest, GarbageDataFileIsAnErrorNotACrash) {
  TempDir tmp;
  std::string garbage(16384, '\0');
  std::mt19937 rng(7);
  for (auto& c : garbage) c = static_cast<char>(rng());
  test::writeFile(tmp.path() + "/data.mdb", garbage);
  auto env = LmdbEnv::open(tmp.path(), kNames);
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(env.error().kind, ErrorKind::kCorrupt) << env.error().message();
  EXPECT_NE(env.error().message().find(tmp.path()), std::string::npos) << env.error().message();
}

TEST(LmdbEnvTest, DirectoryThatIsAFileIsAnIoError) {
  TempDir tmp;
  test::writeFile(tmp.path() + "/file", "x");
  auto env = LmdbEnv::open(tmp.path() + "/file", kNames);
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(env.error().kind, ErrorKind::kIo) << env.error().message();
  auto below = LmdbEnv::open(tmp.path() + "/file/below", kNames);
  ASSERT_FALSE(below.ok());
  EXPECT_EQ(below.error().kind, ErrorKind::kIo) << below.error().message();
}

}  // namespace
}  // namespace hgvfs::store
