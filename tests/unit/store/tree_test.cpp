// Tree (store/tree.h): the serialized form is pinned byte for byte, every
// valid tree round-trips, and every damaged form — truncated anywhere, an
// unknown version or kind, unsorted or duplicate names, an invalid name,
// trailing bytes — is a kCorrupt error, never a crash or a half-read tree.

#include "store/tree.h"

#include <gtest/gtest.h>

#include <climits>
#include <random>
#include <string>
#include <vector>

#include "hgbridge/sha1.h"

namespace hgvfs::store {
namespace {

hg::Node nodeOf(char fill) {
  char raw[hg::Node::kSize];
  for (size_t i = 0; i < sizeof raw; ++i) raw[i] = static_cast<char>(fill + i);
  return hg::Node::fromRaw(raw);
}

Tree sampleTree() {
  return Tree({
      {"Makefile", EntryKind::kRegular, nodeOf(1)},
      {"a", EntryKind::kDirectory, nodeOf(2)},
      {"a.txt", EntryKind::kRegular, nodeOf(3)},
      {"link", EntryKind::kSymlink, nodeOf(4)},
      {"run.sh", EntryKind::kExecutable, nodeOf(5)},
      {std::string(NAME_MAX, 'z'), EntryKind::kRegular, nodeOf(7)},
      // Not UTF-8; bytes sort unsigned, so after 'z'.
      {std::string("\xc3\xa9t\xe9\xff", 5), EntryKind::kRegular, nodeOf(6)},
  });
}

void expectSameEntries(const Tree& a, const Tree& b) {
  ASSERT_EQ(a.entries().size(), b.entries().size());
  for (size_t i = 0; i < a.entries().size(); ++i) {
    EXPECT_EQ(a.entries()[i].name, b.entries()[i].name) << i;
    EXPECT_EQ(a.entries()[i].kind, b.entries()[i].kind) << i;
    EXPECT_EQ(a.entries()[i].id, b.entries()[i].id) << i;
  }
}

void expectCorrupt(const Bytes& data, const std::string& why) {
  auto t = Tree::deserialize(data, "tree under test");
  ASSERT_FALSE(t.ok()) << why;
  EXPECT_EQ(t.error().kind, ErrorKind::kCorrupt) << why << ": " << t.error().message();
  EXPECT_NE(t.error().message().find("tree under test"), std::string::npos)
      << "the error names where: " << t.error().message();
}

// One entry serialized by hand, independent of Tree::serialize.
Bytes rawEntry(uint8_t kind, const std::string& name, const hg::Node& id) {
  Bytes out;
  out.push_back(static_cast<char>(kind));
  out.push_back(static_cast<char>(name.size() >> 8));
  out.push_back(static_cast<char>(name.size() & 0xFF));
  out += name;
  out += id.view();
  return out;
}

Bytes rawTree(uint32_t count, const std::vector<Bytes>& entries, uint8_t version = 1) {
  Bytes out;
  out.push_back(static_cast<char>(version));
  out.push_back(static_cast<char>(count >> 24));
  out.push_back(static_cast<char>(count >> 16));
  out.push_back(static_cast<char>(count >> 8));
  out.push_back(static_cast<char>(count));
  for (const auto& e : entries) out += e;
  return out;
}

TEST(TreeTest, SerializedFormIsPinned) {
  Tree t({{"b", EntryKind::kExecutable, nodeOf(9)}, {"dir", EntryKind::kDirectory, nodeOf(10)}});
  Bytes expected = rawTree(2, {rawEntry(1, "b", nodeOf(9)), rawEntry(3, "dir", nodeOf(10))});
  EXPECT_EQ(t.serialize(), expected);
  EXPECT_EQ(Tree({}).serialize(), Bytes("\x01\0\0\0\0", 5));
}

TEST(TreeTest, RoundTrip) {
  Tree t = sampleTree();
  Bytes data = t.serialize();
  auto back = Tree::deserialize(data);
  ASSERT_TRUE(back.ok()) << back.error().message();
  expectSameEntries(t, *back);
  EXPECT_EQ(back->serialize(), data);
  EXPECT_EQ(back->computeId(), t.computeId());

  auto empty = Tree::deserialize(Tree({}).serialize());
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->entries().empty());
}

TEST(TreeTest, IdIsTheHashOfTheSerializedFormAndDependsOnEveryField) {
  Tree t = sampleTree();
  EXPECT_EQ(t.computeId().raw(), hg::sha1Of(t.serialize()));
  EXPECT_EQ(t.computeId(), sampleTree().computeId());

  auto changed = [&](auto mutate) {
    std::vector<TreeEntry> entries = sampleTree().entries();
    mutate(entries);
    return Tree(std::move(entries)).computeId();
  };
  TreeId base = t.computeId();
  EXPECT_NE(changed([](auto& e) { e[0].kind = EntryKind::kExecutable; }), base);
  EXPECT_NE(changed([](auto& e) { e[0].id = nodeOf(42); }), base);
  EXPECT_NE(changed([](auto& e) { e[0].name = "Makefilf"; }), base);
  EXPECT_NE(changed([](auto& e) { e.pop_back(); }), base);
}

TEST(TreeTest, Find) {
  Tree t = sampleTree();
  ASSERT_NE(t.find("a"), nullptr);
  EXPECT_TRUE(t.find("a")->isDirectory());
  EXPECT_EQ(t.find("a")->treeId(), TreeId(nodeOf(2)));
  ASSERT_NE(t.find("a.txt"), nullptr);
  EXPECT_EQ(t.find("a.txt")->kind, EntryKind::kRegular);
  EXPECT_EQ(t.find("run.sh")->kind, EntryKind::kExecutable);
  EXPECT_EQ(t.find("link")->kind, EntryKind::kSymlink);
  EXPECT_NE(t.find(std::string(NAME_MAX, 'z')), nullptr);
  EXPECT_EQ(t.find(""), nullptr);
  EXPECT_EQ(t.find("A"), nullptr);
  EXPECT_EQ(t.find("a.tx"), nullptr);
  EXPECT_EQ(t.find("a.txt2"), nullptr);
  EXPECT_EQ(t.find("zzz"), nullptr);
  EXPECT_EQ(Tree({}).find("a"), nullptr);
}

TEST(TreeTest, EveryTruncationIsCorrupt) {
  Bytes data = sampleTree().serialize();
  for (size_t len = 0; len < data.size(); ++len) {
    expectCorrupt(data.substr(0, len), "truncated to " + std::to_string(len));
  }
}

TEST(TreeTest, UnknownVersionIsCorrupt) {
  Bytes data = sampleTree().serialize();
  for (int v : {0, 2, 0x7F, 0xFF}) {
    Bytes bad = data;
    bad[0] = static_cast<char>(v);
    expectCorrupt(bad, "version " + std::to_string(v));
  }
}

TEST(TreeTest, UnknownKindIsCorrupt) {
  for (int kind : {4, 5, 0x80, 0xFF}) {
    expectCorrupt(rawTree(1, {rawEntry(static_cast<uint8_t>(kind), "f", nodeOf(1))}),
                  "kind " + std::to_string(kind));
  }
  // In the middle of an otherwise fine tree too.
  expectCorrupt(rawTree(3, {rawEntry(0, "a", nodeOf(1)), rawEntry(9, "b", nodeOf(2)),
                            rawEntry(0, "c", nodeOf(3))}),
                "second entry has kind 9");
}

TEST(TreeTest, UnsortedOrDuplicateNamesAreCorrupt) {
  expectCorrupt(rawTree(2, {rawEntry(0, "b", nodeOf(1)), rawEntry(0, "a", nodeOf(2))}),
                "b before a");
  expectCorrupt(rawTree(2, {rawEntry(0, "a", nodeOf(1)), rawEntry(3, "a", nodeOf(2))}), "a twice");
  expectCorrupt(rawTree(2, {rawEntry(0, "a.txt", nodeOf(1)), rawEntry(3, "a", nodeOf(2))}),
                "a.txt before a");
  // Bytes order is unsigned: 0xff sorts after 'z'.
  expectCorrupt(rawTree(2, {rawEntry(0, "\xff", nodeOf(1)), rawEntry(0, "z", nodeOf(2))}),
                "0xff before z");
  auto ok =
      Tree::deserialize(rawTree(2, {rawEntry(0, "z", nodeOf(1)), rawEntry(0, "\xff", nodeOf(2))}));
  EXPECT_TRUE(ok.ok()) << ok.error().message();
}

TEST(TreeTest, TrailingBytesAreCorrupt) {
  Bytes data = sampleTree().serialize();
  expectCorrupt(data + '\0', "one NUL after");
  expectCorrupt(data + rawEntry(0, "zzzz", nodeOf(1)), "an entry more than counted");
  expectCorrupt(Tree({}).serialize() + "x", "empty tree plus one byte");
}

TEST(TreeTest, CountLargerThanTheDataIsCorruptWithoutAHugeAllocation) {
  expectCorrupt(rawTree(0xFFFFFFFFu, {}), "count 2^32-1, no entries");
  expectCorrupt(rawTree(0xFFFFFFFFu, {rawEntry(0, "a", nodeOf(1))}), "count 2^32-1, one entry");
  expectCorrupt(rawTree(2, {rawEntry(0, "a", nodeOf(1))}), "count 2, one entry");
}

TEST(TreeTest, NameLengthPastTheEndIsCorrupt) {
  Bytes e = rawEntry(0, "abc", nodeOf(1));
  e[1] = '\xff';  // name length 0xff03
  expectCorrupt(rawTree(1, {e}), "name length past the end");
}

TEST(TreeTest, InvalidEntryNamesAreCorrupt) {
  for (const std::string& name :
       {std::string(), std::string("."), std::string(".."), std::string(".hg"), std::string("a/b"),
        std::string("/"), std::string("a\0b", 3), std::string(NAME_MAX + 1, 'n')}) {
    expectCorrupt(rawTree(1, {rawEntry(0, name, nodeOf(1))}), "name '" + printable(name) + "'");
  }
}

TEST(TreeTest, InvalidNameReason) {
  EXPECT_FALSE(invalidNameReason("a"));
  EXPECT_FALSE(invalidNameReason("..."));
  EXPECT_FALSE(invalidNameReason("..a"));
  EXPECT_FALSE(invalidNameReason(".hgignore"));
  EXPECT_FALSE(invalidNameReason(".hg2"));
  EXPECT_FALSE(invalidNameReason(".HG"));  // a legal name on a case-sensitive fs
  EXPECT_FALSE(invalidNameReason("\xff\xfe"));
  EXPECT_FALSE(invalidNameReason(std::string(NAME_MAX, 'x')));
  EXPECT_TRUE(invalidNameReason(""));
  EXPECT_TRUE(invalidNameReason("."));
  EXPECT_TRUE(invalidNameReason(".."));
  EXPECT_TRUE(invalidNameReason(".hg"));
  EXPECT_TRUE(invalidNameReason("a/b"));
  EXPECT_TRUE(invalidNameReason(std::string("a\0b", 3)));
  EXPECT_TRUE(invalidNameReason(std::string(NAME_MAX + 1, 'x')));
}

// Random damage to a valid tree: every result is either kCorrupt or a tree
// that serializes back to exactly the input (the format has one form per tree).
TEST(TreeTest, RandomDamageIsCorruptOrCanonical) {
  const Bytes data = sampleTree().serialize();
  std::mt19937 rng(1234);
  for (int round = 0; round < 20000; ++round) {
    Bytes bad = data;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits; ++k) {
      switch (rng() % 4) {
        case 0:
          bad[rng() % bad.size()] = static_cast<char>(rng());
          break;
        case 1:
          bad.resize(rng() % (bad.size() + 1));
          break;
        case 2:
          bad.insert(bad.begin() + static_cast<long>(rng() % (bad.size() + 1)),
                     static_cast<char>(rng()));
          break;
        default:
          if (!bad.empty()) bad.erase(bad.begin() + static_cast<long>(rng() % bad.size()));
          break;
      }
      if (bad.empty()) break;
    }
    auto t = Tree::deserialize(bad);
    if (t.ok()) {
      ASSERT_EQ(t->serialize(), bad) << "round " << round;
    } else {
      ASSERT_EQ(t.error().kind, ErrorKind::kCorrupt) << "round " << round;
    }
  }
}

TEST(TreeTest, MemoryUsageCountsLongNames) {
  Tree small({{"a", EntryKind::kRegular, nodeOf(1)}});
  Tree big({{std::string(200, 'a'), EntryKind::kRegular, nodeOf(1)}});
  EXPECT_GT(small.memoryUsage(), sizeof(TreeEntry));
  EXPECT_GE(big.memoryUsage(), small.memoryUsage() + 200);
}

}  // namespace
}  // namespace hgvfs::store
