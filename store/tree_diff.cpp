#include "store/tree_diff.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "store/object_store.h"

namespace hgvfs::store {
namespace {

// The byte of entry `e`'s manifest key (name, plus "/" for a directory) at
// index `i`, or -1 past its end.
int keyByte(const TreeEntry& e, size_t i) {
  if (i < e.name.size()) return static_cast<unsigned char>(e.name[i]);
  if (i == e.name.size() && e.isDirectory()) return '/';
  return -1;
}

// Orders entries the way their full paths sort in a flat manifest.
int compareKeys(const TreeEntry& x, const TreeEntry& y) {
  size_t n = std::min(x.name.size(), y.name.size());
  if (int c = std::memcmp(x.name.data(), y.name.data(), n); c != 0) return c;
  // Names hold no '/', so past the shorter name one byte decides.
  return keyByte(x, n) - keyByte(y, n);
}

std::vector<const TreeEntry*> manifestOrder(const Tree* t) {
  std::vector<const TreeEntry*> out;
  if (!t) return out;
  out.reserve(t->entries().size());
  for (const auto& e : t->entries()) out.push_back(&e);
  auto less = [](const TreeEntry* x, const TreeEntry* y) { return compareKeys(*x, *y) < 0; };
  // Tree order (by name) already is manifest order unless a directory's name
  // is a prefix of a sibling's followed by a byte below '/'.
  if (!std::is_sorted(out.begin(), out.end(), less)) std::sort(out.begin(), out.end(), less);
  return out;
}

class Differ {
 public:
  Differ(const TreeSource& load, const TreeChangeVisitor& visit, ByteView prefix)
      : load_(load), visit_(visit), path_(prefix) {}

  Status run(const std::optional<TreeId>& a, const std::optional<TreeId>& b) {
    if (a == b) return okStatus();
    HG_ASSIGN_OR_RETURN(auto ta, get(a));
    HG_ASSIGN_OR_RETURN(auto tb, get(b));
    return diff(ta.get(), tb.get());
  }

 private:
  Result<std::shared_ptr<const Tree>> get(const std::optional<TreeId>& id) {
    if (!id) return std::shared_ptr<const Tree>();
    return load_(*id);
  }

  // Both sides are directory trees at path_ (either may be null = empty).
  Status diff(const Tree* a, const Tree* b) {
    auto ea = manifestOrder(a);
    auto eb = manifestOrder(b);
    size_t i = 0, j = 0;
    while (i < ea.size() || j < eb.size()) {
      int c = i == ea.size() ? 1 : j == eb.size() ? -1 : compareKeys(*ea[i], *eb[j]);
      if (c < 0) {
        HG_RETURN_IF_ERROR(entry(ea[i++], nullptr));
      } else if (c > 0) {
        HG_RETURN_IF_ERROR(entry(nullptr, eb[j++]));
      } else {
        HG_RETURN_IF_ERROR(entry(ea[i++], eb[j++]));
      }
    }
    return okStatus();
  }

  // One name present in `a`, `b` or both; when both, both are directories
  // or both are files (compareKeys tells them apart otherwise).
  Status entry(const TreeEntry* a, const TreeEntry* b) {
    const TreeEntry& any = a ? *a : *b;
    size_t parentLen = path_.size();
    if (!path_.empty()) path_.push_back('/');
    path_.append(any.name);
    Status s = okStatus();
    if (any.isDirectory()) {
      if (!(a && b && a->id == b->id)) {
        std::optional<TreeId> ia, ib;
        if (a) ia = a->treeId();
        if (b) ib = b->treeId();
        s = run(ia, ib);
      }
    } else if (!a) {
      visit_(TreeChange{TreeChange::kAdded, path_, std::nullopt, *b});
    } else if (!b) {
      visit_(TreeChange{TreeChange::kRemoved, path_, *a, std::nullopt});
    } else if (a->kind != b->kind || a->id != b->id) {
      visit_(TreeChange{TreeChange::kModified, path_, *a, *b});
    }
    path_.resize(parentLen);
    return s;
  }

  const TreeSource& load_;
  const TreeChangeVisitor& visit_;
  Bytes path_;  // the directory being compared, then the entry's path
};

}  // namespace

Status diffTrees(const TreeSource& load, const std::optional<TreeId>& a,
                 const std::optional<TreeId>& b, ByteView prefix, const TreeChangeVisitor& visit) {
  return Differ(load, visit, prefix).run(a, b);
}

Status diffTrees(ObjectStore& store, const std::optional<TreeId>& a, const std::optional<TreeId>& b,
                 ByteView prefix, const TreeChangeVisitor& visit) {
  TreeSource load = [&store](const TreeId& id) { return store.tree(id); };
  return diffTrees(load, a, b, prefix, visit);
}

}  // namespace hgvfs::store
