#pragma once
// The command line's face, shaped like `hg help`: for the program and each
// subcommand the synopsis with the program's name, a description, one line
// per option (its short and long names, its value, what it does; [+] when it
// can be repeated), the subcommands, and examples. A usage error is one line,
// "hgvfs CMD: WHAT (see 'hgvfs CMD --help')", and exit status 255, as hg's.
//
// Long descriptions and examples are registered per command path
// ("mount", "debug cat") by setHelpDetails before parsing.
//
// Thread rules: used by main() alone.

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

namespace hgvfs::cli {

// Extra text for one command: paragraphs shown below its one-line
// description, and example command lines (each "COMMAND  # what it does"
// or just the command).
void setHelpDetails(const std::string& commandPath, std::string description,
                    std::vector<std::string> examples);

// The help of `app` (the program or one of its subcommands).
std::string helpText(const CLI::App& app, const std::string& program);

// Parses `args` (reversed, as CLI11 takes them) and runs the callbacks.
// nullopt when a command ran; otherwise the exit status after printing
// help (0: --help, or no command at all, like `hg`) or a one-line usage
// error (255).
std::optional<int> parseCommandLine(CLI::App& app, std::vector<std::string> args,
                                    const std::string& program);

}  // namespace hgvfs::cli
