#pragma once
// What `hg -r REV` means for one revision, answered without Python when the
// answer is certain and by stock `hg log -r REV -T '{node}'` otherwise.
//
// Native, in the order of hg's own lookup of a single symbol
// (mercurial/scmutil.py revsymbol): ".", "tip", "null"; a revision number;
// a full hex node; then the names, bookmarks first (@ included), tags
// (.hg/localtags and the .hgtags of the heads), branch names (the tip-most
// open head of the branch, or its tip-most head if all are closed, as
// mercurial/branchmap.py branchtip); last a unique hex prefix.
//
// Everything else goes to hg: revsets, anything whose spelling is not a
// plain revset symbol, and the cases where the native answer could differ
// from hg's (heads carrying different .hgtags, a name both a local and a
// global tag, a name pointing outside the changelog, an obsolescence store
// that may hide changesets, a dirstate-v2 working copy for "."). An error
// is one line: hg's own message without "abort: ".
//
// Thread rules: plain functions over an immutable Repository; any thread.

#include "base/bytes.h"
#include "base/result.h"
#include "hgbridge/node.h"
#include "hgbridge/repository.h"

namespace hgvfs::hg {

struct ResolvedRevision {
  Revision rev;
  bool native = true;  // false: the answer is hg's (`hg log -r`)
};

Result<ResolvedRevision> resolveRevision(const Repository& repo, ByteView spec);

}  // namespace hgvfs::hg
