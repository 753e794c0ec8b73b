// Python 3.11 `re` for bytes patterns, translated to PCRE2 (see
// py_regex_parser.h). Errors are thrown as PyReError inside this file only
// and returned by parsePythonPattern.
//
// About 800 lines on purpose: one recursive-descent parser (one class, its
// grammar in one place, as Python's sre_parse.py keeps it); splitting it
// would scatter the grammar across files.

#include "match/py_regex_parser.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <tuple>
#include <utility>
#include <vector>

#include "match/py_text.h"

namespace hgvfs::match {
namespace {

constexpr uint64_t kMaxRepeat = 4294967295u;  // _sre.MAXREPEAT
constexpr uint64_t kMaxGroups = 1073741823u;  // _sre.MAXGROUPS
constexpr uint64_t kSaturated = kPyIntSaturated;
constexpr uint64_t kPcre2MaxRepeat = 65535;  // PCRE2's limit inside {m,n}
constexpr int kMaxNesting = kPyMaxNesting;   // Python's recursion limit ends earlier

// sre flag bits (Lib/re/_constants.py).
constexpr unsigned kFlagTemplate = 1, kFlagIgnoreCase = 2, kFlagLocale = 4, kFlagMultiline = 8,
                   kFlagDotAll = 16, kFlagUnicode = 32, kFlagVerbose = 64, kFlagAscii = 256;
constexpr unsigned kTypeFlags = kFlagAscii | kFlagLocale | kFlagUnicode;
constexpr unsigned kGlobalFlags = kFlagTemplate;  // | DEBUG, which has no inline letter
static_assert(kFlagIgnoreCase == kPyFlagIgnoreCase && kFlagMultiline == kPyFlagMultiline &&
              kFlagDotAll == kPyFlagDotAll);

unsigned flagFor(char c) {
  switch (c) {
    case 'i':
      return kFlagIgnoreCase;
    case 'L':
      return kFlagLocale;
    case 'm':
      return kFlagMultiline;
    case 's':
      return kFlagDotAll;
    case 'x':
      return kFlagVerbose;
    case 'a':
      return kFlagAscii;
    case 't':
      return kFlagTemplate;
    case 'u':
      return kFlagUnicode;
    default:
      return 0;
  }
}

uint64_t satAdd(uint64_t a, uint64_t b) { return a > kSaturated - b ? kSaturated : a + b; }
uint64_t satMul(uint64_t a, uint64_t b) {
  if (a == 0 || b == 0) return 0;
  return a > kSaturated / b ? kSaturated : a * b;
}

// SubPattern.getwidth(): (min, max) length matched.
struct Width {
  uint64_t lo = 0, hi = 0;
};
Width capped(Width w) { return {std::min(w.lo, kMaxRepeat - 1), std::min(w.hi, kMaxRepeat)}; }

enum class ItemOp { kAt, kRepeat, kOther };

// One element of a SubPattern: its PCRE2 text and what the parser needs to
// know about it.
struct Item {
  ItemOp op;
  std::string re;
  Width width;
  size_t start;           // offset of its first character, for compile-time error order
  bool isBranch = false;  // "(?:a|b)" made by parseSub for an alternation
  bool isUnit = false;    // one PCRE2 atom a quantifier may follow directly
};
using Seq = std::vector<Item>;

Width seqWidth(const Seq& seq) {
  Width w;
  for (const Item& item : seq) {
    w.lo = satAdd(w.lo, item.width.lo);
    w.hi = satAdd(w.hi, item.width.hi);
  }
  return capped(w);
}
std::string seqText(const Seq& seq) {
  std::string out;
  for (const Item& item : seq) out += item.re;
  return out;
}

std::string pcreByte(unsigned char c) {
  char buf[12];
  std::snprintf(buf, sizeof buf, "\\x{%02x}", c);
  return buf;
}
std::string literalRe(unsigned char c) {
  if (isAsciiLetter(c) || isDigit(c)) return std::string(1, static_cast<char>(c));
  return pcreByte(c);
}

// What an escape stands for (_escape / _class_escape results).
struct Code {
  enum Kind { kLiteral, kCategory, kAt, kGroupRef } kind;
  uint64_t value;  // the byte, the category / anchor letter, or the group
};

class PyReParser {
 public:
  explicit PyReParser(ByteView pattern) : s_(pattern) { advance(); }

