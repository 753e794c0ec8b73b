#pragma once
// `hgvfs debug ...`: direct access to hgbridge, for checking it against the
// real hg and for benchmarks. Each command writes its answer to stdout and
// returns the process exit code (0 success, 1 as the command documents,
// 255 on an error, as hg aborts do).

#include <string>
#include <vector>

namespace hgvfs::cli {

int debugManifest(const std::string& repo, const std::string& rev);
int debugCat(const std::string& repo, const std::string& rev,
             const std::vector<std::string>& paths);
int debugVerify(const std::string& repo);
int debugArchive(const std::string& repo, const std::string& rev, const std::string& dest);
int debugReadAll(const std::string& repo, const std::string& rev, int threads);

}  // namespace hgvfs::cli
