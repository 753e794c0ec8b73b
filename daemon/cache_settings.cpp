#include "daemon/cache_settings.h"

#include <algorithm>
#include <filesystem>

#include "base/byte_size.h"
#include "base/hgrc.h"
#include "base/io.h"
#include "daemon/client_dir.h"

namespace hgvfs::daemon {

Result<uint64_t> cacheMaxSize() {
  std::string path = hgvfsHome() + "/config";
  HG_ASSIGN_OR_RETURN(Hgrc config, Hgrc::read(path));
  std::optional<std::string> value = config.get("cache", "max-size");
  if (!value) return kDefaultCacheMaxSize;
  auto size = parseByteSize(*value);
  if (!size.ok()) return invalidArgument("[cache] max-size: " + size.error().what, path);
  return *size;
}

void recordCacheOwner(const std::string& cacheDir, const std::string& repoRoot) {
  std::string file = std::filesystem::path(cacheDir).parent_path().string() + "/repository";
  auto current = readFile(file);
  if (current.ok() && *current == repoRoot + "\n") return;
  (void)writeFileAtomically(file, repoRoot + "\n");
}

std::vector<CacheDirectory> listCaches() {
  std::vector<CacheDirectory> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(hgvfsHome() + "/repos", ec)) {
    std::string dir = entry.path().string() + "/cache";
    if (!std::filesystem::exists(dir + "/data.mdb", ec)) continue;
    CacheDirectory c{dir, ""};
    if (auto repo = readFile(entry.path().string() + "/repository"); repo.ok()) {
      c.repository = *repo;
      while (!c.repository.empty() && c.repository.back() == '\n') c.repository.pop_back();
    }
    out.push_back(std::move(c));
  }
  std::sort(out.begin(), out.end(), [](const CacheDirectory& a, const CacheDirectory& b) {
    return a.directory < b.directory;
  });
  return out;
}

}  // namespace hgvfs::daemon
