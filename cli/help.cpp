#include "cli/help.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <sstream>

namespace hgvfs::cli {
namespace {

struct Details {
  std::string description;
  std::vector<std::string> examples;
};

std::map<std::string, Details>& registry() {
  static std::map<std::string, Details> details;
  return details;
}

// "mount", "debug cat": the names from the program down to `app`.
std::string commandPath(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* a = &app; a->get_parent() != nullptr; a = a->get_parent()) {
    names.push_back(a->get_name());
  }
  std::string path;
  for (auto it = names.rbegin(); it != names.rend(); ++it) path += (path.empty() ? "" : " ") + *it;
  return path;
}

std::string fullName(const CLI::App& app, const std::string& program) {
  std::string path = commandPath(app);
  return path.empty() ? program : program + " " + path;
}

bool takesValue(const CLI::Option* opt) { return opt->get_expected_max() > 0; }

std::string valueName(const CLI::Option* opt) {
  std::string name = opt->get_type_name();
  name = name.substr(0, name.find(':'));  // validators append ":{a,b,...}"
  bool plain = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isupper(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
  if (plain && name != "TEXT" && name != "UINT" && name != "INT") return name;
  if (!opt->get_lnames().empty()) {
    std::string l = opt->get_lnames().front();
    std::transform(l.begin(), l.end(), l.begin(), [](char c) {
      return static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    });
    return l;
  }
  return "VALUE";
}

bool repeatable(const CLI::Option* opt) { return opt->get_expected_max() > 1; }

std::string synopsis(const CLI::App& app, const std::string& program) {
  std::string s = fullName(app, program);
  bool hasCommands = false;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (!sub->get_group().empty()) hasCommands = true;
  }
  if (hasCommands) s += " COMMAND";
  s += " [OPTION]...";
  for (const CLI::Option* opt : app.get_options()) {
    if (!opt->get_positional()) continue;
    std::string name = opt->get_name();
    if (repeatable(opt)) name += "...";
    s += " " + (opt->get_required() ? name : "[" + name + "]");
  }
  return s;
}

void wrapInto(std::ostringstream& out, const std::string& text, size_t indent, size_t width) {
  std::istringstream words(text);
  std::string word, line;
  while (words >> word) {
    if (!line.empty() && indent + line.size() + 1 + word.size() > width) {
      out << std::string(indent, ' ') << line << "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) out << std::string(indent, ' ') << line << "\n";
}

}  // namespace

void setHelpDetails(const std::string& commandPath, std::string description,
                    std::vector<std::string> examples) {
  registry()[commandPath] = Details{std::move(description), std::move(examples)};
}

std::string helpText(const CLI::App& app, const std::string& program) {
  std::ostringstream out;
  out << synopsis(app, program) << "\n\n";
  std::string summary = app.get_description();
  if (!summary.empty()) out << summary << "\n";
  auto details = registry().find(commandPath(app));
  if (details != registry().end() && !details->second.description.empty()) {
    std::istringstream paragraphs(details->second.description);
    std::string paragraph;
    while (std::getline(paragraphs, paragraph)) {
      out << "\n";
      wrapInto(out, paragraph, 4, 79);
    }
  }
  if (!app.get_footer().empty()) {
    out << "\n";
    wrapInto(out, app.get_footer(), 4, 79);
  }

  std::vector<std::pair<std::string, std::string>> commands;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_group().empty()) continue;  // internal
    std::string name = sub->get_name();
    for (const auto& alias : sub->get_aliases()) name += ", " + alias;
    commands.emplace_back(name, sub->get_description());
  }
  if (!commands.empty()) {
    size_t width = 0;
    for (auto& [name, _] : commands) width = std::max(width, name.size());
    out << "\ncommands:\n\n";
    for (auto& [name, text] : commands) {
      out << " " << name << std::string(width - name.size() + 3, ' ') << text << "\n";
    }
  }

  std::vector<std::pair<std::string, std::string>> options;
  bool anyRepeatable = false;
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_positional() || opt->get_group().empty()) continue;
    std::string names;
    names += opt->get_snames().empty() ? "   " : "-" + opt->get_snames().front() + " ";
    names += opt->get_lnames().empty() ? "" : "--" + opt->get_lnames().front();
    if (takesValue(opt)) names += " " + valueName(opt);
    if (repeatable(opt)) {
      names += " [+]";
      anyRepeatable = true;
    }
    options.emplace_back(names, opt->get_description());
  }
  if (!options.empty()) {
    size_t width = 0;
    for (auto& [names, _] : options) width = std::max(width, names.size());
    out << (anyRepeatable ? "\noptions ([+] can be repeated):\n\n" : "\noptions:\n\n");
    width = std::min<size_t>(width, 30);
    for (auto& [names, text] : options) {
      // hg's layout: the description beside the names, wrapped below them.
      std::ostringstream wrapped;
      wrapInto(wrapped, text, width + 3, 79);
      std::string body = wrapped.str();
      body.erase(0, std::min(body.size(), width + 3));
      out << " " << names;
      if (names.size() > width) {
        out << "\n" << std::string(width + 3, ' ');
      } else {
        out << std::string(width - names.size() + 2, ' ');
      }
      out << (body.empty() ? "\n" : body);
    }
  }

  if (details != registry().end() && !details->second.examples.empty()) {
    out << "\nexamples:\n\n";
    for (const auto& e : details->second.examples) out << " " << e << "\n";
  }
  if (!commands.empty()) {
    out << "\n(use '" << fullName(app, program) << " COMMAND --help' for help on a command)\n";
  }
  return out.str();
}

std::optional<int> parseCommandLine(CLI::App& app, std::vector<std::string> args,
                                    const std::string& program) {
  bool noArguments = args.empty();
  try {
    app.parse(args);
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    // The innermost command named on the line, for help and for the message.
    const CLI::App* at = &app;
    for (;;) {
      auto subs = at->get_subcommands();
      if (subs.empty()) break;
      at = subs.back();
    }
    bool help = dynamic_cast<const CLI::CallForHelp*>(&e) != nullptr ||
                dynamic_cast<const CLI::CallForAllHelp*>(&e) != nullptr;
    if (help || (noArguments && at == &app)) {
      std::fputs(helpText(*at, program).c_str(), stdout);
      return 0;
    }
    if (dynamic_cast<const CLI::CallForVersion*>(&e) != nullptr) return app.exit(e);
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    if (what == "A subcommand is required") what = "a command is required";
    // An unknown option makes a required argument look missing too, and an
    // unknown command a missing command: name what is wrong.
    for (const std::string& arg : at->remaining()) {
      if (arg.size() > 1 && arg[0] == '-') {
        what = "option " + arg + " not recognized";
        break;
      }
      if (what == "a command is required") {
        what = "unknown command '" + arg + "'";
        break;
      }
    }
    std::string name = fullName(*at, program);
    std::fprintf(stderr, "%s: %s (see '%s --help')\n", name.c_str(), what.c_str(), name.c_str());
    return 255;
  }
}

}  // namespace hgvfs::cli