  ParsedPattern parse() {
    Seq p = parseSub(false, 0);
    if (flags_ & kFlagLocale && flags_ & kFlagAscii) {  // fix_flags
      throw PyReError{"ASCII and LOCALE flags are incompatible", std::nullopt, "ValueError"};
    }
    if (has_) fail("unbalanced parenthesis");
    for (const auto& [group, pos] : grouprefpos_) {
      if (group >= groupwidths_.size()) {
        throw PyReError{"invalid group reference " + std::to_string(group), pos};
      }
    }
    // _compiler.py: the first fixed-width violation or template repeat in
    // tree order.
    if (compileError_) throw PyReError{compileError_->msg, std::nullopt};
    return {seqText(p), flags_};
  }

 private:
  struct CompileError {
    size_t start;
    int order;
    std::string msg;
  };

  // --- Tokenizer ---------------------------------------------------------

  void advance() {
    size_t i = index_;
    if (i >= s_.size()) {
      has_ = false;
      next_.clear();
      return;
    }
    next_.assign(1, s_[i]);
    if (s_[i] == '\\') {
      ++i;
      if (i >= s_.size()) throw PyReError{"bad escape (end of pattern)", s_.size() - 1};
      next_ += s_[i];
    }
    index_ = i + 1;
    has_ = true;
  }
  bool nextIs(char c) const { return has_ && next_.size() == 1 && next_[0] == c; }
  bool nextIn(bool (*pred)(unsigned char)) const {
    return has_ && next_.size() == 1 && pred(static_cast<unsigned char>(next_[0]));
  }
  bool match(char c) {
    if (!nextIs(c)) return false;
    advance();
    return true;
  }
  std::string get() {  // "" is Python's None
    std::string t = has_ ? next_ : std::string();
    advance();
    return t;
  }
  std::string getWhile(int n, bool (*pred)(unsigned char)) {
    std::string out;
    for (int i = 0; i < n && nextIn(pred); ++i) out += get();
    return out;
  }
  std::string getUntil(char terminator, const std::string& name) {
    std::string result;
    for (;;) {
      std::string c = get();
      if (c.empty()) {
        if (result.empty()) fail("missing " + name);
        fail(std::string("missing ") + terminator + ", unterminated name", result.size());
      }
      if (c.size() == 1 && c[0] == terminator) {
        if (result.empty()) fail("missing " + name, 1);
        break;
      }
      result += c;
    }
    return result;
  }
  size_t tell() const { return index_ - (has_ ? next_.size() : 0); }
  void seek(size_t index) {
    index_ = index;
    advance();
  }
  [[noreturn]] void fail(const std::string& msg, size_t offset = 0) const {
    throw PyReError{msg, tell() - offset};
  }
  void checkGroupName(const std::string& name, size_t offset) const {
    if (!isIdentifier(name))
      fail("bad character in group name " + pyRepr(name), name.size() + offset);
  }

  // --- State ---------------------------------------------------------------

  size_t groups() const { return groupwidths_.size(); }
  bool checkGroup(uint64_t gid) const { return gid < groups() && groupwidths_[gid].has_value(); }
  void checkLookbehindGroup(uint64_t gid) const {
    if (!lookbehindgroups_) return;
    if (!checkGroup(gid)) fail("cannot refer to an open group");
    if (gid >= *lookbehindgroups_) {
      fail("cannot refer to group defined in the same lookbehind subpattern");
    }
  }
  void noteCompileError(size_t start, int order, std::string msg) {
    if (!compileError_ ||
        std::pair(start, order) < std::pair(compileError_->start, compileError_->order)) {
      compileError_ = CompileError{start, order, std::move(msg)};
    }
  }

  // --- Escapes -------------------------------------------------------------

