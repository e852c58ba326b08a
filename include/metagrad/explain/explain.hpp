// SPDX-License-Identifier: MIT
// Every explainer: gradient, gradient × input, integrated gradients, SmoothGrad, attention and the
// learned (SMaT) attention explainer, contextual decomposition and its agglomeration (ACD), and
// interval bound propagation.
#pragma once
#include "metagrad/explain/acd.hpp"
#include "metagrad/explain/attention.hpp"
#include "metagrad/explain/cd.hpp"
#include "metagrad/explain/cd_lstm.hpp"
#include "metagrad/explain/embedding_gradient.hpp"
#include "metagrad/explain/explainer.hpp"
#include "metagrad/explain/gradient.hpp"
#include "metagrad/explain/ibp.hpp"
#include "metagrad/explain/integrated_gradients.hpp"
#include "metagrad/explain/learned.hpp"
#include "metagrad/explain/smoothgrad.hpp"
