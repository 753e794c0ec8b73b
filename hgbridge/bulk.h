#pragma once
// Reading many files of one revision at once, spread over TBB workers.
//
// `sink` is called once per manifest entry, from worker threads, with the
// entry and its working-copy content (a symlink's content is its target).
// The first failure (a read error or a failure returned by `sink`) stops the
// walk and is returned; entries already handed out may still finish.

#include <functional>

#include "hgbridge/repository.h"

namespace hgvfs::hg {

using FileSink = std::function<Status(const ManifestEntry& entry, ByteView content)>;

Status readAllFiles(const Repository& repo, const Manifest& manifest, const FileSink& sink,
                    VerifyHash verify = VerifyHash::kYes);

}  // namespace hgvfs::hg
