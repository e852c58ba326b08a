// SPDX-License-Identifier: MIT
// Explicit instantiation declarations of the ops, creation functions and the autograd engine for
// float and double: a translation unit that sees them calls the copies compiled once in
// metagrad/instantiate.hpp instead of instantiating (and optimising) every op and backward rule
// itself, which is most of what a consumer TU costs to compile (docs/performance.md, "Compile
// time of a consumer"). Include it anywhere (it includes what it declares), or link the CMake
// target metagrad::instantiated, which force-includes it; the program must then contain exactly
// one TU that includes metagrad/instantiate.hpp (that target's library does), or the link fails.
#pragma once
#include <initializer_list>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/autograd/forward.hpp"
#include "metagrad/core/creation.hpp"
#include "metagrad/functional/transforms.hpp"
#include "metagrad/ops/binary.hpp"
#include "metagrad/ops/compare.hpp"
#include "metagrad/ops/conv.hpp"
#include "metagrad/ops/linalg.hpp"
#include "metagrad/ops/ops.hpp"
#include "metagrad/ops/pool.hpp"

#pragma push_macro("T")
#pragma push_macro("METAGRAD_EXPLICIT")
#undef T
#define METAGRAD_EXPLICIT extern template
namespace metagrad {
#define T float
#include "metagrad/instantiation_list.inc"
#undef T
#define T double
#include "metagrad/instantiation_list.inc"
#undef T
}  // namespace metagrad
#pragma pop_macro("METAGRAD_EXPLICIT")
#pragma pop_macro("T")
