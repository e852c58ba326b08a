// SPDX-License-Identifier: MIT
// metagrad: tensors and any-order reverse-mode autodiff for learning with and from explanations.
// This umbrella includes every layer; include single headers (or a layer's umbrella) to keep
// compile times short. The PNG and HTML writers (metagrad/io/png.hpp, html.hpp) are left out
// because they need stb; include them where pictures are written.
#pragma once
#include "metagrad/core/creation.hpp"
#include "metagrad/core/print.hpp"
#include "metagrad/core/tensor.hpp"
#include "metagrad/autograd/engine.hpp"
#include "metagrad/autograd/forward.hpp"
#include "metagrad/ops/ops.hpp"
#include "metagrad/functional/functional.hpp"
#include "metagrad/nn/nn.hpp"
#include "metagrad/optim/optim.hpp"
#include "metagrad/meta/meta.hpp"
#include "metagrad/explain/explain.hpp"
#include "metagrad/data/data.hpp"
#include "metagrad/io/io.hpp"
#ifdef METAGRAD_EXTERN_TEMPLATES  // the ops come compiled from metagrad/instantiate.hpp (metagrad::instantiated)
#include "metagrad/extern_templates.hpp"
#endif
