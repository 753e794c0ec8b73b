#pragma once
// Changesets (mercurial/changelog.py). A changelog entry's text is:
//
//   <manifest hex>\n<user>\n<time> <tz>[ <extra>]\n<file>\n...<file>\n\n<description>
//
// where extra is "key:value" pairs joined by NUL, each escaped with
// stringutil.escapestr (\\ \n \r \0). Parsing is strict about the fixed
// header lines and keeps every byte of user, files and description.
//
// Thread rules: Changelog is immutable after open; any thread.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hgbridge/revlog.h"

namespace hgvfs::hg {

struct Changeset {
  Node manifest;
  Bytes user;
  Bytes time;      // seconds since the epoch, as written (may be fractional)
  int64_t tz = 0;  // offset in seconds west of UTC
  std::vector<std::pair<Bytes, Bytes>> extra;  // unescaped, in file order
  std::vector<Bytes> files;
  Bytes description;

  Bytes branch() const;  // extra "branch", "default" when absent
};

Result<Changeset> parseChangeset(ByteView text, const std::string& where = {});

class Changelog {
 public:
  explicit Changelog(std::shared_ptr<Revlog> revlog) : revlog_(std::move(revlog)) {}
  const Revlog& revlog() const { return *revlog_; }
  Result<Changeset> read(Revision r) const;

 private:
  std::shared_ptr<Revlog> revlog_;
};

}  // namespace hgvfs::hg