  Code escapeCommon(std::string escape, bool inClass) {
    char c = escape[1];
    switch (c) {
      case 'a':
        return {Code::kLiteral, 7};
      case 'f':
        return {Code::kLiteral, 12};
      case 'n':
        return {Code::kLiteral, 10};
      case 'r':
        return {Code::kLiteral, 13};
      case 't':
        return {Code::kLiteral, 9};
      case 'v':
        return {Code::kLiteral, 11};
      case '\\':
        return {Code::kLiteral, '\\'};
      case 'd':
      case 'D':
      case 's':
      case 'S':
      case 'w':
      case 'W':
        return {Code::kCategory, static_cast<uint64_t>(c)};
      default:
        break;
    }
    if (c == 'x') {
      escape += getWhile(2, isHexDigit);
      if (escape.size() != 4) fail("incomplete escape " + escape, escape.size());
      return {Code::kLiteral, std::strtoul(escape.c_str() + 2, nullptr, 16)};
    }
    if (inClass && isOctDigit(c)) {
      escape += getWhile(2, isOctDigit);
      uint64_t v = std::strtoul(escape.c_str() + 1, nullptr, 8);
      if (v > 0377) {
        fail("octal escape value " + escape + " outside of range 0-0o377", escape.size());
      }
      return {Code::kLiteral, v};
    }
    if (!inClass && c == '0') {
      escape += getWhile(2, isOctDigit);
      return {Code::kLiteral, std::strtoul(escape.c_str() + 1, nullptr, 8)};
    }
    if (isDigit(c)) {
      if (inClass) fail("bad escape " + escape, escape.size());
      return digitEscape(std::move(escape));
    }
    if (isAsciiLetter(c)) fail("bad escape " + escape, escape.size());
    return {Code::kLiteral, static_cast<unsigned char>(c)};
  }

  // \1..\99 (a group reference) or \1nn (an octal escape), outside classes.
  Code digitEscape(std::string escape) {
    if (nextIn(isDigit)) {
      escape += get();
      if (isOctDigit(escape[1]) && isOctDigit(escape[2]) && nextIn(isOctDigit)) {
        escape += get();
        uint64_t v = std::strtoul(escape.c_str() + 1, nullptr, 8);
        if (v > 0377) {
          fail("octal escape value " + escape + " outside of range 0-0o377", escape.size());
        }
        return {Code::kLiteral, v};
      }
    }
    uint64_t group = std::strtoul(escape.c_str() + 1, nullptr, 10);
    if (group < groups()) {
      if (!checkGroup(group)) fail("cannot refer to an open group", escape.size());
      checkLookbehindGroup(group);
      return {Code::kGroupRef, group};
    }
    fail("invalid group reference " + std::to_string(group), escape.size() - 1);
  }

  Code escape(const std::string& escape) {
    switch (escape[1]) {
      case 'A':
      case 'b':
      case 'B':
      case 'Z':
        return {Code::kAt, static_cast<uint64_t>(escape[1])};
      default:
        return escapeCommon(escape, false);
    }
  }

  Code classEscape(const std::string& escape) {
    if (escape[1] == 'b') return {Code::kLiteral, 8};
    return escapeCommon(escape, true);
  }

  Item itemFor(const Code& code, size_t start) const {
    switch (code.kind) {
      case Code::kLiteral:
        return {ItemOp::kOther, literalRe(static_cast<unsigned char>(code.value)),
                {1, 1},         start,
                false,          true};
      case Code::kCategory:
        return {ItemOp::kOther, std::string("\\") + static_cast<char>(code.value),
                {1, 1},         start,
                false,          true};
      case Code::kGroupRef:
        return {ItemOp::kOther,
                "\\g{" + std::to_string(code.value) + "}",
                *groupwidths_[code.value],
                start,
                false,
                true};
      case Code::kAt:
        break;
    }
    switch (code.value) {
      case 'A':
        return {ItemOp::kAt, "\\A", {}, start};
      case 'b':
        return {ItemOp::kAt, "\\b", {}, start};
      // sre's \B never matches in an empty string; PCRE2's does.
      case 'B':
        return {ItemOp::kAt, "(?!\\A\\z)\\B", {}, start};
      default:
        return {ItemOp::kAt, "\\z", {}, start};  // Python's \Z
    }
  }

  // --- Grammar -------------------------------------------------------------

