#pragma once
// PyRegex: one Python `re` pattern (bytes, no flags) compiled with PCRE2.
//
// Mercurial turns every pattern it matches paths with (.hgignore lines,
// `hg status PATTERN`, -I/-X) into a Python regular expression. PyRegex
// re-implements Python 3.11's `re` parser for bytes patterns
// (Lib/re/_parser.py; py_regex_parser.h), so a pattern hg rejects is
// rejected here with the same message, and emits an equivalent PCRE2
// pattern, so a pattern hg accepts matches the same paths.
//
// Thread rules: compile() builds an immutable object; match() may be called
// from any number of threads at once (match data is per thread).

#include <memory>
#include <string>

#include "base/bytes.h"
#include "base/result.h"

namespace hgvfs::match {

// match() is `re.match(pattern, subject) is not None` under Python 3.11.2,
// the Python stock hg 6.3 runs on here. Differences that remain, all in
// constructs no ignore file or path pattern uses:
//  - possessive quantifiers (*+, ++, ?+, {m,n}+) and atomic groups (?>...)
//    follow PCRE2; CPython 3.11.2 matches some possessive repeats wrongly
//    (python/cpython gh-106052, fixed in 3.11.5);
//  - a backreference or conditional that looks at a group captured inside a
//    repeat, from within that repeat or after backtracking out of it, can see
//    a different capture (sre keeps iterating after an empty iteration and
//    restores captures differently from PCRE2);
//  - a repeat count above 65535 is clamped (exact for subjects shorter than
//    64 KiB); a large count on a group can make PCRE2 fail with kUnsupported;
//  - the L (locale) flag is taken as ASCII, as in a C or UTF-8 locale.
class PyRegex {
 public:
  // Errors: kInvalidArgument with Python's own message ("missing ), unterminated
  // subpattern at position 3") when `re.compile` raises re.error; kUnsupported
  // for its other exceptions ("OverflowError: ...") and when PCRE2 cannot
  // compile the translation of a pattern Python accepts.
  static Result<PyRegex> compile(ByteView pattern);

  PyRegex(PyRegex&&) noexcept;
  PyRegex& operator=(PyRegex&&) noexcept;
  ~PyRegex();

  bool match(ByteView subject) const;
  // The PCRE2 pattern the Python pattern became (for messages).
  const std::string& pcre2Pattern() const;

 private:
  struct Impl;
  explicit PyRegex(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hgvfs::match
