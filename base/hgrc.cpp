#include "base/hgrc.h"

#include <algorithm>
#include <cerrno>

#include "base/io.h"

namespace hgvfs {
namespace {

constexpr int kMaxIncludeDepth = 10;

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::string strip(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && isSpace(s[a])) ++a;
  while (b > a && isSpace(s[b - 1])) --b;
  return s.substr(a, b - a);
}

std::string directoryOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace

Result<Hgrc> Hgrc::read(const std::string& path) {
  auto text = readFile(path);
  if (!text.ok()) {
    if (text.error().err == ENOENT) return Hgrc();
    return std::move(text).takeError();
  }
  return parse(*text, path);
}

Result<Hgrc> Hgrc::parse(const std::string& text, const std::string& path) {
  Hgrc out;
  HG_RETURN_IF_ERROR(out.parseInto(text, path, 0));
  return out;
}

void Hgrc::set(const std::string& section, const std::string& key, std::string value) {
  Section& s = sections_[section];
  if (!s.values.count(key)) s.order.push_back(key);
  s.values[key] = std::move(value);
}

Status Hgrc::parseInto(const std::string& text, const std::string& path, int depth) {
  std::string section;
  std::optional<std::string> item;  // the item a continuation line extends
  size_t start = 0;
  int number = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    start = nl == std::string::npos ? text.size() : nl + 1;
    ++number;
    if (number == 1 && line.rfind("\xef\xbb\xbf", 0) == 0) line.erase(0, 3);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (item) {
      if (!line.empty() && (line[0] == '#' || line[0] == ';')) continue;
      if (!line.empty() && isSpace(line[0]) && !strip(line).empty()) {
        sections_[section].values[*item] += "\n" + strip(line);
        continue;
      }
      item.reset();
    }
    if (line.rfind("%include", 0) == 0 && line.size() > 8 && isSpace(line[8]) &&
        !strip(line.substr(8)).empty()) {
      std::string inc = strip(line.substr(8));
      if (inc[0] != '/') inc = directoryOf(path) + "/" + inc;
      if (depth >= kMaxIncludeDepth) {
        return corrupt("%include nested too deeply", path + ":" + std::to_string(number));
      }
      auto included = readFile(inc);
      if (included.ok()) {
        HG_RETURN_IF_ERROR(parseInto(*included, inc, depth + 1));
      } else if (included.error().err != ENOENT) {
        return corrupt("cannot include " + inc + " (" + included.error().what + ")",
                       path + ":" + std::to_string(number));
      }
      continue;
    }
    if (strip(line).empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      size_t close = line.find(']');
      if (close != std::string::npos && close > 1 && line.find('[', 1) > close) {
        section = line.substr(1, close - 1);
        sections_[section];
        continue;
      }
    }
    size_t eq = line.find('=');
    if (eq != std::string::npos && eq > 0 && !isSpace(line[0])) {
      std::string key = strip(line.substr(0, eq));
      set(section, key, strip(line.substr(eq + 1)));
      item = key;
      continue;
    }
    if (line.rfind("%unset", 0) == 0 && line.size() > 6 && isSpace(line[6]) &&
        !strip(line.substr(6)).empty()) {
      std::string name = strip(line.substr(6));
      name = name.substr(0, std::min(name.size(), name.find_first_of(" \t\r\v\f")));
      auto it = sections_.find(section);
      if (it != sections_.end() && it->second.values.erase(name)) {
        auto& order = it->second.order;
        order.erase(std::remove(order.begin(), order.end(), name), order.end());
      }
      continue;
    }
    return corrupt(isSpace(line[0]) ? "unexpected leading whitespace: " + strip(line) : strip(line),
                   path + ":" + std::to_string(number));
  }
  return okStatus();
}

std::optional<std::string> Hgrc::get(const std::string& section, const std::string& key) const {
  auto s = sections_.find(section);
  if (s == sections_.end()) return std::nullopt;
  auto v = s->second.values.find(key);
  if (v == s->second.values.end()) return std::nullopt;
  return v->second;
}

std::vector<std::pair<std::string, std::string>> Hgrc::items(const std::string& section) const {
  std::vector<std::pair<std::string, std::string>> out;
  auto s = sections_.find(section);
  if (s == sections_.end()) return out;
  for (const auto& key : s->second.order) out.emplace_back(key, s->second.values.at(key));
  return out;
}

}  // namespace hgvfs
