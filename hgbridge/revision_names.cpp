#include "hgbridge/revision_names.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/io.h"
#include "base/process.h"

namespace hgvfs::hg {
namespace {

// A name lookup: the revision, "not a name of this kind", or "hg must say".
struct NameAnswer {
  enum Kind { kFound, kAbsent, kUncertain } kind = kAbsent;
  Revision rev;
  static NameAnswer found(Revision r) { return {kFound, r}; }
  static NameAnswer absent() { return {}; }
  static NameAnswer uncertain() { return {kUncertain, kNullRevision}; }
};

bool fileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool nonEmptyFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && st.st_size > 0;
}

bool isHex(ByteView s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(uint8_t(c)) != 0; });
}

// A revset symbol hg reads as one name (mercurial/revsetlang.py tokenize:
// alphanumerics, "._@-" and non-ASCII bytes), and not an operator keyword.
bool isPlainSymbol(ByteView s) {
  if (s.empty() || s == "and" || s == "or" || s == "not") return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    uint8_t b = static_cast<uint8_t>(c);
    return b >= 0x80 || std::isalnum(b) || c == '.' || c == '_' || c == '@' || c == '-';
  });
}

// The canonical decimal spelling hg takes as a number ("%d" % int(s) == s).
std::optional<int64_t> canonicalNumber(ByteView s) {
  if (s.empty() || s.size() > 12) return std::nullopt;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size()) return std::nullopt;
  if (!std::all_of(s.begin() + i, s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  if (s[i] == '0' && (s.size() - i > 1 || i == 1)) return std::nullopt;  // "01", "-0"
  return std::stoll(std::string(s));
}

// Each "HEXNODE NAME" line of `text` (bookmarks, localtags, .hgtags), in
// file order, as fn(node, name), the name without the blanks around it.
// Lines that do not parse are skipped, as hg does (with a warning).
template <typename Fn>
void forEachNodeLine(ByteView text, Fn fn) {
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == ByteView::npos) nl = text.size();
    ByteView line = text.substr(start, nl - start);
    start = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t space = line.find(' ');
    if (space == ByteView::npos) continue;
    auto node = Node::fromHex(line.substr(0, space));
    if (!node) continue;
    ByteView name = line.substr(space + 1);
    while (!name.empty() && std::isspace(uint8_t(name.front()))) name.remove_prefix(1);
    while (!name.empty() && std::isspace(uint8_t(name.back()))) name.remove_suffix(1);
    fn(*node, name);
  }
}

// Bookmarks and local tags: the last line for a name wins.
std::map<Bytes, Node> parseNodeNames(ByteView text) {
  std::map<Bytes, Node> names;
  forEachNodeLine(text, [&](const Node& node, ByteView name) {
    if (!name.empty()) names[Bytes(name)] = node;
  });
  return names;
}

NameAnswer answerFor(const Repository& repo, const std::map<Bytes, Node>& names, ByteView name) {
  auto it = names.find(Bytes(name));
  if (it == names.end()) return NameAnswer::absent();
  auto rev = repo.changelog().revlog().rev(it->second);
  if (!rev.ok()) return NameAnswer::uncertain();
  return NameAnswer::found(*rev);
}

// Where hg keeps bookmarks: the store (bookmarksinstore), the share
// source (a share made with --bookmarks), or this repository's .hg.
std::string bookmarksFile(const Repository& repo) {
  if (repo.requirements().has("bookmarksinstore")) return repo.storePath() + "/bookmarks";
  if (repo.sharedDotHg() != repo.dotHg()) {
    auto shared = readFile(repo.dotHg() + "/shared");
    if (shared.ok()) {
      for (size_t pos = 0; pos < shared->size();) {
        size_t nl = shared->find('\n', pos);
        if (nl == Bytes::npos) nl = shared->size();
        if (shared->substr(pos, nl - pos) == "bookmarks") return repo.sharedDotHg() + "/bookmarks";
        pos = nl + 1;
      }
    }
  }
  return repo.dotHg() + "/bookmarks";
}

NameAnswer bookmark(const Repository& repo, ByteView name) {
  auto text = readFile(bookmarksFile(repo));
  if (!text.ok()) return NameAnswer::absent();
  return answerFor(repo, parseNodeNames(*text), name);
}

std::vector<Revision> changelogHeads(const Revlog& cl) {
  std::vector<bool> hasChild(cl.size(), false);
  for (int32_t r = 0; r < static_cast<int32_t>(cl.size()); ++r) {
    const auto& e = cl.entry(Revision(r));
    if (!e.p1.isNull()) hasChild[e.p1.value()] = true;
    if (!e.p2.isNull()) hasChild[e.p2.value()] = true;
  }
  std::vector<Revision> heads;
  for (int32_t r = 0; r < static_cast<int32_t>(cl.size()); ++r) {
    if (!hasChild[r]) heads.push_back(Revision(r));
  }
  return heads;
}

