#include "store/tree_builder.h"

#include <algorithm>

#include "hgbridge/sha1.h"

namespace hgvfs::store {
namespace {

class Builder {
 public:
  explicit Builder(std::span<const hg::ManifestEntry> entries) : entries_(entries) {}

  BuiltTrees run() {
    out_.root = buildDir(0, entries_.size(), 0);
    return std::move(out_);
  }

 private:
  // Builds the directory whose entries are entries_[lo, hi), all sharing a
  // prefix of `prefixLen` bytes (the directory's path plus '/').
  TreeId buildDir(size_t lo, size_t hi, size_t prefixLen) {
    std::vector<TreeEntry> children;
    size_t i = lo;
    while (i < hi) {
      ByteView path = entries_[i].path;
      ByteView rest = path.substr(prefixLen);
      size_t slash = rest.find('/');
      if (slash == ByteView::npos) {
        if (auto why = invalidNameReason(rest)) {
          skip(path, *why);
        } else {
          children.push_back({Bytes(rest), entryKind(entries_[i].kind), entries_[i].node});
        }
        ++i;
        continue;
      }
      ByteView dirPrefix = path.substr(0, prefixLen + slash + 1);
      size_t end = i + 1;
      while (end < hi && entries_[end].path.substr(0, dirPrefix.size()) == dirPrefix) ++end;
      ByteView name = rest.substr(0, slash);
      if (auto why = invalidNameReason(name)) {
        for (size_t k = i; k < end; ++k) skip(entries_[k].path, "directory " + *why);
      } else {
        TreeId id = buildDir(i, end, dirPrefix.size());
        children.push_back({Bytes(name), EntryKind::kDirectory, id.raw()});
      }
      i = end;
    }
    // A file "a" sorts before "a.txt" and "a/..." in the manifest but the
    // tree is ordered by name alone.
    std::stable_sort(children.begin(), children.end(),
                     [](const TreeEntry& a, const TreeEntry& b) { return a.name < b.name; });
    for (size_t k = 0; k + 1 < children.size();) {
      if (children[k].name == children[k + 1].name) {
        size_t drop = children[k].isDirectory() ? k + 1 : k;
        skip(children[drop].name, "a file and a directory have this name; the file is left out");
        children.erase(children.begin() + static_cast<long>(drop));
      } else {
        ++k;
      }
    }
    Tree tree(std::move(children));
    Bytes data = tree.serialize();
    TreeId id(hg::sha1Of(data));
    out_.trees.emplace_back(id, std::move(data));
    return id;
  }

  void skip(ByteView path, const std::string& why) {
    out_.skipped.push_back(hg::printable(path) + ": " + why);
  }

  std::span<const hg::ManifestEntry> entries_;
  BuiltTrees out_;
};

}  // namespace

EntryKind entryKind(hg::FileKind kind) {
  switch (kind) {
    case hg::FileKind::kExecutable:
      return EntryKind::kExecutable;
    case hg::FileKind::kSymlink:
      return EntryKind::kSymlink;
    case hg::FileKind::kRegular:
      break;
  }
  return EntryKind::kRegular;
}

BuiltTrees buildTrees(const hg::Manifest& manifest) { return Builder(manifest.entries()).run(); }

}  // namespace hgvfs::store
