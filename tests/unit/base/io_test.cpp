// base/io.h: whole reads and writes, and the atomic replace.

#include "base/io.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/test_support.h"

namespace hgvfs {
namespace {

TEST(IoTest, WritesAndReadsWholeFiles) {
  test::TempDir tmp;
  std::string path = tmp.path() + "/f";
  Bytes big(3 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + (i >> 11));
  ASSERT_TRUE(writeFileAtomically(path, big, 0600).ok());
  auto back = readFile(path);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, big);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_NE(::access((path + ".tmp").c_str(), F_OK), 0);  // no temporary left

  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(pwriteFull(fd, "XYZ", 10).ok());
  char buf[8];
  auto n = preadFull(fd, buf, sizeof buf, 8);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, sizeof buf);
  EXPECT_EQ(Bytes(buf + 2, 3), "XYZ");
  auto tail = preadFull(fd, buf, sizeof buf, static_cast<off_t>(big.size()) - 3);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(*tail, 3u);  // short only at the end of the file
  ::close(fd);
}

TEST(IoTest, ErrorsNameThePathAndErrno) {
  auto missing = readFile("/nonexistent/dir/file");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::kIo);
  EXPECT_EQ(missing.error().err, ENOENT);
  EXPECT_NE(missing.error().message().find("/nonexistent/dir/file"), std::string::npos);
  auto unwritable = writeFileAtomically("/nonexistent/dir/file", "x");
  ASSERT_FALSE(unwritable.ok());
  EXPECT_EQ(unwritable.error().err, ENOENT);
}

TEST(IoTest, WriteFullReportsAClosedPipe) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ASSERT_TRUE(writeFull(fds[1], "hello").ok());
  char buf[5];
  ASSERT_EQ(::read(fds[0], buf, 5), 5);
  ::close(fds[0]);
  signal(SIGPIPE, SIG_IGN);
  auto r = writeFull(fds[1], "again");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().err, EPIPE);
  ::close(fds[1]);
}

}  // namespace
}  // namespace hgvfs
