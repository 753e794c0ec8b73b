// The `hgvfs` command users run. `hgvfs status` is answered here, by a small
// statically linked program that only speaks to the daemon's socket, so its
// whole cost is a process start (no shared libraries to load) and one round
// trip. Every other subcommand is handed to hgvfs-core, installed beside
// this binary, with the same arguments.

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/help.h"
#include "cli/status_command.h"

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "status") == 0) {
    CLI::App app{"hgvfs: a virtual filesystem for Mercurial working copies"};
    app.set_help_flag("-h,--help", "display help and exit");
    app.require_subcommand(1);
    int exitCode = 0;
    hgvfs::cli::StatusArgs statusArgs;
    hgvfs::cli::addStatusCommand(app, statusArgs, exitCode);
    std::vector<std::string> args = hgvfs::cli::reversedArguments(argc, argv);
    if (auto done = hgvfs::cli::parseCommandLine(app, std::move(args), "hgvfs")) return *done;
    return exitCode;
  }
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    std::fprintf(stderr, "hgvfs: cannot find my own executable: %s\n", std::strerror(errno));
    return 255;
  }
  self[n] = '\0';
  std::string core = self;
  core = core.substr(0, core.rfind('/') + 1) + "hgvfs-core";
  ::execv(core.c_str(), argv);
  std::fprintf(stderr, "hgvfs: cannot run %s: %s\n", core.c_str(), std::strerror(errno));
  return 255;
}
