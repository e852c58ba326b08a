// SPDX-License-Identifier: MIT
// The nn layer in one include: modules, layers, initialisation and functional_call.
#pragma once
#include "metagrad/nn/activation.hpp"
#include "metagrad/nn/conv.hpp"
#include "metagrad/nn/dropout.hpp"
#include "metagrad/nn/embedding.hpp"
#include "metagrad/nn/flatten.hpp"
#include "metagrad/nn/functional_call.hpp"
#include "metagrad/nn/init.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/nn/mlp.hpp"
#include "metagrad/nn/module.hpp"
#include "metagrad/nn/module_list.hpp"
#include "metagrad/nn/named_tensors.hpp"
#include "metagrad/nn/norm.hpp"
#include "metagrad/nn/pool.hpp"
#include "metagrad/nn/sequential.hpp"
#include "metagrad/nn/transformer.hpp"
