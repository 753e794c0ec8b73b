#pragma once
// Where a revlog lives inside a repository's store, exactly as Mercurial's
// mercurial/store.py computes it.
//
// Mercurial names a tracked file's filelog "data/<path>.i" (and ".d") and then
// encodes that name so any byte string is a valid, case-insensitively unique
// file name on every platform. Which encoding applies depends on the store's
// requirements:
//   - kBasic     ("store" only):     encodedir + encodefilename
//   - kFncache   ("fncache"):        store._hybridencode(path, dotencode=False)
//   - kDotencode ("fncache" + "dotencode"): _hybridencode(path, dotencode=True)
// _hybridencode falls back to the hashed "dh/..." form when the encoded path
// is longer than 120 bytes.
//
// Pure functions; any thread.

#include "base/bytes.h"

namespace hgvfs::hg {

enum class StoreLayout { kBasic, kFncache, kDotencode };

// Encodes a store-relative path such as "data/dir/File.txt.i". Every path is
// encoded, as store.py does; the names hg creates outside data/ and meta/
// (00changelog.i, phaseroots, ...) encode to themselves. The hashed form can
// exceed 120 bytes when the basename's extension is long.
Bytes encodeStorePath(ByteView path, StoreLayout layout);

// The store-relative path of the index file of tracked file `path`
// ("data/" + path + ".i", encoded).
Bytes filelogIndexPath(ByteView path, StoreLayout layout);

}  // namespace hgvfs::hg
