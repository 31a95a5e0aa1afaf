#pragma once

// Result<T>: either a value of type T or a non-OK Status. Our stand-in for
// std::expected until C++23. Accessing the value of an error Result aborts.

#include <cstdlib>
#include <optional>
#include <utility>

#include "common/status.h"

namespace hsmfs {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (status_.ok()) status_ = InternalError("Result constructed from an OK Status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & {
    Check();
    return *value_;
  }
  const T& value() const& {
    Check();
    return *value_;
  }
  T&& value() && {
    Check();
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  T value_or(T fallback) const& { return ok() ? *value_ : std::move(fallback); }

 private:
  void Check() const {
    if (!value_) std::abort();
  }
  std::optional<T> value_;
  Status status_;
};

}  // namespace hsmfs

// HSMFS_ASSIGN_OR_RETURN(auto x, Foo()); returns Foo()'s status if it failed.
#define HSMFS_ASSIGN_OR_RETURN(lhs, expr) \
  HSMFS_ASSIGN_OR_RETURN_IMPL_(HSMFS_CONCAT_(hsmfs_result_, __LINE__), lhs, expr)
#define HSMFS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
