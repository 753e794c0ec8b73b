#include "hgbridge/changelog.h"

#include <charconv>

namespace hgvfs::hg {
namespace {

// Reverses stringutil.escapestr (Python's string-escape codec), which the
// changelog uses for extra fields.
Bytes unescapeExtra(ByteView s) {
  Bytes out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c != '\\' || i + 1 == s.size()) {
      out.push_back(c);
      continue;
    }
    char n = s[++i];
    switch (n) {
      case '\\':
        out.push_back('\\');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case '\'':
      case '"':
        out.push_back(n);
        break;
      case 'x':
        if (i + 2 < s.size() && hexDigitValue(s[i + 1]) >= 0 && hexDigitValue(s[i + 2]) >= 0) {
          out.push_back(static_cast<char>(hexDigitValue(s[i + 1]) * 16 + hexDigitValue(s[i + 2])));
          i += 2;
        } else {
          out += "\\x";
        }
        break;
      default:
        if (n >= '0' && n <= '7') {
          int v = n - '0';
          for (int k = 0; k < 2 && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7'; ++k) {
            v = v * 8 + (s[++i] - '0');
          }
          out.push_back(static_cast<char>(v & 0xFF));
        } else {
          out.push_back('\\');
          out.push_back(n);
        }
    }
  }
  return out;
}

}  // namespace

Bytes Changeset::branch() const {
  for (const auto& [k, v] : extra) {
    if (k == "branch") return v;
  }
  return "default";
}

Result<Changeset> parseChangeset(ByteView text, const std::string& where) {
  Changeset cs;
  if (text.empty()) return cs;  // the null revision's (empty) entry
  auto bad = [&](const char* what) { return corrupt(std::string("changeset ") + what, where); };
  size_t nl1 = text.find('\n');
  if (nl1 == ByteView::npos) return bad("has no manifest line");
  size_t nl2 = text.find('\n', nl1 + 1);
  if (nl2 == ByteView::npos) return bad("has no user line");
  size_t nl3 = text.find('\n', nl2 + 1);
  if (nl3 == ByteView::npos) return bad("has no date line");
  auto manifest = Node::fromHex(text.substr(0, nl1));
  if (!manifest) return bad("manifest node is not 40 hex digits");
  cs.manifest = *manifest;
  cs.user = Bytes(text.substr(nl1 + 1, nl2 - nl1 - 1));

  ByteView dateLine = text.substr(nl2 + 1, nl3 - nl2 - 1);
  size_t sp1 = dateLine.find(' ');
  if (sp1 == ByteView::npos) return bad("date has no timezone");
  cs.time = Bytes(dateLine.substr(0, sp1));
  size_t sp2 = dateLine.find(' ', sp1 + 1);
  ByteView tz = dateLine.substr(sp1 + 1, sp2 == ByteView::npos ? ByteView::npos : sp2 - sp1 - 1);
  auto [ptr, ec] = std::from_chars(tz.data(), tz.data() + tz.size(), cs.tz);
  if (ec != std::errc() || ptr != tz.data() + tz.size()) return bad("timezone is not a number");
  if (sp2 != ByteView::npos) {
    ByteView extra = dateLine.substr(sp2 + 1);
    size_t start = 0;
    while (start <= extra.size()) {
      size_t end = extra.find('\0', start);
      if (end == ByteView::npos) end = extra.size();
      if (end > start) {
        Bytes field = unescapeExtra(extra.substr(start, end - start));
        size_t colon = field.find(':');
        if (colon == Bytes::npos) return bad("extra field without ':'");
        cs.extra.emplace_back(field.substr(0, colon), field.substr(colon + 1));
      }
      start = end + 1;
    }
  }

  size_t doubleNl;
  if (nl3 + 1 < text.size() && text[nl3 + 1] == '\n') {
    doubleNl = nl3;
  } else {
    doubleNl = text.find("\n\n", nl3 + 1);
    if (doubleNl == ByteView::npos) return bad("has no blank line before the description");
    size_t start = nl3 + 1;
    while (start < doubleNl) {
      size_t end = text.find('\n', start);
      if (end > doubleNl) end = doubleNl;
      cs.files.emplace_back(text.substr(start, end - start));
      start = end + 1;
    }
  }
  cs.description = Bytes(text.substr(doubleNl + 2));
  return cs;
}

Result<Changeset> Changelog::read(Revision r) const {
  if (r.isNull()) return Changeset{};
  HG_ASSIGN_OR_RETURN(Bytes text, revlog_->rawText(r));
  return parseChangeset(text, revlog_->name() + " revision " + std::to_string(r.value()));
}

}  // namespace hgvfs::hg