// A tag's node and the nodes it had before (mercurial/tags.py: "hist").
struct TagEntry {
  Node node;
  std::vector<Node> history;
};
using TagMap = std::map<Bytes, TagEntry>;

// tags.py _readtags: the last line of a name gives its node, the earlier
// lines its history, in file order.
TagMap readTags(ByteView text) {
  std::map<Bytes, std::vector<Node>> lines;
  forEachNodeLine(text,
                  [&](const Node& node, ByteView name) { lines[Bytes(name)].push_back(node); });
  TagMap tags;
  for (auto& [name, nodes] : lines) {
    Node last = nodes.back();
    nodes.pop_back();
    tags[name] = TagEntry{last, std::move(nodes)};
  }
  return tags;
}

bool contains(const std::vector<Node>& nodes, const Node& n) {
  return std::find(nodes.begin(), nodes.end(), n) != nodes.end();
}

// tags.py _updatetags: the newer file wins unless the older entry
// supersedes it (its history holds the newer node, and the newer's does not
// hold the older's, or the older history is longer).
void updateTags(TagMap from, TagMap& all) {
  for (auto& [name, entry] : from) {
    auto it = all.find(name);
    if (it == all.end()) {
      all.emplace(name, std::move(entry));
      continue;
    }
    TagEntry& older = it->second;
    if (older.node != entry.node && contains(older.history, entry.node) &&
        (!contains(entry.history, older.node) || older.history.size() > entry.history.size())) {
      entry.node = older.node;
    }
    for (const Node& n : older.history) {
      if (!contains(entry.history, n)) entry.history.push_back(n);
    }
    older = std::move(entry);
  }
}

// localrepo._findtags: the .hgtags of every head, oldest head first, each
// file revision once (tags.py findglobaltags), then .hg/localtags without
// the tags naming unknown changesets; a null node deletes a tag.
Result<TagMap> allTags(const Repository& repo) {
  std::vector<Node> fileNodes;
  for (Revision head : changelogHeads(repo.changelog().revlog())) {
    HG_ASSIGN_OR_RETURN(Manifest manifest, repo.manifestOf(head));
    const ManifestEntry* entry = manifest.find(".hgtags");
    if (entry && !contains(fileNodes, entry->node)) fileNodes.push_back(entry->node);
  }
  TagMap all;
  if (!fileNodes.empty()) {
    HG_ASSIGN_OR_RETURN(Filelog log, repo.filelog(".hgtags"));
    for (const Node& fileNode : fileNodes) {
      HG_ASSIGN_OR_RETURN(Bytes text, log.read(fileNode));
      updateTags(readTags(text), all);
    }
  }
  auto localText = readFile(repo.dotHg() + "/localtags");
  if (localText.ok()) {
    TagMap local = readTags(*localText);
    std::erase_if(local, [&](const auto& kv) {
      return !kv.second.node.isNull() && !repo.changelog().revlog().rev(kv.second.node).ok();
    });
    updateTags(std::move(local), all);
  }
  return all;
}

NameAnswer tag(const Repository& repo, ByteView name) {
  auto tags = allTags(repo);
  if (!tags.ok()) return NameAnswer::uncertain();
  auto it = tags->find(Bytes(name));
  if (it == tags->end() || it->second.node.isNull()) return NameAnswer::absent();
  auto rev = repo.changelog().revlog().rev(it->second.node);
  if (!rev.ok()) return NameAnswer::uncertain();  // hg fails its own way
  return NameAnswer::found(*rev);
}

// The branch's heads (revisions on it with no descendant on it, by
// revision), then branchmap's branchtip: the last open one, else the last.
NameAnswer branch(const Repository& repo, ByteView name) {
  const Revlog& cl = repo.changelog().revlog();
  const int32_t count = static_cast<int32_t>(cl.size());
  std::vector<bool> onBranch(count, false), closed(count, false), descendantOn(count, false);
  for (int32_t r = 0; r < count; ++r) {
    auto cs = repo.changeset(Revision(r));
    if (!cs.ok()) return NameAnswer::uncertain();
    if (cs->branch() != name) continue;
    onBranch[r] = true;
    closed[r] = std::any_of(cs->extra.begin(), cs->extra.end(),
                            [](const auto& kv) { return kv.first == "close"; });
  }
  std::optional<Revision> lastOpen, last;
  for (int32_t r = count - 1; r >= 0; --r) {
    if (onBranch[r] && !descendantOn[r]) {
      if (!last) last = Revision(r);
      if (!closed[r] && !lastOpen) lastOpen = Revision(r);
    }
    if (onBranch[r] || descendantOn[r]) {
      const auto& e = cl.entry(Revision(r));
      if (!e.p1.isNull()) descendantOn[e.p1.value()] = true;
      if (!e.p2.isNull()) descendantOn[e.p2.value()] = true;
    }
  }
  if (lastOpen) return NameAnswer::found(*lastOpen);
  if (last) return NameAnswer::found(*last);
  return NameAnswer::absent();
}

