// base/mountinfo.h: parsing mountinfo lines (escapes, optional fields,
// malformed lines) and finding the mounts of this process.

#include "base/mountinfo.h"

#include <gtest/gtest.h>

namespace hgvfs {
namespace {

TEST(MountInfoTest, ParsesFieldsAndOptionalTags) {
  auto m = parseMountInfoLine(
      "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 shared:7 - ext3 /dev/root "
      "rw,errors=continue");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->mountPoint, "/mnt/parent");
  EXPECT_EQ(m->fsType, "ext3");
  EXPECT_EQ(m->source, "/dev/root");
  auto plain = parseMountInfoLine("1 2 0:5 / /w rw - fuse.hgvfs hgvfs rw,user_id=0");
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->fsType, "fuse.hgvfs");
  EXPECT_EQ(plain->source, "hgvfs");
  auto named = parseMountInfoLine(R"(1 2 0:5 / /w rw - fuse.hgvfs hgvfs:/h\040x/c rw)");
  ASSERT_TRUE(named.has_value());
  EXPECT_EQ(named->source, "hgvfs:/h x/c");
}

TEST(MountInfoTest, DecodesOctalEscapesOnly) {
  auto m = parseMountInfoLine(R"(1 2 0:5 / /a\040b\011c\012d\134e\777f\04 rw - tmpfs x rw)");
  ASSERT_TRUE(m.has_value());
  // \777 is not a byte and a trailing \04 is cut short: both stay as written.
  EXPECT_EQ(m->mountPoint, std::string("/a b\tc\nd\\e\\777f\\04"));
}

TEST(MountInfoTest, MalformedLinesAreSkipped) {
  EXPECT_FALSE(parseMountInfoLine("").has_value());
  EXPECT_FALSE(parseMountInfoLine("1 2 3").has_value());
  EXPECT_FALSE(parseMountInfoLine("1 2 0:5 / /x rw shared:1 ext4").has_value());  // no "-"
  EXPECT_FALSE(parseMountInfoLine("1 2 0:5 / /x rw -").has_value());              // no type
}

TEST(MountInfoTest, FindsTheRootAndInnermostMounts) {
  auto types = mountTypesAt("/");
  ASSERT_FALSE(types.empty());
  EXPECT_EQ(mountTypeAt("/"), types.back());
  EXPECT_EQ(innermostMountOf("/proc/self", "proc"), "/proc");
  EXPECT_EQ(innermostMountOf("/proc", "proc"), "/proc");
  EXPECT_EQ(innermostMountOf("/procfoo", "proc"), "");
  EXPECT_EQ(innermostMountOf("/", "no-such-type"), "");
}

}  // namespace
}  // namespace hgvfs
