// SPDX-License-Identifier: MIT
// Explicit instantiation definitions matching metagrad/extern_templates.hpp, for float and double:
// include this in exactly one .cpp of a program whose other TUs see extern_templates.hpp (the
// CMake target metagrad::instantiated compiles it, split by type into two TUs that build in
// parallel). Compile that .cpp with the same flags as the rest of the program (-march,
// METAGRAD_WITH_OPENBLAS): its copies of the ops are the ones every TU calls.
#pragma once
#include "metagrad/instantiate_double.hpp"
#include "metagrad/instantiate_float.hpp"