  Seq parseSub(bool verbose, int nested) {
    if (nested > kMaxNesting) {
      throw PyReError{"maximum recursion depth exceeded", std::nullopt, "RecursionError"};
    }
    size_t start = tell();
    std::vector<Seq> items;
    for (;;) {
      items.push_back(parse(verbose, nested + 1, nested == 0 && items.empty()));
      if (!match('|')) break;
      if (nested == 0) verbose = flags_ & kFlagVerbose;
    }
    if (items.size() == 1) return std::move(items[0]);
    Width w{kMaxRepeat - 1, 0};
    std::string re = "(?:";
    for (size_t i = 0; i < items.size(); ++i) {
      Width iw = seqWidth(items[i]);
      w.lo = std::min(w.lo, iw.lo);
      w.hi = std::max(w.hi, iw.hi);
      if (i) re += '|';
      re += seqText(items[i]);
    }
    re += ')';
    return Seq{Item{ItemOp::kOther, std::move(re), w, start, true, true}};
  }

  Seq parse(bool verbose, int nested, bool first = false) {
    if (nested > kMaxNesting) {
      throw PyReError{"maximum recursion depth exceeded", std::nullopt, "RecursionError"};
    }
    Seq sp;
    while (has_ && !nextIs('|') && !nextIs(')')) {
      size_t itemStart = tell();
      std::string tok = get();
      if (verbose) {
        if (tok.size() == 1 && tok[0] != '\0' && std::strchr(" \t\n\r\v\f", tok[0])) continue;
        if (tok == "#") {
          for (;;) {
            tok = get();
            if (tok.empty() || tok == "\n") break;
          }
          continue;
        }
      }
      if (tok[0] == '\\') {
        sp.push_back(itemFor(escape(tok), itemStart));
        continue;
      }
      switch (tok[0]) {
        case '[':
          sp.push_back(parseClass(itemStart));
          break;
        case '*':
        case '+':
        case '?':
        case '{':
          parseRepeat(sp, tok[0], itemStart);
          break;
        case '.':
          sp.push_back({ItemOp::kOther, ".", {1, 1}, itemStart, false, true});
          break;
        case '(':
          parseGroup(sp, verbose, nested, first, itemStart);
          if (groupSetVerbose_) {
            verbose = flags_ & kFlagVerbose;
            groupSetVerbose_ = false;
          }
          break;
        case '^':
          sp.push_back({ItemOp::kAt, "^", {}, itemStart});
          break;
        case '$':
          sp.push_back({ItemOp::kAt, "$", {}, itemStart});
          break;
        default:
          sp.push_back(itemFor({Code::kLiteral, static_cast<unsigned char>(tok[0])}, itemStart));
          break;
      }
    }
    return sp;
  }

  Item parseClass(size_t itemStart) {
    size_t here = tell() - 1;
    bool negate = match('^');
    std::vector<std::string> members;
    for (;;) {
      std::string tok = get();
      if (tok.empty()) fail("unterminated character set", tell() - here);
      if (tok == "]" && !members.empty()) break;
      Code code1 = tok[0] == '\\' ? classEscape(tok)
                                  : Code{Code::kLiteral, static_cast<unsigned char>(tok[0])};
      if (match('-')) {
        std::string that = get();
        if (that.empty()) fail("unterminated character set", tell() - here);
        if (that == "]") {
          members.push_back(classMember(code1));
          members.push_back(classMember({Code::kLiteral, '-'}));
          break;
        }
        Code code2 = that[0] == '\\' ? classEscape(that)
                                     : Code{Code::kLiteral, static_cast<unsigned char>(that[0])};
        if (code1.kind != Code::kLiteral || code2.kind != Code::kLiteral ||
            code2.value < code1.value) {
          fail("bad character range " + tok + "-" + that, tok.size() + 1 + that.size());
        }
        members.push_back(classMember(code1) + "-" + classMember(code2));
      } else {
        members.push_back(classMember(code1));
      }
    }
    std::string re = negate ? "[^" : "[";
    for (const auto& m : members) re += m;
    return {ItemOp::kOther, re + "]", {1, 1}, itemStart, false, true};
  }

  static std::string classMember(const Code& code) {
    if (code.kind == Code::kCategory) return std::string("\\") + static_cast<char>(code.value);
    return pcreByte(static_cast<unsigned char>(code.value));
  }

