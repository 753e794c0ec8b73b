#pragma once
// Result<T>: the value of an operation or the typed reason it failed.
//
// hgbridge never throws for bad input. Every function that reads a
// repository returns a Result, and the caller decides what the failure
// means (the CLI prints it, the FUSE layer turns it into an errno). The
// kinds are few on purpose: they are what a caller branches on. `what`
// says what went wrong and `where` names the file / revlog / revision, so
// one log line is enough to find the problem.
//
// Thread rules: plain values, no shared state.

#include <string>
#include <utility>
#include <variant>

namespace hgvfs {

enum class ErrorKind {
  kNotFound,         // no such revision, file, path, repository
  kCorrupt,          // the repository's bytes contradict its format
  kUnsupported,      // valid but not handled: a requirement, a revlog version
  kIo,               // the operating system said no; `err` holds errno
  kCensored,         // the revision was censored (hg censor)
  kInvalidArgument,  // the caller asked for something malformed
};

const char* errorKindName(ErrorKind kind);

struct Error {
  ErrorKind kind;
  std::string what;
  std::string where;
  int err = 0;  // errno for kIo; optionally the errno for kInvalidArgument

  std::string message() const;  // "where: what" (or "what" when where is empty)
};

Error notFound(std::string what, std::string where = {});
Error corrupt(std::string what, std::string where = {});
Error unsupported(std::string what, std::string where = {});
Error ioError(int err, std::string what, std::string where = {});
Error censored(std::string where);
Error invalidArgument(std::string what, std::string where = {});

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }
  Error&& takeError() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
struct Ok {};
using Status = Result<Ok>;
inline Status okStatus() { return Ok{}; }

}  // namespace hgvfs

// Propagates a failed Result out of the enclosing function.
#define HG_TRY_CONCAT_(a, b) a##b
#define HG_TRY_CONCAT(a, b) HG_TRY_CONCAT_(a, b)
#define HG_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)   \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return std::move(tmp).takeError(); \
  lhs = std::move(tmp).value()
#define HG_ASSIGN_OR_RETURN(lhs, expr) \
  HG_ASSIGN_OR_RETURN_IMPL_(HG_TRY_CONCAT(hg_result_, __LINE__), lhs, expr)
#define HG_RETURN_IF_ERROR(expr)                                    \
  do {                                                              \
    auto hg_status_ = (expr);                                       \
    if (!hg_status_.ok()) return std::move(hg_status_).takeError(); \
  } while (0)
