#pragma once
// A reader of Mercurial's config files (hgrc), as mercurial/config.py
// parses them: `[section]`, `key = value`, continuation lines (indented),
// `#` and `;` comments, `%unset key` and `%include PATH` (relative to the
// including file). Later assignments of a key win; items keep the order in
// which their keys first appeared, as hg's config does.
//
// One reader for every part of hgvfs that needs a value from an hgrc (the
// daemon's `[ui] ignore`, the front's `[hgvfs] socket`), so all of them read
// the same syntax the same way.
//
// Thread rules: a plain value; any thread.

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"

namespace hgvfs {

class Hgrc {
 public:
  // Parses `path`; a file that does not exist is an empty config (as for
  // hg). A line hg would reject is Corrupt ("FILE:LINE"), as hg aborts on
  // it; any other read failure is kIo.
  static Result<Hgrc> read(const std::string& path);
  // Parses `text` as if read from `path` (for %include and messages).
  static Result<Hgrc> parse(const std::string& text, const std::string& path = {});

  std::optional<std::string> get(const std::string& section, const std::string& key) const;
  // The items of `section` in first-appearance order.
  std::vector<std::pair<std::string, std::string>> items(const std::string& section) const;

 private:
  Status parseInto(const std::string& text, const std::string& path, int depth);
  void set(const std::string& section, const std::string& key, std::string value);

  struct Section {
    std::vector<std::string> order;
    std::map<std::string, std::string> values;
  };
  std::map<std::string, Section> sections_;
};

}  // namespace hgvfs
