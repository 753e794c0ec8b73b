// Store path encoding (hgbridge/store_path.h) against Mercurial's store.py.
//
// The hand-written tables document the rules; every expected value in them
// came from tests/oracle/store_encode.py, and one test re-asks the oracle so
// the tables cannot go stale. The differential test feeds thousands of
// seeded random hostile paths through both and compares every layout.

#include "hgbridge/store_path.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace hgvfs::hg {
namespace {

using test::mercurialPython;
using test::run;
using test::sourceDir;
using test::TempDir;

std::string rep(char c, size_t n) { return std::string(n, c); }

std::string repeat(const std::string& s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

std::string manyDirs(int n) {
  std::string out = "data";
  for (int i = 0; i < n; ++i) out += "/d" + std::to_string(i);
  return out;
}

// One path and its encoding under each layout.
struct Case {
  std::string path;
  std::string basic;      // store.encodefilename
  std::string fncache;    // store._hybridencode(path, False)
  std::string dotencode;  // store._hybridencode(path, True)
};

const std::vector<Case>& shortCases() {
  static const std::vector<Case> cases = {
      // nothing to encode
      {"data/foo/bar.txt.i", "data/foo/bar.txt.i", "data/foo/bar.txt.i", "data/foo/bar.txt.i"},
      // upper case becomes _x
      {"data/README.TXT.i", "data/_r_e_a_d_m_e._t_x_t.i", "data/_r_e_a_d_m_e._t_x_t.i",
       "data/_r_e_a_d_m_e._t_x_t.i"},
      // underscore doubles
      {"data/snake_case.py.i", "data/snake__case.py.i", "data/snake__case.py.i",
       "data/snake__case.py.i"},
      // Windows device name as a basename
      {"data/aux.i", "data/aux.i", "data/au~78.i", "data/au~78.i"},
      {"data/aux", "data/aux", "data/au~78", "data/au~78"},
      // upper case is escaped first, so no longer a device name
      {"data/AUX.i", "data/_a_u_x.i", "data/_a_u_x.i", "data/_a_u_x.i"},
      {"data/con.tar.gz.i", "data/con.tar.gz.i", "data/co~6e.tar.gz.i", "data/co~6e.tar.gz.i"},
      // device name as a directory
      {"data/prn/x.i", "data/prn/x.i", "data/pr~6e/x.i", "data/pr~6e/x.i"},
      {"data/nul.i", "data/nul.i", "data/nu~6c.i", "data/nu~6c.i"},
      {"data/com1.i", "data/com1.i", "data/co~6d1.i", "data/co~6d1.i"},
      // com0 is not a device
      {"data/com0.i", "data/com0.i", "data/com0.i", "data/com0.i"},
      {"data/lpt9/lpt9.i", "data/lpt9/lpt9.i", "data/lp~749/lp~749.i", "data/lp~749/lp~749.i"},
      {"data/auxx.i", "data/auxx.i", "data/auxx.i", "data/auxx.i"},
      // only the part before the first dot counts
      {"data/foo.aux.i", "data/foo.aux.i", "data/foo.aux.i", "data/foo.aux.i"},
      {"data/com1com2.i", "data/com1com2.i", "data/com1com2.i", "data/com1com2.i"},
      {"data/lpt1.lpt4.i", "data/lpt1.lpt4.i", "data/lp~741.lpt4.i", "data/lp~741.lpt4.i"},
      // device name and trailing dot
      {"data/aux./x.i", "data/aux./x.i", "data/au~78~2e/x.i", "data/au~78~2e/x.i"},
      {"data/a~b%c:d\\e.i", "data/a~7eb%c~3ad~5ce.i", "data/a~7eb%c~3ad~5ce.i",
       "data/a~7eb%c~3ad~5ce.i"},
      {"data/*?\"<>|.i", "data/~2a~3f~22~3c~3e~7c.i", "data/~2a~3f~22~3c~3e~7c.i",
       "data/~2a~3f~22~3c~3e~7c.i"},
      // trailing dot in a directory
      {"data/dir./x.i", "data/dir./x.i", "data/dir~2e/x.i", "data/dir~2e/x.i"},
      // trailing space
      {"data/dir /x.i", "data/dir /x.i", "data/dir~20/x.i", "data/dir~20/x.i"},
      // trailing dot in the basename
      {"data/name.", "data/name.", "data/name~2e", "data/name~2e"},
      {"data/name ", "data/name ", "data/name~20", "data/name~20"},
      // leading dot: escaped only with dotencode
      {"data/.hgignore.i", "data/.hgignore.i", "data/.hgignore.i", "data/~2ehgignore.i"},
      // leading space
      {"data/ lead/x.i", "data/ lead/x.i", "data/ lead/x.i", "data/~20lead/x.i"},
      {"data/./x.i", "data/./x.i", "data/~2e/x.i", "data/~2e/x.i"},
      {"data/ /x.i", "data/ /x.i", "data/~20/x.i", "data/~20/x.i"},
      {"data/../x.i", "data/../x.i", "data/.~2e/x.i", "data/~2e~2e/x.i"},
      // encodedir: directory names ending in .hg, .i, .d
      {"data/.hg/hgrc.i", "data/.hg.hg/hgrc.i", "data/.hg.hg/hgrc.i", "data/~2ehg.hg/hgrc.i"},
      {"data/x.i/y.i", "data/x.i.hg/y.i", "data/x.i.hg/y.i", "data/x.i.hg/y.i"},
      {"data/x.d/y.d", "data/x.d.hg/y.d", "data/x.d.hg/y.d", "data/x.d.hg/y.d"},
      {"data/x.hg.hg/y.i", "data/x.hg.hg.hg/y.i", "data/x.hg.hg.hg/y.i", "data/x.hg.hg.hg/y.i"},
      {"data/.i/.d/.hg/f.i", "data/.i.hg/.d.hg/.hg.hg/f.i", "data/.i.hg/.d.hg/.hg.hg/f.i",
       "data/~2ei.hg/~2ed.hg/~2ehg.hg/f.i"},
      // a file named .i is left alone
      {"data/x.i", "data/x.i", "data/x.i", "data/x.i"},
      // control bytes
      {"data/\x01\x09\x1f.i", "data/~01~09~1f.i", "data/~01~09~1f.i", "data/~01~09~1f.i"},
      // bytes 0x7e and up
      {"data/~\x7f\x80\xff.i", "data/~7e~7f~80~ff.i", "data/~7e~7f~80~ff.i", "data/~7e~7f~80~ff.i"},
      // non-UTF-8 (latin-1)
      {"data/caf\xe9.i", "data/caf~e9.i", "data/caf~e9.i", "data/caf~e9.i"},
      // invalid UTF-8
      {"data/\xc3(\xa0.i", "data/~c3(~a0.i", "data/~c3(~a0.i", "data/~c3(~a0.i"},
      // valid UTF-8
      {"data/\xe6\x97\xa5\xe6\x9c\xac.i", "data/~e6~97~a5~e6~9c~ac.i", "data/~e6~97~a5~e6~9c~ac.i",
       "data/~e6~97~a5~e6~9c~ac.i"},
      // outside data/: still encoded, as store.py does
      {"00changelog.i", "00changelog.i", "00changelog.i", "00changelog.i"},
      {"FOO", "_f_o_o", "_f_o_o", "_f_o_o"},
      // tree manifest
      {"meta/Dir/00manifest.i", "meta/_dir/00manifest.i", "meta/_dir/00manifest.i",
       "meta/_dir/00manifest.i"},
      // empty
      {"", "", "", ""},
  };
  return cases;
}

const std::vector<Case>& longCases() {
  static const std::vector<Case> cases = {
      // exactly 120 bytes: not hashed
      {"data/" + rep('a', 113) + ".i",
       "data/"
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
       "aaaaaaaaaaaaaaaaaaaaaa.i",
       "data/"
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
       "aaaaaaaaaaaaaaaaaaaaaa.i",
       "data/"
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
       "aaaaaaaaaaaaaaaaaaaaaa.i"},
      // 121 bytes: hashed
      {"data/" + rep('a', 114) + ".i",
       "data/"
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
       "aaaaaaaaaaaaaaaaaaaaaaa.i",
       "dh/"
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa548b13ba3e029dd2"
       "85b8d6d92e88862c44caa165.i",
       "dh/"
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa548b13ba3e029dd2"
       "85b8d6d92e88862c44caa165.i"},
      // 64 raw bytes, 120 once encoded
      {"data/" + rep('A', 56) + "b.i",
       "data/"
       "_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_"
       "a_a_a_a_a_a_a_a_a_a_ab.i",
       "data/"
       "_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_"
       "a_a_a_a_a_a_a_a_a_a_ab.i",
       "data/"
       "_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_"
       "a_a_a_a_a_a_a_a_a_a_ab.i"},
      // 121 once encoded: the hashed form is lower-encoded
      {"data/" + rep('A', 56) + "bc.i",
       "data/"
       "_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_a_"
       "a_a_a_a_a_a_a_a_a_a_abc.i",
       "dh/"
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabc."
       "i876387acf1f44f6961ba98b7c0952dc274e45a1c.i",
       "dh/"
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabc."
       "i876387acf1f44f6961ba98b7c0952dc274e45a1c.i"},
      // 119 bytes; dotencode makes it 121
      {"data/." + rep('a', 111) + ".i",
       "data/"
       ".aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
       "aaaaaaaaaaaaaaaaaaaaa.i",
       "data/"
       ".aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
       "aaaaaaaaaaaaaaaaaaaaa.i",
       "dh/"
       "~2eaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa5f9a3602163f8e2f"
       "d40c5ba32ee3fe676f579bda.i"},
      // long directory names: 8-byte prefixes, at most 68 bytes of them
      {"data/Directory0/Directory1/Directory2/Directory3/Directory4/Directory5/Directory6/"
       "Directory7/Directory8/Directory9/Directory10/Directory11/File.txt.i",
       "data/_directory0/_directory1/_directory2/_directory3/_directory4/_directory5/_directory6/"
       "_directory7/_directory8/_directory9/_directory10/_directory11/_file.txt.i",
       "dh/director/director/director/director/director/director/director/"
       "file.txt.i6943d8af4855ede4982461744670038fb0a67c6c.i",
       "dh/director/director/director/director/director/director/director/"
       "file.txt.i6943d8af4855ede4982461744670038fb0a67c6c.i"},
      // many short directories
      {manyDirs(40) + "/f.i",
       "data/d0/d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/d11/d12/d13/d14/d15/d16/d17/d18/d19/d20/d21/d22/d23/"
       "d24/d25/d26/d27/d28/d29/d30/d31/d32/d33/d34/d35/d36/d37/d38/d39/f.i",
       "dh/d0/d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/d11/d12/d13/d14/d15/d16/d17/d18/"
       "f.i687564f2c953d9bdf8f820e69bad23dc5c579675.i",
       "dh/d0/d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/d11/d12/d13/d14/d15/d16/d17/d18/"
       "f.i687564f2c953d9bdf8f820e69bad23dc5c579675.i"},
      // long basename: as much as fits, then the digest
      {"data/src/" + repeat("Very_Long_Basename_", 8) + ".c.i",
       "data/src/"
       "_very___long___basename___very___long___basename___very___long___basename___very___long___"
       "basename___very___long___basename___very___long___basename___very___long___basename___very_"
       "__long___basename__.c.i",
       "dh/src/"
       "very_long_basename_very_long_basename_very_long_basename_very_long_"
       "base0f4aa397bdbc3c7d7f037761d9d0dea504e0abf0.i",
       "dh/src/"
       "very_long_basename_very_long_basename_very_long_basename_very_long_"
       "base0f4aa397bdbc3c7d7f037761d9d0dea504e0abf0.i"},
      // a long extension is kept whole: the result exceeds 120 bytes
      {"data/x/name." + rep('e', 130),
       "data/x/"
       "name."
       "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
       "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
       "dh/x/"
       "e054198859a2a1e3a44ab0ffa55e84079153bcea."
       "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
       "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
       "dh/x/"
       "e054198859a2a1e3a44ab0ffa55e84079153bcea."
       "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
       "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"},
      // device names are checked after lower-casing in the hashed form
      {"data/AUX/Con.x/lpt1/" + rep('b', 100) + ".i",
       "data/_a_u_x/_con.x/lpt1/"
       "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
       "bbbbbbbbb.i",
       "dh/au~78/co~6e.x/lp~741/"
       "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb28351ed693a31e18be7c228d1e528e03257f1"
       "0bb.i",
       "dh/au~78/co~6e.x/lp~741/"
       "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb28351ed693a31e18be7c228d1e528e03257f1"
       "0bb.i"},
      // a directory prefix ending in '.' or ' ' ends in '_' instead
      {"data/.hidden/abcdefg./abcdefg /abcdefg.hij/abcdefg hij/" + rep('c', 60) + ".i",
       "data/.hidden/abcdefg./abcdefg /abcdefg.hij/abcdefg "
       "hij/cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc.i",
       "dh/.hidden/abcdefg~/abcdefg~/abcdefg_/abcdefg_/"
       "ccccccccccccccccccccccccccccccc211518c5818fac230c8b2639ff05f4e641cd93dc.i",
       "dh/~2ehidde/abcdefg~/abcdefg~/abcdefg_/abcdefg_/"
       "cccccccccccccccccccccccccccccc211518c5818fac230c8b2639ff05f4e641cd93dc.i"},
      // escapes can be cut by the filler
      {"data/" + repeat("\x01\xff", 40) + ".i",
       "data/"
       "~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~"
       "01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~"
       "01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff.i",
       "dh/"
       "~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~"
       "01473da5a9e87f45d781c1a18f58c807530e11597a.i",
       "dh/"
       "~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~01~ff~"
       "01473da5a9e87f45d781c1a18f58c807530e11597a.i"},
      // encodedir happens before hashing
      {"data/foo.i/bar.d/.hg/" + rep('z', 100) + ".d",
       "data/foo.i.hg/bar.d.hg/.hg.hg/"
       "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
       "zzzzzzzzz.d",
       "dh/foo.i.hg/bar.d.hg/.hg.hg/"
       "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz420a10a8df90772ea878227f0645627f2cfcaa45."
       "d",
       "dh/foo.i.hg/bar.d.hg/~2ehg.hg/"
       "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz420a10a8df90772ea878227f0645627f2cfcaa45."
       "d"},
      // leading dots: no extension, unless dotencode made the first one ~2e
      {"data/dir/..." + rep('z', 120),
       "data/dir/"
       "..."
       "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
       "zzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
       "dh/dir/"
       "..."
       "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzfb8a127b31d847fd7c8f0"
       "1ec6c1f44d358eeaad3",
       "dh/dir/"
       "fb8a127b31d847fd7c8f01ec6c1f44d358eeaad3."
       "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
       "zzzzzzzzzzzzzzzzzzzzzzzzzzzzz"},
      // a long directory name
      {"data/" + rep('x', 130) + "/f.i",
       "data/"
       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx/f.i",
       "dh/xxxxxxxx/f.i81c64687479dac126322db3d2c1e09aae29388a3.i",
       "dh/xxxxxxxx/f.i81c64687479dac126322db3d2c1e09aae29388a3.i"},
      // tree manifest, hashed
      {"meta/" + rep('M', 120) + "/00manifest.i",
       "meta/"
       "_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_"
       "m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_"
       "m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m_m/00manifest.i",
       "dh/mmmmmmmm/00manifest.i9dc0d636df51a006bd6a53705d275fcb3b547d4c.i",
       "dh/mmmmmmmm/00manifest.i9dc0d636df51a006bd6a53705d275fcb3b547d4c.i"},
      // outside data/: the first five bytes are skipped anyway
      {rep('q', 130),
       "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
       "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
       "dh/"
       "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqfb54fc06560a55"
       "97cb1c810704af5def1b3d3d03",
       "dh/"
       "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqfb54fc06560a55"
       "97cb1c810704af5def1b3d3d03"},
  };
  return cases;
}

void expectEncodings(const Case& c) {
  SCOPED_TRACE("path: " + printable(c.path));
  EXPECT_EQ(printable(encodeStorePath(c.path, StoreLayout::kBasic)), printable(c.basic));
  EXPECT_EQ(printable(encodeStorePath(c.path, StoreLayout::kFncache)), printable(c.fncache));
  EXPECT_EQ(printable(encodeStorePath(c.path, StoreLayout::kDotencode)), printable(c.dotencode));
}

TEST(StorePathTest, ShortPaths) {
  for (const Case& c : shortCases()) expectEncodings(c);
}

TEST(StorePathTest, LongPathsAndHashedForm) {
  for (const Case& c : longCases()) expectEncodings(c);
}

TEST(StorePathTest, HashedFormShape) {
  // 121 bytes once encoded: "dh/", filler from the basename, 40 hex digits
  // of sha1("data/aaa...a.i"), the extension; 120 bytes in all.
  const std::string path = "data/" + rep('a', 114) + ".i";
  const std::string encoded = encodeStorePath(path, StoreLayout::kFncache);
  ASSERT_EQ(encoded.size(), 120u);
  EXPECT_TRUE(encoded.starts_with("dh/" + rep('a', 75)));
  EXPECT_TRUE(encoded.ends_with("548b13ba3e029dd285b8d6d92e88862c44caa165.i"));
  // The basic layout has no length limit.
  EXPECT_EQ(encodeStorePath(path, StoreLayout::kBasic), path);
}

TEST(StorePathTest, EmptyDirectoryNamesInHashedForm) {
  // store._hashencode fails (IndexError) on an empty directory name; the C
  // pathencode that hg uses for dotencode keeps it empty. Expected values
  // from the C version.
  struct EmptyCase {
    std::string path;
    std::string dotencode;
  };
  const std::vector<EmptyCase> cases = {
      {"data//" + rep('x', 130),
       "dh/"
       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx2270733ff3e08b"
       "3ea7535a0f150a1997e9a736d2"},
      {"data/" + rep('x', 130) + "//a.i",
       "dh/xxxxxxxx//a.ic743acdf81534246be9636ffdf8eab5db73521b5.i"},
      {"data//abc/" + rep('x', 130),
       "dh//abc/"
       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx3fb0b405fd920843589"
       "181442c1b6b7ab90ecfa9"},
      {"data/a//b/" + rep('x', 130) + ".i",
       "dh/a//b/"
       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx9c88cc5cdde489668293f"
       "81e90cc8d9cdaf53773.i"},
      {"data/" + rep('x', 130) + "/", "dh/xxxxxxxx/da7bd62d082c5e10f28596483aa0d6c50f896f08"},
  };
  for (const EmptyCase& c : cases) {
    SCOPED_TRACE("path: " + printable(c.path));
    EXPECT_EQ(encodeStorePath(c.path, StoreLayout::kDotencode), c.dotencode);
    // Without dotencode the same rule applies (no Mercurial answer exists).
    EXPECT_EQ(encodeStorePath(c.path, StoreLayout::kFncache), c.dotencode);
  }
}

TEST(StorePathTest, FilelogIndexPath) {
  EXPECT_EQ(filelogIndexPath("Foo/aux.txt", StoreLayout::kDotencode), "data/_foo/au~78.txt.i");
  EXPECT_EQ(filelogIndexPath("Foo/aux.txt", StoreLayout::kBasic), "data/_foo/aux.txt.i");
  EXPECT_EQ(filelogIndexPath(".hgtags", StoreLayout::kFncache), "data/.hgtags.i");
  EXPECT_EQ(filelogIndexPath(".hgtags", StoreLayout::kDotencode), "data/~2ehgtags.i");
  EXPECT_EQ(filelogIndexPath("a.i/b", StoreLayout::kDotencode), "data/a.i.hg/b.i");
  EXPECT_EQ(filelogIndexPath(std::string("nul\0", 4), StoreLayout::kDotencode), "data/nul~00.i");
  EXPECT_EQ(filelogIndexPath(rep('a', 114), StoreLayout::kDotencode),
            encodeStorePath("data/" + rep('a', 114) + ".i", StoreLayout::kDotencode));
}

// ---------------------------------------------------------------------------
// The oracle.

struct OracleAnswer {
  std::string basic, fncache, dotencode, pathencode;
};

constexpr char kOracleError = '\x01';  // a field the Python raised on

bool isError(const std::string& field) { return !field.empty() && field[0] == kOracleError; }

// Runs tests/oracle/store_encode.py on `paths` (none may hold a NUL byte).
std::vector<OracleAnswer> askOracle(const std::vector<std::string>& paths) {
  TempDir dir;
  const std::string input = dir.path() + "/paths";
  std::string data;
  for (const std::string& p : paths) {
    data += p;
    data.push_back('\0');
  }
  test::writeFile(input, data);
  const auto result =
      run({mercurialPython(), sourceDir() + "/tests/oracle/store_encode.py", input});
  EXPECT_EQ(result.exitCode, 0) << result.err;
  std::vector<std::string> fields;
  size_t start = 0;
  for (size_t nul; (nul = result.out.find('\0', start)) != std::string::npos; start = nul + 1) {
    fields.push_back(result.out.substr(start, nul - start));
  }
  EXPECT_EQ(start, result.out.size()) << "trailing bytes after the last field";
  EXPECT_EQ(fields.size(), 4 * paths.size());
  std::vector<OracleAnswer> answers;
  for (size_t i = 0; i + 3 < fields.size(); i += 4) {
    answers.push_back({fields[i], fields[i + 1], fields[i + 2], fields[i + 3]});
  }
  return answers;
}

TEST(StorePathTest, TablesAgreeWithOracle) {
  std::vector<const Case*> all;
  for (const Case& c : shortCases()) all.push_back(&c);
  for (const Case& c : longCases()) all.push_back(&c);
  std::vector<std::string> paths;
  for (const Case* c : all) paths.push_back(c->path);
  const auto answers = askOracle(paths);
  ASSERT_EQ(answers.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    SCOPED_TRACE("path: " + printable(all[i]->path));
    EXPECT_EQ(answers[i].basic, all[i]->basic);
    EXPECT_EQ(answers[i].fncache, all[i]->fncache);
    EXPECT_EQ(answers[i].dotencode, all[i]->dotencode);
    EXPECT_EQ(answers[i].pathencode, all[i]->dotencode);
  }
}

// Random paths built from pieces that each trip one rule or another.
class HostilePaths {
 public:
  explicit HostilePaths(uint32_t seed) : rng_(seed) {}

  std::string next() {
    static const char* const kPrefixes[] = {"data/", "data/", "data/", "data/", "data/",
                                            "data/", "data/", "data/", "meta/", "meta/",
                                            "",      "dat",   "data",  "DATA/", "/"};
    static const char* const kSuffixes[] = {".i", ".i", ".i", ".d", "", "/00manifest.i"};
    std::string path = pick(kPrefixes);
    const size_t limit = std::uniform_int_distribution<size_t>(1, 300)(rng_);
    const int components = std::uniform_int_distribution<int>(1, 14)(rng_);
    for (int i = 0; i < components && path.size() < limit; ++i) {
      if (i > 0) path.push_back('/');
      if (chance(2)) continue;  // an empty component, now and then
      const int pieces = std::uniform_int_distribution<int>(1, 6)(rng_);
      for (int j = 0; j < pieces && path.size() < limit; ++j) path += piece();
    }
    if (path.size() > limit) path.resize(limit);
    path += pick(kSuffixes);
    return path;
  }

 private:
  template <size_t N>
  const char* pick(const char* const (&options)[N]) {
    return options[std::uniform_int_distribution<size_t>(0, N - 1)(rng_)];
  }

  bool chance(int percent) { return std::uniform_int_distribution<int>(0, 99)(rng_) < percent; }

  std::string piece() {
    static const char* const kPieces[] = {
        "a",    "b",    "z",    "Z",    "Q",        "_",          "~",         "%",    ":",
        "\\",   "*",    "?",    "\"",   "<",        ">",          "|",         ".",    " ",
        "..",   "\x01", "\x1f", "\x7e", "\x7f",     "\x80",       "\xff",      "\xe9", "aux",
        "AUX",  "con",  "prn",  "nul",  "com1",     "COM9",       "lpt9",      "lpt0", "com",
        "aux.", "x.i",  ".hg",  ".i",   ".d",       "hg",         "i",         "d",    "7",
        "1",    "-",    "+",    "=",    "\xc3\xa9", "abcdefghij", "ABCDEFGHIJ"};
    if (chance(5)) {
      // A long run, to push paths past 120 bytes with few components.
      const size_t n = std::uniform_int_distribution<size_t>(10, 60)(rng_);
      return std::string(n, chance(50) ? 'x' : 'X');
    }
    if (chance(3)) {
      // Any byte but NUL (the oracle's separator) and '/'.
      char c;
      do {
        c = static_cast<char>(std::uniform_int_distribution<int>(1, 255)(rng_));
      } while (c == '/');
      return std::string(1, c);
    }
    return pick(kPieces);
  }

  std::mt19937 rng_;
};

TEST(StorePathTest, RandomPathsAgreeWithMercurial) {
  constexpr int kPaths = 6000;
  HostilePaths gen(20240611);
  std::vector<std::string> paths;
  paths.reserve(kPaths);
  for (int i = 0; i < kPaths; ++i) paths.push_back(gen.next());
  const auto answers = askOracle(paths);
  ASSERT_EQ(answers.size(), paths.size());

  int mismatches = 0, hashed = 0, pythonFailed = 0;
  auto check = [&](const std::string& path, const char* layout, const std::string& ours,
                   const std::string& theirs) {
    if (ours == theirs) return;
    if (++mismatches <= 15) {
      ADD_FAILURE() << layout << " " << printable(path) << "\n  ours:      " << printable(ours)
                    << "\n  mercurial: " << printable(theirs);
    }
  };
  for (size_t i = 0; i < paths.size(); ++i) {
    const std::string& p = paths[i];
    const OracleAnswer& a = answers[i];
    const std::string dot = encodeStorePath(p, StoreLayout::kDotencode);
    check(p, "basic", encodeStorePath(p, StoreLayout::kBasic), a.basic);
    check(p, "pathencode", dot, a.pathencode);
    if (isError(a.dotencode) || isError(a.fncache)) {
      ++pythonFailed;  // store._hashencode on an empty directory name
    } else {
      check(p, "fncache", encodeStorePath(p, StoreLayout::kFncache), a.fncache);
      check(p, "dotencode", dot, a.dotencode);
    }
    if (dot.starts_with("dh/")) ++hashed;
  }
  EXPECT_EQ(mismatches, 0);
  // The generator must keep reaching both forms, or this test proves little.
  EXPECT_GT(hashed, kPaths / 5);
  EXPECT_GT(kPaths - hashed, kPaths / 5);
  std::printf("%d paths, %d hashed, %d where store.py raises\n", kPaths, hashed, pythonFailed);
}

}  // namespace
}  // namespace hgvfs::hg
