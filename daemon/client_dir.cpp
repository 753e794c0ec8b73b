#include "daemon/client_dir.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "fs/overlay.h"
#include "hgbridge/sha1.h"

namespace hgvfs::daemon {
namespace {

std::string shortHash(const std::string& s) { return hg::sha1Of(s).hex().substr(0, 16); }

}  // namespace

std::string hgvfsHome() {
  if (const char* h = std::getenv("HGVFS_HOME"); h && *h) return h;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.local/share/hgvfs";
}

std::string clientDirectoryFor(const std::string& mountPoint) {
  std::string base = mountPoint.substr(mountPoint.find_last_of('/') + 1);
  std::string clean;
  for (char c : base) clean.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  if (clean.empty()) clean = "root";
  if (clean.size() > 40) clean.resize(40);
  return hgvfsHome() + "/clients/" + clean + "-" + shortHash(mountPoint);
}

std::string cacheDirectoryFor(const std::string& storePath) {
  return hgvfsHome() + "/repos/" + shortHash(storePath) + "/cache";
}

std::string pidFile(const std::string& dir) { return dir + "/daemon.pid"; }
std::string logFile(const std::string& dir) { return dir + "/hgvfs.log"; }

std::string overlayDirectory(const std::string& clientDirectory) {
  return clientDirectory + "/overlay";
}

bool clientHasChanges(const std::string& clientDirectory) {
  std::string meta = overlayDirectory(clientDirectory) + "/meta";
  struct stat st;
  if (::stat(meta.c_str(), &st) != 0) return false;
  auto overlay = fs::Overlay::open(overlayDirectory(clientDirectory));
  return !overlay.ok() || (*overlay)->hasDirectory(1);
}

Status makeDirectories(const std::string& path) {
  std::string cur;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    cur = path.substr(0, slash);
    if (!cur.empty() && mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) {
      return ioError(errno, std::string("cannot create directory: ") + strerror(errno), cur);
    }
    start = slash + 1;
  }
  return okStatus();
}

Status writeClientConfig(const ClientConfig& c) {
  HG_RETURN_IF_ERROR(makeDirectories(c.directory));
  std::string tmp = c.directory + "/config.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "repository=" << c.repository << "\n"
        << "mountpoint=" << c.mountPoint << "\n"
        << "revision=" << c.revision << "\n";
    if (!c.mountOptions.empty()) {
      out << "options=";
      for (size_t i = 0; i < c.mountOptions.size(); ++i) {
        out << (i ? " " : "") << c.mountOptions[i];
      }
      out << "\n";
    }
    if (!out.flush()) return ioError(EIO, "cannot write the client config", tmp);
  }
  if (rename(tmp.c_str(), (c.directory + "/config").c_str()) != 0) {
    return ioError(errno, strerror(errno), c.directory + "/config");
  }
  return okStatus();
}

Result<ClientConfig> readClientConfig(const std::string& directory) {
  std::ifstream in(directory + "/config");
  if (!in) return notFound("no client config", directory);
  ClientConfig c;
  c.directory = directory;
  c.name = directory.substr(directory.find_last_of('/') + 1);
  std::string line;
  while (std::getline(in, line)) {
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string k = line.substr(0, eq), v = line.substr(eq + 1);
    if (k == "repository") c.repository = v;
    if (k == "mountpoint") c.mountPoint = v;
    if (k == "revision") c.revision = v;
    if (k == "options") {
      std::istringstream words(v);
      for (std::string w; words >> w;) c.mountOptions.push_back(w);
    }
  }
  return c;
}

std::vector<ClientConfig> listClients() {
  std::vector<ClientConfig> out;
  std::string dir = hgvfsHome() + "/clients";
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    auto c = readClientConfig(dir + "/" + e->d_name);
    if (c.ok()) out.push_back(*c);
  }
  closedir(d);
  std::sort(out.begin(), out.end(), [](const ClientConfig& a, const ClientConfig& b) {
    return a.mountPoint < b.mountPoint;
  });
  return out;
}

std::optional<int> runningDaemon(const std::string& clientDirectory) {
  std::ifstream in(pidFile(clientDirectory));
  int pid = 0;
  if (!(in >> pid) || pid <= 0) return std::nullopt;
  if (kill(pid, 0) != 0 && errno == ESRCH) return std::nullopt;
  // The pid may have been reused: check it is an hgvfs process.
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  if (!(comm >> name) || name.rfind("hgvfs", 0) != 0) return std::nullopt;
  // A zombie (killed, not yet reaped) is not a running daemon.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string statLine;
  std::getline(stat, statLine);
  size_t close = statLine.rfind(')');
  if (close != std::string::npos && close + 2 < statLine.size() && statLine[close + 2] == 'Z') {
    return std::nullopt;
  }
  return pid;
}

}  // namespace hgvfs::daemon
