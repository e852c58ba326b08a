// SPDX-License-Identifier: MIT
// The optimizers: in-place SGD / Adam / AdamW, gradient clipping, learning-rate schedules, and the
// differentiable optimizers for unrolled inner loops.
#pragma once
#include "metagrad/optim/adam.hpp"
#include "metagrad/optim/clip.hpp"
#include "metagrad/optim/differentiable.hpp"
#include "metagrad/optim/optimizer.hpp"
#include "metagrad/optim/schedule.hpp"
#include "metagrad/optim/sgd.hpp"
