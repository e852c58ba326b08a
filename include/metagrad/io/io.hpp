// SPDX-License-Identifier: MIT
// Reading and writing: safetensors checkpoints (PyTorch-compatible) and whole training checkpoints.
#pragma once
#include "metagrad/io/checkpoint.hpp"
#include "metagrad/io/safetensors.hpp"