  void parseRepeat(Seq& sp, char kind, size_t itemStart) {
    size_t here = tell();
    uint64_t min = 0, max = kMaxRepeat;
    if (kind == '?') {
      max = 1;
    } else if (kind == '+') {
      min = 1;
    } else if (kind == '{') {
      if (nextIs('}')) {
        sp.push_back(itemFor({Code::kLiteral, '{'}, itemStart));
        return;
      }
      std::string lo, hi;
      while (nextIn(isDigit)) lo += get();
      if (match(',')) {
        while (nextIn(isDigit)) hi += get();
      } else {
        hi = lo;
      }
      if (!match('}')) {
        sp.push_back(itemFor({Code::kLiteral, '{'}, itemStart));
        seek(here);
        return;
      }
      bool neg = false;
      if (!lo.empty()) {
        min = *pyInt(lo, &neg);
        if (min >= kMaxRepeat) {
          throw PyReError{"the repetition number is too large", std::nullopt, "OverflowError"};
        }
      }
      if (!hi.empty()) {
        max = *pyInt(hi, &neg);
        if (max >= kMaxRepeat) {
          throw PyReError{"the repetition number is too large", std::nullopt, "OverflowError"};
        }
        if (max < min) fail("min repeat greater than max repeat", tell() - here);
      }
    }
    if (sp.empty() || sp.back().op == ItemOp::kAt) fail("nothing to repeat", tell() - here + 1);
    if (sp.back().op == ItemOp::kRepeat) fail("multiple repeat", tell() - here + 1);
    const char* suffix = "";
    const char* opName = "MAX_REPEAT";
    if (match('?')) {
      suffix = "?";
      opName = "MIN_REPEAT";
    } else if (match('+')) {
      suffix = "+";
      opName = "POSSESSIVE_REPEAT";
    }
    Item& item = sp.back();
    if (flags_ & kFlagTemplate) {
      noteCompileError(item.start, 0,
                       std::string("internal: unsupported template operator ") + opName);
    }
    Width iw = capped(item.width);
    item.width = {satMul(iw.lo, min), satMul(iw.hi, max)};
    item.re = repeatRe(item.isUnit ? item.re : "(?:" + item.re + ")", iw, min, max) + suffix;
    item.op = ItemOp::kRepeat;
  }

  // PCRE2 caps counts at 65535. Beyond that the result is exact for subjects
  // shorter than 64 KiB, which every path is. (PCRE2 copies a repeated group
  // once per count, so a large count on a group may still be too large.)
  static std::string repeatRe(const std::string& atom, Width itemWidth, uint64_t min,
                              uint64_t max) {
    if (min > kPcre2MaxRepeat && itemWidth.lo >= 1) return "(?!)";
    min = std::min(min, kPcre2MaxRepeat);
    if (max != kMaxRepeat) max = std::min(max, kPcre2MaxRepeat);
    std::string q;
    if (min == 0 && max == 1) {
      q = "?";
    } else if (min == 0 && max == kMaxRepeat) {
      q = "*";
    } else if (min == 1 && max == kMaxRepeat) {
      q = "+";
    } else if (max == kMaxRepeat) {
      q = "{" + std::to_string(min) + ",}";
    } else if (min == max) {
      q = "{" + std::to_string(min) + "}";
    } else {
      q = "{" + std::to_string(min) + "," + std::to_string(max) + "}";
    }
    return atom + q;
  }

