// SPDX-License-Identifier: MIT
// Every op family.
#pragma once
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/broadcast.hpp"
#include "metagrad/ops/dropout.hpp"
#include "metagrad/ops/indexing.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/shape.hpp"
#include "metagrad/ops/softmax.hpp"
#include "metagrad/ops/sparsemax.hpp"
#include "metagrad/ops/unary.hpp"
#include "metagrad/ops/view.hpp"
