// hgvfs: the command-line entry point. Subcommands are parsed here and
// handed to the functions that implement them.

#include <CLI/CLI.hpp>

#include "cli/debug_commands.h"

int main(int argc, char** argv) {
  CLI::App app{"hgvfs: a virtual filesystem for Mercurial working copies"};
  app.set_version_flag("--version", std::string("hgvfs 0.1.0"));
  app.require_subcommand(1);
  int exitCode = 0;

  auto* debug = app.add_subcommand("debug", "Inspect a repository through hgbridge");
  debug->require_subcommand(1);

  std::string repo, rev, dest;
  std::vector<std::string> paths;
  int threads = 0;

  auto* manifest = debug->add_subcommand(
      "manifest", "Print a revision's manifest like `hg manifest --debug -r REV`");
  manifest->add_option("REPO", repo)->required();
  manifest->add_option("REV", rev)->required();
  manifest->callback([&] { exitCode = hgvfs::cli::debugManifest(repo, rev); });

  auto* cat = debug->add_subcommand("cat", "Print files of a revision like `hg cat -r REV`");
  cat->add_option("REPO", repo)->required();
  cat->add_option("REV", rev)->required();
  cat->add_option("PATH", paths, "files or directories, relative to the repository root")
      ->required();
  cat->callback([&] { exitCode = hgvfs::cli::debugCat(repo, rev, paths); });

  auto* verify = debug->add_subcommand(
      "verify", "Read and check every revision of every revlog; exit 1 at the first corruption");
  verify->add_option("REPO", repo)->required();
  verify->callback([&] { exitCode = hgvfs::cli::debugVerify(repo); });

  auto* archive =
      debug->add_subcommand("archive", "Write every file of REV under DEST (like hg archive)");
  archive->add_option("REPO", repo)->required();
  archive->add_option("REV", rev)->required();
  archive->add_option("DEST", dest)->required();
  archive->callback([&] { exitCode = hgvfs::cli::debugArchive(repo, rev, dest); });

  auto* readAll = debug->add_subcommand(
      "read-all", "Read every file of REV into memory and report the time taken");
  readAll->add_option("--threads", threads, "worker threads (default: all cores)");
  readAll->add_option("REPO", repo)->required();
  readAll->add_option("REV", rev)->required();
  readAll->callback([&] { exitCode = hgvfs::cli::debugReadAll(repo, rev, threads); });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exitCode;
}