  void parseGroup(Seq& sp, bool verbose, int nested, bool first, size_t start) {
    bool capture = true, atomic = false;
    std::optional<std::string> name;
    unsigned addFlags = 0, delFlags = 0;
    if (match('?')) {
      std::string c = get();
      if (c.empty()) fail("unexpected end of pattern");
      if (c == "P") {
        if (match('<')) {
          name = getUntil('>', "group name");
          checkGroupName(*name, 1);
        } else if (match('=')) {
          std::string ref = getUntil(')', "group name");
          checkGroupName(ref, 1);
          auto it = groupdict_.find(ref);
          if (it == groupdict_.end()) fail("unknown group name " + pyRepr(ref), ref.size() + 1);
          if (!checkGroup(it->second)) fail("cannot refer to an open group", ref.size() + 1);
          checkLookbehindGroup(it->second);
          sp.push_back(itemFor({Code::kGroupRef, it->second}, start));
          return;
        } else {
          c = get();
          if (c.empty()) fail("unexpected end of pattern");
          fail("unknown extension ?P" + c, c.size() + 2);
        }
      } else if (c == ":") {
        capture = false;
      } else if (c == "#") {
        for (;;) {
          if (!has_) fail("missing ), unterminated comment", tell() - start);
          if (get() == ")") break;
        }
        return;
      } else if (c == "=" || c == "!" || c == "<") {
        parseLookaround(sp, c, verbose, nested, start);
        return;
      } else if (c == "(") {
        parseConditional(sp, verbose, nested, start);
        return;
      } else if (c == ">") {
        capture = false;
        atomic = true;
      } else if ((c.size() == 1 && flagFor(c[0])) || c == "-") {
        auto flags = parseFlags(c);
        if (!flags) {
          if (!first || !sp.empty()) {
            fail("global flags not at the start of the expression", tell() - start);
          }
          groupSetVerbose_ = true;
          return;
        }
        std::tie(addFlags, delFlags) = *flags;
        capture = false;
      } else {
        fail("unknown extension ?" + c, c.size() + 1);
      }
    }
    std::optional<size_t> gid;
    if (capture) gid = openGroup(name);
    bool subVerbose = (verbose || (addFlags & kFlagVerbose)) && !(delFlags & kFlagVerbose);
    Seq p = parseSub(subVerbose, nested + 1);
    if (!match(')')) fail("missing ), unterminated subpattern", tell() - start);
    Width w = seqWidth(p);
    if (gid) groupwidths_[*gid] = w;
    std::string open;
    if (gid) {
      open = "(";
    } else if (atomic) {
      open = "(?>";
    } else {
      open = "(?" + pcre2Flags(addFlags);
      std::string del = pcre2Flags(delFlags);
      if (!del.empty()) open += "-" + del;
      open += ":";
    }
    sp.push_back({ItemOp::kOther, open + seqText(p) + ")", w, start, false, true});
  }

  static std::string pcre2Flags(unsigned flags) {
    std::string out;
    if (flags & kFlagIgnoreCase) out += 'i';
    if (flags & kFlagMultiline) out += 'm';
    if (flags & kFlagDotAll) out += 's';
    return out;
  }

  size_t openGroup(const std::optional<std::string>& name) {
    size_t gid = groups();
    groupwidths_.emplace_back();
    size_t offset = name ? name->size() + 1 : 0;
    if (groups() > kMaxGroups) fail("too many groups", offset);
    if (name) {
      auto it = groupdict_.find(*name);
      if (it != groupdict_.end()) {
        fail("redefinition of group name " + pyRepr(*name) + " as group " + std::to_string(gid) +
                 "; was group " + std::to_string(it->second),
             offset);
      }
      groupdict_[*name] = gid;
    }
    return gid;
  }

  void parseLookaround(Seq& sp, std::string c, bool verbose, int nested, size_t start) {
    bool behind = false;
    std::optional<size_t> savedLookbehind;
    if (c == "<") {
      c = get();
      if (c.empty()) fail("unexpected end of pattern");
      if (c != "=" && c != "!") fail("unknown extension ?<" + c, c.size() + 2);
      behind = true;
      savedLookbehind = lookbehindgroups_;
      if (!lookbehindgroups_) lookbehindgroups_ = groups();
    }
    Seq p = parseSub(verbose, nested + 1);
    if (behind && !savedLookbehind) lookbehindgroups_.reset();
    if (!match(')')) fail("missing ), unterminated subpattern", tell() - start);
    if (behind) {
      Width w = seqWidth(p);
      if (w.lo != w.hi) noteCompileError(start, 1, "look-behind requires fixed-width pattern");
    }
    std::string open = behind ? (c == "=" ? "(?<=" : "(?<!") : (c == "=" ? "(?=" : "(?!");
    // A lone alternation stays top-level so PCRE2 sees per-branch lengths.
    std::string body = seqText(p);
    if (p.size() == 1 && p[0].isBranch) body = body.substr(3, body.size() - 4);
    sp.push_back({ItemOp::kOther, open + body + ")", {}, start});
  }

