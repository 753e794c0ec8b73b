#include "base/result.h"

namespace hgvfs {

const char* errorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNotFound:
      return "not found";
    case ErrorKind::kCorrupt:
      return "corrupt";
    case ErrorKind::kUnsupported:
      return "unsupported";
    case ErrorKind::kIo:
      return "i/o error";
    case ErrorKind::kCensored:
      return "censored";
    case ErrorKind::kInvalidArgument:
      return "invalid argument";
  }
  return "error";
}

std::string Error::message() const {
  if (where.empty()) return what;
  return where + ": " + what;
}

Error notFound(std::string what, std::string where) {
  return {ErrorKind::kNotFound, std::move(what), std::move(where)};
}
Error corrupt(std::string what, std::string where) {
  return {ErrorKind::kCorrupt, std::move(what), std::move(where)};
}
Error unsupported(std::string what, std::string where) {
  return {ErrorKind::kUnsupported, std::move(what), std::move(where)};
}
Error ioError(int err, std::string what, std::string where) {
  return {ErrorKind::kIo, std::move(what), std::move(where), err};
}
Error censored(std::string where) {
  return {ErrorKind::kCensored, "revision is censored", std::move(where)};
}
Error invalidArgument(std::string what, std::string where) {
  return {ErrorKind::kInvalidArgument, std::move(what), std::move(where)};
}

}  // namespace hgvfs
