// SPDX-License-Identifier: MIT
// The functional layer: function transforms (grad, vjp, jvp, hvp, jacobian, hessian) and
// gradcheck (finite-difference checks of derivatives to any order).
#pragma once
#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/functional/transforms.hpp"