// ".": the first parent in the repository's dirstate (v1: its first 20 bytes).
std::optional<Revision> workingParent(const Repository& repo) {
  if (repo.requirements().has("dirstate-v2")) return std::nullopt;
  auto text = readFile(repo.dotHg() + "/dirstate");
  if (!text.ok())
    return fileExists(repo.dotHg() + "/dirstate") ? std::nullopt : std::optional(kNullRevision);
  if (text->empty()) return kNullRevision;
  if (text->size() < Node::kSize) return std::nullopt;
  Node p1 = Node::fromRaw(text->data());
  if (p1.isNull()) return kNullRevision;
  auto rev = repo.changelog().revlog().rev(p1);
  if (!rev.ok()) return std::nullopt;
  return *rev;
}

Result<ResolvedRevision> askHg(const Repository& repo, ByteView spec) {
  std::string quoted = "'" + printable(spec) + "'";
  auto ran = runProcess({"hg", "log", "-R", repo.root(), "-r", std::string(spec), "-T", "{node}\n"},
                        {"HGPLAIN=1"});
  if (!ran.ok()) return std::move(ran).takeError();
  if (ran->exitCode != 0) {
    std::string line = ran->err.substr(0, ran->err.find('\n'));
    if (line.rfind("abort: ", 0) == 0) line.erase(0, 7);
    if (line.empty()) line = "hg log -r " + quoted + " failed";
    // A name with '-' that names nothing is split by hg's revset parser
    // ("unknown revision 'no'"); the user meant the whole name.
    if (isPlainSymbol(spec) && line.rfind("unknown revision '", 0) == 0) {
      line = "unknown revision " + quoted;
    }
    return notFound(line);
  }
  std::string out = ran->out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  if (out.empty()) return notFound("empty revision set " + quoted);
  std::string last = out.substr(out.rfind('\n') + 1);  // as scmutil.revsingle: the last
  auto node = Node::fromHex(last);
  if (!node) return corrupt("hg log -r " + quoted + " printed " + printable(last));
  if (node->isNull()) return ResolvedRevision{kNullRevision, false};
  auto rev = repo.changelog().revlog().rev(*node);
  if (!rev.ok()) return notFound("revision " + last.substr(0, 12) + " is not in the repository");
  return ResolvedRevision{*rev, false};
}

}  // namespace

Result<ResolvedRevision> resolveRevision(const Repository& repo, ByteView spec) {
  if (spec == ".") {
    if (auto parent = workingParent(repo)) return ResolvedRevision{*parent};
    return askHg(repo, spec);
  }
  if (spec == "tip" || spec == "null") {
    HG_ASSIGN_OR_RETURN(Revision r, repo.lookup(spec));
    return ResolvedRevision{r};
  }
  if (auto number = canonicalNumber(spec)) {
    int64_t count = static_cast<int64_t>(repo.changelog().revlog().size());
    int64_t r = *number < 0 ? *number + count : *number;
    if (r >= 0 && r < count) return ResolvedRevision{Revision(static_cast<int32_t>(r))};
  }
  if (spec.size() == Node::kHexSize) {
    if (auto node = Node::fromHex(spec)) {
      auto r = repo.changelog().revlog().rev(*node);
      if (r.ok()) return ResolvedRevision{*r};
    }
  }
  if (!isPlainSymbol(spec) || nonEmptyFile(repo.storePath() + "/obsstore")) {
    return askHg(repo, spec);
  }
  for (auto lookupName : {bookmark, tag, branch}) {
    NameAnswer answer = lookupName(repo, spec);
    if (answer.kind == NameAnswer::kFound) return ResolvedRevision{answer.rev};
    if (answer.kind == NameAnswer::kUncertain) return askHg(repo, spec);
  }
  if (isHex(spec)) {
    auto r = repo.lookup(spec);
    if (r.ok()) return ResolvedRevision{*r};
    if (r.error().kind != ErrorKind::kNotFound) return std::move(r).takeError();
  }
  return askHg(repo, spec);  // hg's own words for an unknown revision
}

}  // namespace hgvfs::hg
