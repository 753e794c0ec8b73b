// Revlog reading on hand-built revlogs: the cases a repository made by hg
// cannot produce (hostile chunk headers), built in memory byte by byte.

#include "hgbridge/revlog.h"

#include <gtest/gtest.h>

#include <string>

namespace hgvfs::hg {
namespace {

void putBe32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((v >> shift) & 0xFF));
}

// One inline revision whose chunk is `chunk`, claiming `textLength`.
std::string inlineRevlog(const std::string& chunk, int32_t textLength) {
  std::string index;
  putBe32(index, kRevlogV1 | kFlagInlineData | kFlagGeneralDelta);  // header over offset
  putBe32(index, 0);                                                // offset low + flags
  putBe32(index, static_cast<uint32_t>(chunk.size()));
  putBe32(index, static_cast<uint32_t>(textLength));
  putBe32(index, 0);           // base
  putBe32(index, 0);           // link
  putBe32(index, 0xFFFFFFFF);  // p1
  putBe32(index, 0xFFFFFFFF);  // p2
  index.append(32, '\x11');    // node + padding
  return index + chunk;
}

TEST(RevlogTest, ZstdFrameClaimingAHugeSizeIsCorruptWithoutAllocatingIt) {
  // A zstd frame: magic, descriptor (8-byte content size, single segment),
  // content size 3,000,000,000, then one raw last block of one byte.
  std::string frame("\x28\xb5\x2f\xfd\xe0", 5);
  uint64_t claimed = 3000000000ULL;
  for (int i = 0; i < 8; ++i) frame.push_back(static_cast<char>((claimed >> (8 * i)) & 0xFF));
  frame += std::string(
      "\x09\x00\x00"
      "a",
      4);
  auto revlog = Revlog::fromBytes(inlineRevlog(frame, 1), {}, "hostile.i");
  ASSERT_TRUE(revlog.ok()) << revlog.error().message();
  auto chunk = (*revlog)->chunk(Revision(0));
  ASSERT_FALSE(chunk.ok());
  EXPECT_EQ(chunk.error().kind, ErrorKind::kCorrupt);
  EXPECT_NE(chunk.error().message().find("hostile.i revision 0"), std::string::npos);
  auto text = (*revlog)->rawText(Revision(0));
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().kind, ErrorKind::kCorrupt);
}

TEST(RevlogTest, StoredChunksAndNodeCheck) {
  std::string content = "hello\n";
  // 'u' drops its marker byte; the node check then fails (node is 0x11...).
  auto revlog = Revlog::fromBytes(inlineRevlog("u" + content, 6), {}, "plain.i");
  ASSERT_TRUE(revlog.ok());
  auto chunk = (*revlog)->chunk(Revision(0));
  ASSERT_TRUE(chunk.ok());
  EXPECT_EQ(*chunk, content);
  auto checked = (*revlog)->rawText(Revision(0));
  ASSERT_FALSE(checked.ok());
  EXPECT_EQ(checked.error().kind, ErrorKind::kCorrupt);
  EXPECT_NE(checked.error().what.find("integrity"), std::string::npos);
  auto unchecked = (*revlog)->rawText(Revision(0), VerifyHash::kNo);
  ASSERT_TRUE(unchecked.ok());
  EXPECT_EQ(*unchecked, content);
}

TEST(RevlogTest, UnknownChunkHeaderIsUnsupported) {
  auto revlog = Revlog::fromBytes(inlineRevlog("Zabc", 3), {}, "odd.i");
  ASSERT_TRUE(revlog.ok());
  auto chunk = (*revlog)->chunk(Revision(0));
  ASSERT_FALSE(chunk.ok());
  EXPECT_EQ(chunk.error().kind, ErrorKind::kUnsupported);
}

TEST(RevlogTest, TruncatedInlineDataIsCorrupt) {
  std::string bytes = inlineRevlog("uhello", 5);
  bytes.resize(bytes.size() - 2);
  auto revlog = Revlog::fromBytes(bytes, {}, "cut.i");
  ASSERT_FALSE(revlog.ok());
  EXPECT_EQ(revlog.error().kind, ErrorKind::kCorrupt);
}

}  // namespace
}  // namespace hgvfs::hg
