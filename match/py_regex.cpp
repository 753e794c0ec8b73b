#include "match/py_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <variant>

#include "match/py_regex_parser.h"
#include "match/py_text.h"

namespace hgvfs::match {
namespace {

// str(re.error): "msg at position N", plus "(line L, column C)" when the
// pattern has a newline; "Type: msg" for Python's other exceptions.
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
    pcre2_set_parens_nest_limit(compile, 4 * kPyMaxNesting);
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
  auto outcome = parsePythonPattern(pattern);
  if (auto* e = std::get_if<PyReError>(&outcome)) {
    // re.error is a rejected pattern; anything else (OverflowError, ...) is
    // an exception hg does not catch.
    if (e->type) return unsupported(pyErrorText(*e, pattern));
    return invalidArgument(pyErrorText(*e, pattern));
  }
  const ParsedPattern& parsed = std::get<ParsedPattern>(outcome);
  // re.match anchors at the start. NO_START_OPTIMIZE: PCRE2 10.42's start-of-match
  // optimisation gets "(?=a)b?a" on "ab" wrong, and anchored patterns barely use it.
  uint32_t options = PCRE2_ANCHORED | PCRE2_NEVER_UTF | PCRE2_NEVER_UCP | PCRE2_ALT_CIRCUMFLEX |
                     PCRE2_NEVER_BACKSLASH_C | PCRE2_NO_START_OPTIMIZE;
  if (parsed.flags & kPyFlagIgnoreCase) options |= PCRE2_CASELESS;
  if (parsed.flags & kPyFlagMultiline) options |= PCRE2_MULTILINE;
  if (parsed.flags & kPyFlagDotAll) options |= PCRE2_DOTALL;
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

}  // namespace hgvfs::match
