#pragma once
// File revisions (mercurial/filelog.py, mercurial/utils/storageutil.py).
//
// A filelog's stored text may begin with a metadata block "\1\n<k>: <v>\n...\1\n"
// holding the copy source ("copy" and "copyrev"). It is written when the
// revision records a copy, and whenever the content itself starts with
// "\1\n" (then possibly empty) so the content is never mistaken for one.
// The working-copy content is the text with that block removed.
//
// Thread rules: Filelog is immutable after open; any thread.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hgbridge/revlog.h"

namespace hgvfs::hg {

struct CopySource {
  Bytes path;
  Node node;
};

struct FileMetadata {
  std::vector<std::pair<Bytes, Bytes>> fields;  // in stored order
  size_t headerLength = 0;                      // bytes before the content; 0 if none
  std::optional<CopySource> copy;
};

// Parses the metadata block at the start of a stored text, if any.
Result<FileMetadata> parseFileMetadata(ByteView rawText, const std::string& where = {});

class Filelog {
 public:
  Filelog(std::shared_ptr<Revlog> revlog, Bytes path)
      : revlog_(std::move(revlog)), path_(std::move(path)) {}

  const Revlog& revlog() const { return *revlog_; }
  const Bytes& path() const { return path_; }

  // The working-copy content of file revision `node`.
  Result<Bytes> read(const Node& node, VerifyHash verify = VerifyHash::kYes) const;
  // Content and metadata together.
  struct Text {
    Bytes content;
    FileMetadata metadata;
  };
  Result<Text> readWithMetadata(const Node& node, VerifyHash verify = VerifyHash::kYes) const;
  // The content length, from the index when the stored text has no metadata
  // block (checked through the delta chain, without building the text),
  // otherwise by reading the text.
  Result<uint64_t> size(const Node& node) const;

 private:
  std::shared_ptr<Revlog> revlog_;
  Bytes path_;
};

}  // namespace hgvfs::hg
