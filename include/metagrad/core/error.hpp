// SPDX-License-Identifier: MIT
// metagrad::Error and the check helpers every op uses, so bad input always gets a message that
// names the op and the shapes involved instead of undefined behaviour.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace metagrad {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <class... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  return os.str();
}
}  // namespace detail

/// Throws metagrad::Error("<op>: <message parts...>") unless `ok`.
template <class... Parts>
inline void check(bool ok, const char* op, Parts&&... parts) {
  if (!ok) [[unlikely]]
    throw Error(detail::concat(op, ": ", std::forward<Parts>(parts)...));
}

template <class... Parts>
[[noreturn]] inline void fail(const char* op, Parts&&... parts) {
  throw Error(detail::concat(op, ": ", std::forward<Parts>(parts)...));
}

}  // namespace metagrad
