// SPDX-License-Identifier: MIT
// One of the two TUs of the metagrad::instantiated library (one per element type, so they compile
// in parallel): every op, creation function and the autograd engine for double, compiled once.
#include <metagrad/instantiate_double.hpp>
