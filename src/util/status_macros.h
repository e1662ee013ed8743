// Status helpers: Debian's Abseil 20220623 predates absl's own RETURN_IF_ERROR / ASSIGN_OR_RETURN.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#define WRIT_CONCAT_INNER(a, b) a##b
#define WRIT_CONCAT(a, b) WRIT_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)            \
  do {                                   \
    ::absl::Status _writ_st = (expr);    \
    if (!_writ_st.ok()) return _writ_st; \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) \
  WRIT_ASSIGN_OR_RETURN_IMPL(WRIT_CONCAT(_writ_sor_, __LINE__), lhs, expr)
#define WRIT_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

namespace writ {

// errno (positive) -> Status with what we were doing and strerror.
inline absl::Status ErrnoStatus(int err, std::string_view what) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(std::string(what), ": ", std::strerror(err)));
}

}  // namespace writ
