// SPDX-License-Identifier: MIT
// metagrad: tensors and any-order reverse-mode autodiff for learning with and from explanations.
// This umbrella includes every layer; include single headers to keep compile times short.
#pragma once
#include "metagrad/core/creation.hpp"
#include "metagrad/core/tensor.hpp"
#include "metagrad/autograd/engine.hpp"
#include "metagrad/ops/ops.hpp"
#include "metagrad/functional/gradcheck.hpp"
