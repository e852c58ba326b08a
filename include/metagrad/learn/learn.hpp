// SPDX-License-Identifier: MIT
// The learn/ layer: methods that learn from explanations (the losses, the trainer, metrics and
// the results writer). Include single headers to keep compile times short.
#pragma once
#include "metagrad/learn/avg_ex.hpp"
#include "metagrad/learn/batch.hpp"
#include "metagrad/learn/constrained_fit.hpp"
#include "metagrad/learn/gradient_constraint.hpp"
#include "metagrad/learn/erm.hpp"
#include "metagrad/learn/flint.hpp"
#include "metagrad/learn/ibp_ex.hpp"
#include "metagrad/learn/ibp_ex_rrr.hpp"
#include "metagrad/learn/input_gradient.hpp"
#include "metagrad/learn/pgd_ex.hpp"
#include "metagrad/learn/rademacher.hpp"
#include "metagrad/learn/rrr.hpp"
#include "metagrad/learn/metrics.hpp"
#include "metagrad/learn/results.hpp"
#include "metagrad/learn/snapshot.hpp"
#include "metagrad/learn/trainer.hpp"
