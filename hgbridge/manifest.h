#pragma once
// Flat manifests (mercurial/manifest.py, mercurial/cext/manifest.c).
//
// A manifest text is a sorted list of lines "<path>\0<40 hex><flags>\n" where
// flags is "" (regular file), "x" (executable) or "l" (symlink). Parsing keeps
// the text and makes one entry per line pointing into it; it checks the hex,
// the flags and that paths are strictly increasing (lookups rely on it).
// "t" (a tree manifest directory) is Unsupported: treemanifest repositories
// are refused at open.
//
// Ownership: a Manifest owns its text; entries' paths are views into it and
// live as long as the Manifest. Immutable after parse; any thread.

#include <memory>
#include <span>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "hgbridge/node.h"

namespace hgvfs::hg {

enum class FileKind : uint8_t { kRegular, kExecutable, kSymlink };

struct ManifestEntry {
  ByteView path;
  Node node;
  FileKind kind;
};

class Manifest {
 public:
  Manifest() : text_(std::make_unique<Bytes>()) {}
  static Result<Manifest> parse(Bytes text, const std::string& where = {});

  std::span<const ManifestEntry> entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  const ManifestEntry* find(ByteView path) const;
  const Bytes& text() const { return *text_; }

 private:
  // Heap-held so entries' views stay valid when the Manifest moves.
  std::unique_ptr<Bytes> text_;
  std::vector<ManifestEntry> entries_;
};

char kindFlag(FileKind kind);  // '\0' for regular, 'x', 'l'

}  // namespace hgvfs::hg
