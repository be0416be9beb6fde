// Status propagation helpers. Debian's abseil (20220623) predates ABSL_RETURN_IF_ERROR and
// ABSL_ASSIGN_OR_RETURN, so the project carries two macros with the same semantics.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

#define VQD_STATUS_CONCAT_INNER(a, b) a##b
#define VQD_STATUS_CONCAT(a, b) VQD_STATUS_CONCAT_INNER(a, b)

// Returns from the enclosing function when `expr` (an absl::Status) is not OK.
#define VQD_RETURN_IF_ERROR(expr)                      \
  do {                                                 \
    ::absl::Status vqd_status_ = (expr);               \
    if (!vqd_status_.ok()) return vqd_status_;         \
  } while (0)

// `lhs` = value of `expr` (an absl::StatusOr<T>), or returns its status from the enclosing function.
#define VQD_ASSIGN_OR_RETURN(lhs, expr) \
  VQD_ASSIGN_OR_RETURN_IMPL(VQD_STATUS_CONCAT(vqd_statusor_, __LINE__), lhs, expr)
#define VQD_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return std::move(tmp).status();  \
  lhs = std::move(tmp).value()

namespace vqd {

// Prefixes the message of a non-OK status with `context` ("loading transformer: ...").
absl::Status Annotate(const absl::Status& status, absl::string_view context);

template <typename T>
absl::StatusOr<T> Annotate(absl::StatusOr<T> value, absl::string_view context) {
  if (value.ok()) return value;
  return Annotate(value.status(), context);
}

}  // namespace vqd