  void parseConditional(Seq& sp, bool verbose, int nested, size_t start) {
    std::string condname = getUntil(')', "group name");
    uint64_t condgroup;
    if (isIdentifier(condname)) {
      auto it = groupdict_.find(condname);
      if (it == groupdict_.end()) {
        fail("unknown group name " + pyRepr(condname), condname.size() + 1);
      }
      condgroup = it->second;
    } else {
      bool negative = false;
      auto v = pyInt(condname, &negative);
      if (!v || (negative && *v != 0)) {
        fail("bad character in group name " + pyRepr(condname), condname.size() + 1);
      }
      condgroup = negative ? 0 : *v;
      if (condgroup == 0) fail("bad group number", condname.size() + 1);
      if (condgroup >= kMaxGroups) {
        fail("invalid group reference " + std::to_string(condgroup), condname.size() + 1);
      }
      bool seen = std::any_of(grouprefpos_.begin(), grouprefpos_.end(),
                              [&](const auto& g) { return g.first == condgroup; });
      if (!seen) grouprefpos_.emplace_back(condgroup, tell() - condname.size() - 1);
    }
    checkLookbehindGroup(condgroup);
    Seq yes = parse(verbose, nested + 1);
    std::optional<Seq> no;
    if (match('|')) {
      no = parse(verbose, nested + 1);
      if (nextIs('|')) fail("conditional backref with more than two branches");
    }
    if (!match(')')) fail("missing ), unterminated subpattern", tell() - start);
    Width w = seqWidth(yes);
    if (no) {
      Width nw = seqWidth(*no);
      w = {std::min(w.lo, nw.lo), std::max(w.hi, nw.hi)};
    } else {
      w.lo = 0;
    }
    std::string re = "(?(" + std::to_string(condgroup) + ")" + seqText(yes);
    if (no) re += "|" + seqText(*no);
    sp.push_back({ItemOp::kOther, re + ")", w, start});
  }

  // _parse_flags: nullopt for global flags "(?i)", else (add, del) for "(?i-s:".
  std::optional<std::pair<unsigned, unsigned>> parseFlags(std::string c) {
    unsigned add = 0, del = 0;
    auto isFlag = [](const std::string& t) { return t.size() == 1 && flagFor(t[0]); };
    auto isAlpha = [](const std::string& t) {
      return t.size() == 1 && isLatin1Alpha(static_cast<unsigned char>(t[0]));
    };
    if (c != "-") {
      for (;;) {
        unsigned flag = flagFor(c[0]);
        if (c == "u") fail("bad inline flags: cannot use 'u' flag with a bytes pattern");
        add |= flag;
        if ((flag & kTypeFlags) && (add & kTypeFlags) != flag) {
          fail("bad inline flags: flags 'a', 'u' and 'L' are incompatible");
        }
        c = get();
        if (c.empty()) fail("missing -, : or )");
        if (c == ")" || c == "-" || c == ":") break;
        if (!isFlag(c)) fail(isAlpha(c) ? "unknown flag" : "missing -, : or )", c.size());
      }
    }
    if (c == ")") {
      flags_ |= add;
      return std::nullopt;
    }
    if (add & kGlobalFlags) fail("bad inline flags: cannot turn on global flag", 1);
    if (c == "-") {
      c = get();
      if (c.empty()) fail("missing flag");
      if (!isFlag(c)) fail(isAlpha(c) ? "unknown flag" : "missing flag", c.size());
      for (;;) {
        unsigned flag = flagFor(c[0]);
        if (flag & kTypeFlags) fail("bad inline flags: cannot turn off flags 'a', 'u' and 'L'");
        del |= flag;
        c = get();
        if (c.empty()) fail("missing :");
        if (c == ":") break;
        if (!isFlag(c)) fail(isAlpha(c) ? "unknown flag" : "missing :", c.size());
      }
    }
    if (del & kGlobalFlags) fail("bad inline flags: cannot turn off global flag", 1);
    if (add & del) fail("bad inline flags: flag turned on and off", 1);
    return std::pair(add, del);
  }

  ByteView s_;
  size_t index_ = 0;
  std::string next_;
  bool has_ = false;

  unsigned flags_ = 0;
  std::map<std::string, size_t> groupdict_;
  std::vector<std::optional<Width>> groupwidths_{std::nullopt};  // group 0
  std::optional<size_t> lookbehindgroups_;
  std::vector<std::pair<uint64_t, size_t>> grouprefpos_;  // insertion order, as the dict
  std::optional<CompileError> compileError_;
  bool groupSetVerbose_ = false;
};

}  // namespace

std::variant<ParsedPattern, PyReError> parsePythonPattern(ByteView pattern) {
  try {
    return PyReParser(pattern).parse();
  } catch (const PyReError& e) {
    return e;
  }
}

}  // namespace hgvfs::match
