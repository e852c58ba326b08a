// SPDX-License-Identifier: MIT
// The meta layer: unrolled inner loops, hypergradients (plain, truncated, checkpointed) and
// implicit differentiation. Include single headers where compile time matters.
#pragma once
#include "metagrad/meta/checkpoint.hpp"
#include "metagrad/meta/hypergradient.hpp"
#include "metagrad/meta/implicit.hpp"
#include "metagrad/meta/unroll.hpp"
