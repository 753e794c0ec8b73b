#include "hgbridge/ignore.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <fcntl.h>
#include <pcre2.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <tuple>
#include <utility>

namespace hgvfs::hg {
namespace {

// ===========================================================================
// Python 3.11 `re` for bytes patterns (Lib/re/_parser.py, _compiler.py),
// translated to PCRE2.
//
// The parser below follows _parser.py function by function so that it
// accepts and rejects exactly what Python does, with Python's messages and
// positions. Instead of sre opcodes it emits PCRE2 text in a form whose
// meaning cannot drift: every literal byte is \x{hh} (or a plain ASCII
// letter/digit), every class lists its members, every quantified item is
// wrapped in (?:...), group references are numbered. Python's scoped flags
// (?i:) (?m:) (?s:) map to PCRE2's; (?x) is applied while parsing; a, L, u
// only choose character tables, and for bytes Python's tables are ASCII,
// like PCRE2's built-in ones (L assumes a C or UTF-8 locale).
//
// Errors are thrown as PyReError inside this section only and caught by
// PyRegex::compile.
// ===========================================================================

constexpr uint64_t kMaxRepeat = 4294967295u;  // _sre.MAXREPEAT
constexpr uint64_t kMaxGroups = 1073741823u;  // _sre.MAXGROUPS
constexpr uint64_t kSaturated = uint64_t{1} << 62;
constexpr uint64_t kPcre2MaxRepeat = 65535;  // PCRE2's limit inside {m,n}
constexpr int kMaxNesting = 400;             // Python's recursion limit ends earlier

// sre flag bits (Lib/re/_constants.py).
constexpr unsigned kFlagTemplate = 1, kFlagIgnoreCase = 2, kFlagLocale = 4, kFlagMultiline = 8,
                   kFlagDotAll = 16, kFlagUnicode = 32, kFlagVerbose = 64, kFlagAscii = 256;
constexpr unsigned kTypeFlags = kFlagAscii | kFlagLocale | kFlagUnicode;
constexpr unsigned kGlobalFlags = kFlagTemplate;  // | DEBUG, which has no inline letter

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

struct PyReError {
  std::string msg;
  std::optional<size_t> pos;
  const char* type = nullptr;  // a Python exception other than re.error
};

bool isAsciiLetter(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
bool isDigit(unsigned char c) { return c >= '0' && c <= '9'; }
bool isOctDigit(unsigned char c) { return c >= '0' && c <= '7'; }
bool isHexDigit(unsigned char c) { return isDigit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }

// str.isalpha() of one Latin-1 character (the tokenizer decodes bytes as Latin-1).
bool isLatin1Alpha(unsigned char c) {
  return isAsciiLetter(c) || c == 0xaa || c == 0xb5 || c == 0xba ||
         (c >= 0xc0 && c != 0xd7 && c != 0xf7);
}
bool isIdentifierStart(unsigned char c) { return c == '_' || isLatin1Alpha(c); }
bool isIdentifierContinue(unsigned char c) {
  return isIdentifierStart(c) || isDigit(c) || c == 0xb7;
}
bool isIdentifier(const std::string& s) {
  if (s.empty() || !isIdentifierStart(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin() + 1, s.end(),
                     [](char c) { return isIdentifierContinue(static_cast<unsigned char>(c)); });
}
// str.isspace() of one Latin-1 character.
bool isLatin1Space(unsigned char c) {
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0;
}

std::string hexByte(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\x%02x", c);
  return buf;
}

// repr() of a Latin-1 str, then encode('ascii', 'backslashreplace'), as
// Tokenizer.error does for bytes patterns.
std::string pyRepr(const std::string& s) {
  char quote = '\'';
  if (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) quote = '"';
  std::string out(1, quote);
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (ch == quote || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (ch == '\t') {
      out += "\\t";
    } else if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c >= 0x7f) {
      out += hexByte(c);
    } else {
      out += ch;
    }
  }
  return out + quote;
}

// int(s) for a str s; nullopt for ValueError. Saturates instead of growing.
std::optional<uint64_t> pyInt(const std::string& s, bool* negative) {
  size_t b = 0, e = s.size();
  while (b < e && isLatin1Space(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && isLatin1Space(static_cast<unsigned char>(s[e - 1]))) --e;
  *negative = false;
  if (b < e && (s[b] == '+' || s[b] == '-')) *negative = s[b++] == '-';
  if (b == e) return std::nullopt;
  uint64_t v = 0;
  bool prevDigit = false;
  for (size_t i = b; i < e; ++i) {
    if (s[i] == '_') {
      if (!prevDigit || i + 1 == e) return std::nullopt;
      prevDigit = false;
      continue;
    }
    if (!isDigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
    v = std::min(kSaturated, v * 10 + static_cast<uint64_t>(s[i] - '0'));
    prevDigit = true;
  }
  return v;
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

struct ParsedPattern {
  std::string pcre2;
  unsigned flags = 0;
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

// str(re.error): "msg at position N", plus "(line L, column C)" when the
// pattern has a newline.
std::string pyErrorText(const PyReError& e, ByteView pattern) {
  std::string msg;
  for (char ch : e.msg) {
    auto c = static_cast<unsigned char>(ch);
    msg += c >= 0x80 ? hexByte(c) : std::string(1, ch);
  }
  if (e.type) return std::string(e.type) + ": " + msg;
  if (!e.pos) return msg;
  size_t pos = *e.pos;
  msg += " at position " + std::to_string(pos);
  if (pattern.find('\n') != ByteView::npos) {
    ByteView before = pattern.substr(0, pos);
    size_t line = static_cast<size_t>(std::count(before.begin(), before.end(), '\n')) + 1;
    size_t nl = before.rfind('\n');
    size_t col = nl == ByteView::npos ? pos + 1 : pos - nl;
    msg += " (line " + std::to_string(line) + ", column " + std::to_string(col) + ")";
  }
  return msg;
}

// --- PCRE2 plumbing ----------------------------------------------------------

struct Pcre2Contexts {
  pcre2_compile_context* compile = nullptr;
  pcre2_match_context* generous = nullptr;  // for the interpreter retry
  Pcre2Contexts() {
    compile = pcre2_compile_context_create(nullptr);
    pcre2_set_newline(compile, PCRE2_NEWLINE_LF);
    pcre2_set_parens_nest_limit(compile, 4 * kMaxNesting);
    generous = pcre2_match_context_create(nullptr);
    pcre2_set_match_limit(generous, UINT32_MAX);
    pcre2_set_depth_limit(generous, UINT32_MAX);
    pcre2_set_heap_limit(generous, 256 * 1024);  // KiB
  }
  ~Pcre2Contexts() {
    pcre2_compile_context_free(compile);
    pcre2_match_context_free(generous);
  }
};
const Pcre2Contexts& pcre2Contexts() {
  static const Pcre2Contexts contexts;
  return contexts;
}

// Match data per thread, grown to the largest pattern used on that thread.
class ThreadMatchData {
 public:
  ~ThreadMatchData() { pcre2_match_data_free(data_); }
  pcre2_match_data* get(uint32_t pairs) {
    if (pairs > pairs_) {
      pcre2_match_data_free(data_);
      data_ = pcre2_match_data_create(pairs, nullptr);
      pairs_ = pairs;
    }
    return data_;
  }

 private:
  pcre2_match_data* data_ = nullptr;
  uint32_t pairs_ = 0;
};

}  // namespace

struct PyRegex::Impl {
  pcre2_code* code = nullptr;
  std::string pattern;
  uint32_t pairs = 1;
  ~Impl() { pcre2_code_free(code); }
};

PyRegex::PyRegex(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PyRegex::PyRegex(PyRegex&&) noexcept = default;
PyRegex& PyRegex::operator=(PyRegex&&) noexcept = default;
PyRegex::~PyRegex() = default;

Result<PyRegex> PyRegex::compile(ByteView pattern) {
  ParsedPattern parsed;
  try {
    parsed = PyReParser(pattern).parse();
  } catch (const PyReError& e) {
    // re.error is a rejected pattern; anything else (OverflowError, ...) is
    // an exception hg does not catch.
    if (e.type) return unsupported(pyErrorText(e, pattern));
    return invalidArgument(pyErrorText(e, pattern));
  }
  // re.match anchors at the start. NO_START_OPTIMIZE: PCRE2 10.42's start-of-match
  // optimisation gets "(?=a)b?a" on "ab" wrong, and anchored patterns barely use it.
  uint32_t options = PCRE2_ANCHORED | PCRE2_NEVER_UTF | PCRE2_NEVER_UCP | PCRE2_ALT_CIRCUMFLEX |
                     PCRE2_NEVER_BACKSLASH_C | PCRE2_NO_START_OPTIMIZE;
  if (parsed.flags & kFlagIgnoreCase) options |= PCRE2_CASELESS;
  if (parsed.flags & kFlagMultiline) options |= PCRE2_MULTILINE;
  if (parsed.flags & kFlagDotAll) options |= PCRE2_DOTALL;
  int err = 0;
  PCRE2_SIZE offset = 0;
  auto impl = std::make_unique<Impl>();
  impl->pattern = parsed.pcre2;
  impl->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(parsed.pcre2.data()), parsed.pcre2.size(),
                             options, &err, &offset, pcre2Contexts().compile);
  if (!impl->code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    auto shown = [](ByteView p) {
      return p.size() > 200 ? printable(p.substr(0, 200)) + "..." : printable(p);
    };
    return unsupported("PCRE2 cannot compile " + shown(parsed.pcre2) + " (from Python " +
                       shown(pattern) + "): " + reinterpret_cast<const char*>(buf) + " at offset " +
                       std::to_string(offset));
  }
  uint32_t captures = 0;
  pcre2_pattern_info(impl->code, PCRE2_INFO_CAPTURECOUNT, &captures);
  impl->pairs = captures + 1;
  // JIT is an optimisation: without it pcre2_match interprets.
  (void)pcre2_jit_compile(impl->code, PCRE2_JIT_COMPLETE);
  return PyRegex(std::move(impl));
}

bool PyRegex::match(ByteView subject) const {
  thread_local ThreadMatchData tls;
  pcre2_match_data* md = tls.get(impl_->pairs);
  auto subj = reinterpret_cast<PCRE2_SPTR>(subject.data() ? subject.data() : "");
  int rc = pcre2_match(impl_->code, subj, subject.size(), 0, 0, md, nullptr);
  if (rc >= 0) return true;
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  // The JIT stack or a default limit ran out; Python's engine has no limit,
  // so try once more, interpreted, with generous ones.
  rc =
      pcre2_match(impl_->code, subj, subject.size(), 0, PCRE2_NO_JIT, md, pcre2Contexts().generous);
  return rc >= 0;
}

const std::string& PyRegex::pcre2Pattern() const { return impl_->pattern; }

// ===========================================================================
// Mercurial's ignore files (mercurial/match.py, dirstate.py, pathutil.py).
// ===========================================================================

namespace {

constexpr size_t kMaxReSize = 20000;  // match.MAX_RE_SIZE
constexpr int kMaxIncludeDepth = 64;  // hg recurses until Python gives up

bool startsWith(ByteView s, ByteView prefix) { return s.substr(0, prefix.size()) == prefix; }
bool isPyWhitespace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

ByteView rstrip(ByteView s) {
  while (!s.empty() && isPyWhitespace(s.back())) s.remove_suffix(1);
  return s;
}
ByteView strip(ByteView s) {
  s = rstrip(s);
  while (!s.empty() && isPyWhitespace(s.front())) s.remove_prefix(1);
  return s;
}

std::string replaceAll(std::string s, ByteView from, ByteView to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

// posixpath.normpath for bytes.
std::string normpath(ByteView path) {
  if (path.empty()) return ".";
  size_t initialSlashes = 0;
  if (path[0] == '/') initialSlashes = (startsWith(path, "//") && !startsWith(path, "///")) ? 2 : 1;
  std::vector<ByteView> comps;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == ByteView::npos) slash = path.size();
    ByteView comp = path.substr(pos, slash - pos);
    pos = slash + 1;
    if (comp.empty() || comp == ".") continue;
    if (comp != ".." || (!initialSlashes && comps.empty()) ||
        (!comps.empty() && comps.back() == "..")) {
      comps.push_back(comp);
    } else if (!comps.empty()) {
      comps.pop_back();
    }
  }
  std::string out(initialSlashes, '/');
  for (size_t i = 0; i < comps.size(); ++i) {
    if (i) out += '/';
    out += comps[i];
  }
  return out.empty() ? "." : out;
}

// posixpath.join(a, b).
std::string pyJoin(ByteView a, ByteView b) {
  if (startsWith(b, "/")) return std::string(b);
  std::string out(a);
  if (!out.empty() && out.back() != '/') out += '/';
  return out + std::string(b);
}

// posixpath.split(p).
std::pair<std::string, std::string> pySplit(ByteView p) {
  size_t i = p.rfind('/') + 1;  // npos + 1 == 0
  std::string head(p.substr(0, i));
  if (!head.empty() && head.find_first_not_of('/') != std::string::npos) {
    while (head.back() == '/') head.pop_back();
  }
  return {head, std::string(p.substr(i))};
}
std::string pyDirname(ByteView p) { return pySplit(p).first; }

bool sameFile(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return stat(a.c_str(), &sa) == 0 && stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

std::string asciiLower(ByteView s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

std::vector<std::string> splitSlash(ByteView s) {
  std::vector<std::string> parts;
  size_t pos = 0;
  for (;;) {
    size_t slash = s.find('/', pos);
    parts.emplace_back(s.substr(pos, slash == ByteView::npos ? ByteView::npos : slash - pos));
    if (slash == ByteView::npos) return parts;
    pos = slash + 1;
  }
}

// The lexical checks of pathutil.pathauditor (no file system checks).
std::optional<std::string> auditPath(const std::string& path) {
  if (!path.empty() && path.back() == '/') return "path ends in directory separator: " + path;
  std::vector<std::string> parts = splitSlash(path);
  std::string first = asciiLower(parts[0]);
  if (first == ".hg" || first == ".hg." || first.empty() ||
      std::find(parts.begin(), parts.end(), "..") != parts.end()) {
    return "path contains illegal component: " + path;
  }
  for (const auto& p : parts) {
    size_t tilde = p.find('~');
    if (tilde == std::string::npos) continue;
    std::string last = p.substr(tilde + 1);
    std::string upper = p.substr(0, tilde);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    bool digits = !last.empty() && std::all_of(last.begin(), last.end(), [](char c) {
      return isDigit(static_cast<unsigned char>(c));
    });
    if (digits && (upper == "HG" || upper == "HG8B6C")) {
      return "path contains illegal component: " + path;
    }
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    std::string l = asciiLower(parts[i]);
    if (l == ".hg" || l == ".hg.") {
      std::string base;
      for (size_t j = 0; j < i; ++j) base = j ? pyJoin(base, parts[j]) : parts[j];
      return "path '" + path + "' is inside nested repo " + pyRepr(base);
    }
  }
  return std::nullopt;
}

// pathutil.canonpath(root, root, name): `name` relative to the root, or an
// error message.
Result<std::string> canonPath(const std::string& root, ByteView myname) {
  std::string rootsep = (!root.empty() && root.back() == '/') ? root : root + "/";
  std::string name = normpath(pyJoin(root, myname));
  std::optional<std::string> rel;
  if (name != rootsep && startsWith(name, rootsep)) {
    rel = name.substr(rootsep.size());
  } else if (name == root) {
    return std::string();
  } else {
    std::vector<std::string> parts;
    for (;;) {
      if (sameFile(name, root)) {
        if (parts.empty()) return std::string();
        std::reverse(parts.begin(), parts.end());
        std::string joined;
        for (const auto& p : parts) joined = joined.empty() ? p : pyJoin(joined, p);
        rel = joined;
        break;
      }
      auto [dir, base] = pySplit(name);
      parts.push_back(base);
      if (dir == name) break;
      name = dir;
    }
  }
  if (!rel) return invalidArgument(std::string(myname) + " not under root '" + root + "'");
  if (auto bad = auditPath(*rel)) return invalidArgument(*bad);
  return *rel;
}

// posixpath.expandvars then expanduser, as util.expandpath.
std::string expandPath(ByteView path) {
  std::string s(path);
  for (size_t i = 0; (i = s.find('$', i)) != std::string::npos;) {
    size_t j = i + 1;
    std::string name;
    if (j < s.size() && s[j] == '{') {
      size_t close = s.find('}', j);
      if (close == std::string::npos) {
        ++i;
        continue;
      }
      name = s.substr(j + 1, close - j - 1);
      j = close + 1;
    } else {
      while (j < s.size() && (isAsciiLetter(s[j]) || isDigit(s[j]) || s[j] == '_')) ++j;
      name = s.substr(i + 1, j - i - 1);
      if (name.empty()) {
        ++i;
        continue;
      }
    }
    const char* value = name.empty() ? nullptr : std::getenv(name.c_str());
    if (!value) {
      i = j;
      continue;
    }
    s = s.substr(0, i) + value + s.substr(j);
    i += std::strlen(value);
  }
  if (!startsWith(s, "~")) return s;
  size_t slash = s.find('/', 1);
  if (slash == std::string::npos) slash = s.size();
  std::string home;
  if (slash == 1) {
    if (const char* h = std::getenv("HOME")) {
      home = h;
    } else if (const passwd* pw = getpwuid(getuid())) {
      home = pw->pw_dir;
    } else {
      return s;
    }
  } else {
    const passwd* pw = getpwnam(s.substr(1, slash - 1).c_str());
    if (!pw) return s;
    home = pw->pw_dir;
  }
  while (!home.empty() && home.back() == '/') home.pop_back();
  std::string out = home + s.substr(slash);
  return out.empty() ? "/" : out;
}

Result<std::string> readWholeFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ioError(errno, std::strerror(errno), path);
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      return ioError(e, std::strerror(e), path);
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return data;
}

// A line of a pattern file: "kind:pattern" as readpatternfile returns it.
struct PatternLine {
  std::string pattern;
  int lineno;
};

// Whether `line` has a '#' preceded by an even number of backslashes:
// readpatternfile's _commentre, ((?:^|[^\\])(?:\\\\)*)#.*
size_t commentStart(ByteView line) {
  for (size_t p = line.find('#'); p != ByteView::npos; p = line.find('#', p + 1)) {
    size_t k = 0;
    while (k < p && line[p - 1 - k] == '\\') ++k;
    if (k % 2 == 0) return p;
  }
  return ByteView::npos;
}

// match.readpatternfile.
std::vector<PatternLine> parsePatternFile(ByteView data, const std::string& filepath,
                                          std::vector<std::string>& warnings) {
  static const std::pair<const char*, const char*> kSyntaxes[] = {
      {"re", "relre:"},          {"regexp", "relre:"},   {"glob", "relglob:"},
      {"rootglob", "rootglob:"}, {"include", "include"}, {"subinclude", "subinclude"},
  };
  std::string syntax = "relre:";
  std::vector<PatternLine> out;
  int lineno = 0;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t nl = data.find('\n', pos);
    size_t end = nl == ByteView::npos ? data.size() : nl + 1;
    ByteView raw = data.substr(pos, end - pos);
    pos = end;
    ++lineno;
    std::string line(raw);
    if (raw.find('#') != ByteView::npos) {
      size_t c = commentStart(raw);
      if (c != ByteView::npos) line.resize(c);
      line = replaceAll(line, "\\#", "#");
    }
    line = std::string(rstrip(line));
    if (line.empty()) continue;
    if (startsWith(line, "syntax:")) {
      std::string s(strip(ByteView(line).substr(7)));
      auto it = std::find_if(std::begin(kSyntaxes), std::end(kSyntaxes),
                             [&](const auto& e) { return s == e.first; });
      if (it != std::end(kSyntaxes)) {
        syntax = it->second;
      } else {
        warnings.push_back(filepath + ": ignoring invalid syntax '" + s + "'");
      }
      continue;
    }
    std::string linesyntax = syntax;
    for (const auto& [s, rels] : kSyntaxes) {
      if (startsWith(line, rels)) {
        linesyntax = rels;
        line.erase(0, std::strlen(rels));
        break;
      }
      if (startsWith(line, std::string(s) + ":")) {
        linesyntax = rels;
        line.erase(0, std::strlen(s) + 1);
        break;
      }
    }
    out.push_back({linesyntax + line, lineno});
  }
  return out;
}

enum class Kind { kRelre, kRelglob, kRootglob, kGlob, kInclude, kSubinclude };

const char* kindName(Kind k) {
  switch (k) {
    case Kind::kRelre:
      return "relre";
    case Kind::kRelglob:
      return "relglob";
    case Kind::kRootglob:
      return "rootglob";
    case Kind::kGlob:
      return "glob";
    case Kind::kInclude:
      return "include";
    case Kind::kSubinclude:
      return "subinclude";
  }
  return "?";
}

// match._patsplit(pattern, 'glob'). Only these kinds can come out of a
// pattern file (readpatternfile prefixes every line with one of them, or with
// "include"/"subinclude" and no colon, which falls back to 'glob').
std::pair<Kind, std::string> patSplit(const std::string& pattern) {
  static const std::pair<const char*, Kind> kKinds[] = {
      {"relre", Kind::kRelre},     {"relglob", Kind::kRelglob},       {"rootglob", Kind::kRootglob},
      {"include", Kind::kInclude}, {"subinclude", Kind::kSubinclude},
  };
  size_t colon = pattern.find(':');
  if (colon != std::string::npos) {
    ByteView kind = ByteView(pattern).substr(0, colon);
    for (const auto& [name, k] : kKinds) {
      if (kind == name) return {k, pattern.substr(colon + 1)};
    }
  }
  return {Kind::kGlob, pattern};
}

// One normalised pattern: match._donormalize's (kind, pat, source), plus
// where it was read for messages.
struct KindPat {
  Kind kind;
  std::string pat;
  std::string source;  // the include path as hg names it; subinclude paths hang off it
  std::string file;    // the file actually read
  int lineno;
};

std::string where(const std::string& file, int lineno) {
  return file + ":" + std::to_string(lineno);
}

// match._globre.
std::string globRe(ByteView pat) {
  auto escape = [](char c) {
    static constexpr ByteView kSpecial = "()[]{}?*+-|^$\\.&~# \t\n\r\v\f";
    return kSpecial.find(c) != ByteView::npos ? std::string{'\\', c} : std::string(1, c);
  };
  size_t i = 0, n = pat.size();
  int group = 0;
  std::string res;
  while (i < n) {
    char c = pat[i++];
    switch (c) {
      case '*':
        if (i < n && pat[i] == '*') {
          ++i;
          if (i < n && pat[i] == '/') {
            ++i;
            res += "(?:.*/)?";
          } else {
            res += ".*";
          }
        } else {
          res += "[^/]*";
        }
        break;
      case '?':
        res += '.';
        break;
      case '[': {
        size_t j = i;
        if (j < n && (pat[j] == '!' || pat[j] == ']')) ++j;
        while (j < n && pat[j] != ']') ++j;
        if (j >= n) {
          res += "\\[";
          break;
        }
        std::string stuff = replaceAll(std::string(pat.substr(i, j - i)), "\\", "\\\\");
        i = j + 1;
        if (startsWith(stuff, "!")) {
          stuff = "^" + stuff.substr(1);
        } else if (startsWith(stuff, "^")) {
          stuff = "\\" + stuff;
        }
        res += "[" + stuff + "]";
        break;
      }
      case '{':
        ++group;
        res += "(?:";
        break;
      case '}':
        if (group) {
          res += ')';
          --group;
        } else {
          res += escape(c);
        }
        break;
      case ',':
        res += group ? "|" : escape(c);
        break;
      case '\\':
        if (i < n) {
          res += escape(pat[i++]);
        } else {
          res += escape(c);
        }
        break;
      default:
        res += escape(c);
        break;
    }
  }
  return res;
}

// match._regex(kind, pat, b'(?:/|$)') for the kinds an ignore file yields.
std::string regexFor(Kind kind, const std::string& pat) {
  static constexpr ByteView kGlobSuffix = "(?:/|$)";
  switch (kind) {
    case Kind::kGlob:
      if (pat.empty()) return "";
      [[fallthrough]];
    case Kind::kRootglob:
      return globRe(pat) + std::string(kGlobSuffix);
    case Kind::kRelglob: {
      std::string g = globRe(pat);
      if (startsWith(g, "[^/]*")) return ".*" + g.substr(5) + std::string(kGlobSuffix);
      return "(?:|.*/)" + g + std::string(kGlobSuffix);
    }
    case Kind::kRelre: {
      // FLAG_RE = ^\(\?([aiLmsux]+)\)(.*)
      std::string p = pat, flag;
      if (startsWith(p, "(?")) {
        size_t j = 2;
        while (j < p.size() && std::strchr("aiLmsux", p[j]) && p[j] != '\0') ++j;
        if (j > 2 && j < p.size() && p[j] == ')') {
          flag = p.substr(2, j - 2);
          p = p.substr(j + 1);
        }
      }
      if (!startsWith(p, "^")) p = ".*" + p;
      if (!flag.empty()) p = "(?" + flag + ":" + p + ")";
      return p;
    }
    case Kind::kInclude:
    case Kind::kSubinclude:
      break;
  }
  return "";
}

}  // namespace

// One matcher as match.match(root, '', [], ['include:...']) builds it: the
// joined regexps of its own patterns plus one sub-matcher per subinclude.
struct IgnoreMatcher::Level {
  struct Sub {
    std::string prefix;  // directory relative to this level's root, '/'-terminated or ""
    std::unique_ptr<Level> level;
  };
  std::vector<PyRegex> regexes;  // any of them matching means a match
  std::vector<Sub> subs;
  std::string regexText;

  bool matches(ByteView f) const {
    for (const Sub& sub : subs) {
      if (startsWith(f, sub.prefix) && sub.level->matches(f.substr(sub.prefix.size()))) {
        return true;
      }
    }
    return std::any_of(regexes.begin(), regexes.end(),
                       [&](const PyRegex& r) { return r.match(f); });
  }
  bool empty() const {
    return regexes.empty() &&
           std::all_of(subs.begin(), subs.end(), [](const Sub& s) { return s.level->empty(); });
  }
};

namespace {

struct LoadContext {
  std::vector<std::string>& warnings;
};

// match._donormalize(patterns, 'glob', root, root): includes read and
// expanded, paths normalised.
Status normalize(const std::vector<KindPat>& in, const std::string& root, int depth,
                 LoadContext& ctx, std::vector<KindPat>& out) {
  if (depth > kMaxIncludeDepth) {
    return unsupported("include: nesting deeper than " + std::to_string(kMaxIncludeDepth) +
                           " files (a cycle? hg recurses until Python's stack runs out)",
                       in.empty() ? std::string() : where(in[0].file, in[0].lineno));
  }
  for (const KindPat& kp : in) {
    KindPat n = kp;
    switch (kp.kind) {
      case Kind::kGlob: {
        auto rel = canonPath(root, kp.pat);
        if (!rel.ok()) return invalidArgument(rel.error().what, where(kp.file, kp.lineno));
        n.pat = *rel;
        break;
      }
      case Kind::kRelglob:
      case Kind::kRootglob:
        n.pat = normpath(kp.pat);
        break;
      case Kind::kInclude: {
        std::string fullpath = pyJoin(root, kp.pat);
        auto data = readWholeFile(fullpath);
        if (!data.ok()) {
          ctx.warnings.push_back("skipping unreadable pattern file '" + kp.pat +
                                 "': " + data.error().what);
          continue;
        }
        std::vector<KindPat> lines;
        for (auto& line : parsePatternFile(*data, fullpath, ctx.warnings)) {
          auto [k, p] = patSplit(line.pattern);
          lines.push_back({k, std::move(p), std::string(), fullpath, line.lineno});
        }
        std::vector<KindPat> expanded;
        HG_RETURN_IF_ERROR(normalize(lines, root, depth + 1, ctx, expanded));
        for (KindPat& e : expanded) {
          if (e.source.empty()) e.source = kp.pat;
          out.push_back(std::move(e));
        }
        continue;
      }
      case Kind::kRelre:
      case Kind::kSubinclude:
        break;
    }
    out.push_back(std::move(n));
  }
  return okStatus();
}

// match._buildregexmatch: hg's regexps joined with '|', in groups of at most
// MAX_RE_SIZE bytes; each group is one Python regexp.
Status buildRegexes(const std::vector<const KindPat*>& pats, std::vector<PyRegex>& out,
                    std::string& fullText) {
  std::vector<std::string> regexps;
  for (const KindPat* kp : pats) regexps.push_back(regexFor(kp->kind, kp->pat));
  std::vector<std::pair<size_t, size_t>> groups;  // [begin, end) into regexps
  size_t startidx = 0, groupsize = 0;
  for (size_t idx = 0; idx < regexps.size(); ++idx) {
    size_t piece = regexps[idx].size();
    if (piece > kMaxReSize) {
      return invalidArgument("matcher pattern is too long (" + std::to_string(piece) + " bytes)",
                             where(pats[idx]->file, pats[idx]->lineno));
    }
    if (groupsize + piece > kMaxReSize) {
      groups.emplace_back(startidx, idx);
      startidx = idx;
      groupsize = 0;
    }
    groupsize += piece + 1;
  }
  groups.emplace_back(startidx, regexps.size());
  auto join = [&](size_t b, size_t e) {
    std::string s;
    for (size_t i = b; i < e; ++i) s += (i > b ? "|" : "") + regexps[i];
    return s;
  };
  fullText = join(0, regexps.size());
  for (auto [b, e] : groups) {
    auto re = PyRegex::compile(join(b, e));
    if (re.ok()) {
      out.push_back(std::move(re).value());
      continue;
    }
    // As hg: name the first pattern that fails on its own.
    for (size_t i = 0; i < regexps.size(); ++i) {
      auto single = PyRegex::compile(regexps[i]);
      if (!single.ok()) {
        const KindPat& kp = *pats[i];
        Error err = std::move(single).takeError();
        err.what = "invalid pattern (" + std::string(kindName(kp.kind)) +
                   "): " + printable(kp.pat) + ": " + err.what;
        err.where = where(kp.file, kp.lineno);
        return err;
      }
    }
    Error err = std::move(re).takeError();
    err.what = "invalid pattern: " + err.what;
    err.where = where(pats[b]->file, pats[b]->lineno);
    return err;
  }
  return okStatus();
}

Result<std::unique_ptr<IgnoreMatcher::Level>> buildLevel(const std::string& root,
                                                         const std::vector<KindPat>& includes,
                                                         int depth, LoadContext& ctx);

// match._expandsubinclude: each subinclude becomes a matcher rooted at the
// subincluded file's directory, for paths under that directory.
Status addSubinclude(const KindPat& kp, const std::string& root, int depth, LoadContext& ctx,
                     IgnoreMatcher::Level& level) {
  std::string sourceroot = pyDirname(normpath(kp.source));
  std::string path = pyJoin(sourceroot, kp.pat);
  std::string newroot = pyDirname(path);
  auto prefix = canonPath(root, newroot);
  if (!prefix.ok()) return invalidArgument(prefix.error().what, where(kp.file, kp.lineno));
  std::string pfx = prefix->empty() ? std::string() : *prefix + "/";
  // hg caches sub-matchers by prefix, so the first subinclude of a directory wins.
  for (const auto& sub : level.subs) {
    if (sub.prefix == pfx) return okStatus();
  }
  if (!startsWith(newroot, "/")) {
    // The subinclude sits in a file included by a relative path; hg 6.3 dies
    // on `assert os.path.isabs(root)` when it first matches a path under it.
    ctx.warnings.push_back("subinclude '" + kp.pat + "' in " + where(kp.file, kp.lineno) +
                           " not applied: hg 6.3 fails on it (relative include path)");
    return okStatus();
  }
  std::vector<KindPat> include{{Kind::kInclude, path, std::string(), kp.file, kp.lineno}};
  HG_ASSIGN_OR_RETURN(auto sub, buildLevel(newroot, include, depth + 1, ctx));
  level.subs.push_back({std::move(pfx), std::move(sub)});
  return okStatus();
}

Result<std::unique_ptr<IgnoreMatcher::Level>> buildLevel(const std::string& root,
                                                         const std::vector<KindPat>& includes,
                                                         int depth, LoadContext& ctx) {
  if (depth > kMaxIncludeDepth) {
    return unsupported("subinclude: nesting deeper than " + std::to_string(kMaxIncludeDepth) +
                           " files (a cycle? hg recurses until Python's stack runs out)",
                       where(includes[0].file, includes[0].lineno));
  }
  std::vector<KindPat> kindpats;
  HG_RETURN_IF_ERROR(normalize(includes, root, depth, ctx, kindpats));
  auto level = std::make_unique<IgnoreMatcher::Level>();
  std::vector<const KindPat*> regexPats;
  for (const KindPat& kp : kindpats) {
    if (kp.kind == Kind::kSubinclude) {
      HG_RETURN_IF_ERROR(addSubinclude(kp, root, depth, ctx, *level));
    } else {
      regexPats.push_back(&kp);
    }
  }
  if (!regexPats.empty()) {
    HG_RETURN_IF_ERROR(buildRegexes(regexPats, level->regexes, level->regexText));
  }
  return level;
}

}  // namespace

IgnoreMatcher::IgnoreMatcher() = default;
IgnoreMatcher::IgnoreMatcher(IgnoreMatcher&&) noexcept = default;
IgnoreMatcher& IgnoreMatcher::operator=(IgnoreMatcher&&) noexcept = default;
IgnoreMatcher::~IgnoreMatcher() = default;

std::vector<std::string> IgnoreMatcher::ignoreFiles(
    const std::string& root, const std::vector<std::string>& uiIgnoreValues) {
  std::string rootdir = (!root.empty() && root.back() == '/') ? root : root + "/";
  std::vector<std::string> files;
  struct stat st;
  if (stat((rootdir + ".hgignore").c_str(), &st) == 0) files.push_back(rootdir + ".hgignore");
  for (const auto& value : uiIgnoreValues) files.push_back(pyJoin(rootdir, expandPath(value)));
  return files;
}

Result<IgnoreMatcher> IgnoreMatcher::load(const std::string& root,
                                          const std::vector<std::string>& files) {
  IgnoreMatcher m;
  LoadContext ctx{m.warnings_};
  std::vector<KindPat> includes;
  for (const auto& f : files) includes.push_back({Kind::kInclude, f, std::string(), f, 0});
  if (includes.empty()) {
    m.top_ = std::make_unique<Level>();
  } else {
    HG_ASSIGN_OR_RETURN(m.top_, buildLevel(root, includes, 0, ctx));
  }
  m.rootIgnored_ = m.top_->matches("");
  return m;
}

bool IgnoreMatcher::matchesSelf(ByteView path) const { return top_->matches(path); }

bool IgnoreMatcher::ignored(ByteView path) const {
  if (rootIgnored_ || top_->matches(path)) return true;
  for (size_t pos = path.rfind('/'); pos != ByteView::npos && pos > 0;
       pos = path.rfind('/', pos - 1)) {
    if (top_->matches(path.substr(0, pos))) return true;
  }
  return false;
}

bool IgnoreMatcher::ignored(ByteView path, IgnoreDirCache& cache) const {
  if (rootIgnored_ || top_->matches(path)) return true;
  // Find the deepest ancestor whose answer is cached, then fill in below it.
  std::vector<ByteView> unknown;
  bool result = false;
  for (size_t pos = path.rfind('/'); pos != ByteView::npos && pos > 0;
       pos = path.rfind('/', pos - 1)) {
    ByteView dir = path.substr(0, pos);
    auto it = std::find_if(cache.dirs_.rbegin(), cache.dirs_.rend(),
                           [&](const auto& e) { return e.first == dir; });
    if (it != cache.dirs_.rend()) {
      result = it->second;
      break;
    }
    unknown.push_back(dir);
  }
  constexpr size_t kCacheSize = 64;
  for (auto it = unknown.rbegin(); it != unknown.rend(); ++it) {
    result = result || top_->matches(*it);
    if (cache.dirs_.size() == kCacheSize) cache.dirs_.erase(cache.dirs_.begin());
    cache.dirs_.emplace_back(std::string(*it), result);
  }
  return result;
}

bool IgnoreMatcher::empty() const { return top_->empty(); }

const std::string& IgnoreMatcher::hgRegex() const { return top_->regexText; }

}  // namespace hgvfs::hg
