// SPDX-License-Identifier: MIT
// The float half of metagrad/instantiate.hpp (explicit instantiation definitions of everything
// extern_templates.hpp declares for float).
#pragma once
#include "metagrad/extern_templates.hpp"

#pragma push_macro("T")
#pragma push_macro("METAGRAD_EXPLICIT")
#undef T
#define METAGRAD_EXPLICIT template
#define T float
namespace metagrad {
#include "metagrad/instantiation_list.inc"
}  // namespace metagrad
#undef T
#pragma pop_macro("METAGRAD_EXPLICIT")
#pragma pop_macro("T")
