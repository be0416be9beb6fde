// Overflow-checked arithmetic for sizes read from untrusted files: a false return means the true
// result does not fit, which callers report as a corrupt file instead of wrapping around.
#pragma once

#include <cstdint>

namespace vqd::io {

template <typename T>
[[nodiscard]] inline bool CheckedAdd(T a, T b, T* out) {
  return !__builtin_add_overflow(a, b, out);
}

template <typename T>
[[nodiscard]] inline bool CheckedMul(T a, T b, T* out) {
  return !__builtin_mul_overflow(a, b, out);
}

// Product of `dims` (all >= 0) into *out; false on a negative dim or overflow of int64.
template <typename Container>
[[nodiscard]] inline bool CheckedNumel(const Container& dims, int64_t* out) {
  int64_t numel = 1;
  for (const auto dim : dims) {
    if (dim < 0 || !CheckedMul<int64_t>(numel, static_cast<int64_t>(dim), &numel)) return false;
  }
  *out = numel;
  return true;
}

}  // namespace vqd::io
