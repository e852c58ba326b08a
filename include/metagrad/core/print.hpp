// SPDX-License-Identifier: MIT
// Printing tensors: a header line (shape, dtype, requires_grad, grad_fn) and the values, nested
// in brackets and aligned in columns. Large tensors are summarised with their first and last
// few entries along each dim, so printing a big activation does not flood a log.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "metagrad/core/tensor.hpp"

namespace metagrad {

struct PrintOptions {
  int precision = 4;                // digits after the decimal point
  std::int64_t threshold = 1000;    // summarise tensors with more elements than this
  std::int64_t edgeitems = 3;       // entries kept at each end of a dim when summarising
};

namespace detail {

/// One number format shared by all printed entries, so columns line up: integers when every
/// value is integral, fixed point when the magnitudes are moderate, scientific otherwise.
struct NumberFormat {
  enum class Kind { integer, integral_float, fixed, scientific } kind = Kind::fixed;
  int precision = 4;

  template <class T>
  static NumberFormat choose(const std::vector<T>& values, int precision) {
    NumberFormat f;
    f.precision = precision;
    if constexpr (std::is_integral_v<T>) {
      f.kind = Kind::integer;
      return f;
    } else {
      double max_abs = 0, min_abs = INFINITY;
      bool integral = true;
      for (T v : values) {
        if (!std::isfinite(v)) continue;
        const double a = std::abs(static_cast<double>(v));
        max_abs = std::max(max_abs, a);
        if (a > 0) min_abs = std::min(min_abs, a);
        integral = integral && v == std::nearbyint(v);
      }
      if (integral && max_abs < 1e8) f.kind = Kind::integral_float;
      else if (max_abs >= 1e8 || (min_abs < INFINITY && (min_abs < 1e-4 || max_abs / min_abs > 1e3)))
        f.kind = Kind::scientific;
      else f.kind = Kind::fixed;
      return f;
    }
  }

  template <class T>
  std::string operator()(T v) const {
    if constexpr (std::is_integral_v<T>) {
      return std::to_string(v);
    } else {
      if (std::isnan(v)) return "nan";
      if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
      char buf[64];
      const double d = static_cast<double>(v);
      switch (kind) {
        case Kind::integral_float: std::snprintf(buf, sizeof buf, "%.0f.", d); break;
        case Kind::scientific: std::snprintf(buf, sizeof buf, "%.*e", precision, d); break;
        default: std::snprintf(buf, sizeof buf, "%.*f", precision, d); break;
      }
      return buf;
    }
  }
};

/// The indices printed along a dim of extent n: all of them, or the two ends with a gap (-1).
inline std::vector<std::int64_t> shown_indices(std::int64_t n, bool summarise, std::int64_t edge) {
  std::vector<std::int64_t> idx;
  if (!summarise || n <= 2 * edge) {
    for (std::int64_t i = 0; i < n; ++i) idx.push_back(i);
    return idx;
  }
  for (std::int64_t i = 0; i < edge; ++i) idx.push_back(i);
  idx.push_back(-1);
  for (std::int64_t i = n - edge; i < n; ++i) idx.push_back(i);
  return idx;
}

template <Element T>
class TensorPrinter {
 public:
  TensorPrinter(const Tensor<T>& t, const PrintOptions& o)
      : t_(t), shape_(t.shape()), strides_(t.shape().strides()), summarise_(t.numel() > o.threshold),
        edge_(std::max<std::int64_t>(o.edgeitems, 1)) {
    std::vector<T> shown;
    collect(0, 0, shown);
    format_ = NumberFormat::choose(shown, o.precision);
    for (T v : shown) width_ = std::max(width_, format_(v).size());
  }

  void print(std::ostream& os) const {
    if (shape_.rank() == 0) os << format_(t_.data()[0]);
    else write(os, 0, 0);
  }

 private:
  void collect(int dim, std::int64_t offset, std::vector<T>& out) const {
    if (dim == shape_.rank()) {
      out.push_back(t_.data()[offset]);
      return;
    }
    for (auto i : shown_indices(shape_[dim], summarise_, edge_))
      if (i >= 0) collect(dim + 1, offset + i * strides_[static_cast<std::size_t>(dim)], out);
  }

  void write(std::ostream& os, int dim, std::int64_t offset) const {
    const bool last = dim == shape_.rank() - 1;
    // Rows of a matrix end in one newline; blocks of higher dims get a blank line between them.
    const std::string separator =
        last ? ", " : "," + std::string(static_cast<std::size_t>(shape_.rank() - dim - 1), '\n') +
                          std::string(static_cast<std::size_t>(dim + 1), ' ');
    os << '[';
    bool first = true;
    for (auto i : shown_indices(shape_[dim], summarise_, edge_)) {
      if (!first) os << separator;
      first = false;
      if (i < 0) {
        os << "...";
      } else if (last) {
        const std::string s = format_(t_.data()[offset + i]);
        os << std::string(width_ - s.size(), ' ') << s;
      } else {
        write(os, dim + 1, offset + i * strides_[static_cast<std::size_t>(dim)]);
      }
    }
    os << ']';
  }

  const Tensor<T>& t_;
  Shape shape_;
  std::array<std::int64_t, kMaxRank> strides_;
  bool summarise_;
  std::int64_t edge_;
  NumberFormat format_;
  std::size_t width_ = 0;
};

}  // namespace detail

/// The header line alone: "tensor(shape=[2, 3], dtype=float32, requires_grad=true, grad_fn=mul)".
template <Element T>
std::string describe(const Tensor<T>& t) {
  if (!t.defined()) return "tensor(undefined)";
  std::ostringstream os;
  os << "tensor(shape=" << t.shape() << ", dtype=" << dtype_name<T>();
  if (!t.device().is_cpu()) os << ", device=" << t.device();
  if constexpr (Floating<T>) {
    os << ", requires_grad=" << (t.requires_grad() ? "true" : "false");
    if (t.grad_fn()) os << ", grad_fn=" << t.grad_fn()->name();
  }
  os << ')';
  return os.str();
}

/// The header line, a newline, and the values (summarised beyond options.threshold elements).
template <Element T>
std::string to_string(const Tensor<T>& t, const PrintOptions& options = {}) {
  std::ostringstream os;
  os << describe(t);
  if (!t.defined()) return os.str();
  os << '\n';
  if (!t.device().is_cpu()) os << "<values on " << t.device() << ">";
  else detail::TensorPrinter<T>(t, options).print(os);
  return os.str();
}

template <Element T>
std::ostream& operator<<(std::ostream& os, const Tensor<T>& t) {
  return os << to_string(t);
}

}  // namespace metagrad
