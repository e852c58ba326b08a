// SPDX-License-Identifier: MIT
// A training checkpoint in one safetensors file: the module's state_dict under "model." and the
// optimizer's state under "optim.", plus free-form metadata. Loading checks both parts before it
// changes either, so a bad file leaves the module and the optimizer as they were.
#pragma once
#include <filesystem>
#include <string>

#include "metagrad/io/safetensors.hpp"
#include "metagrad/nn/module.hpp"
#include "metagrad/optim/optimizer.hpp"

namespace metagrad::io {

inline constexpr std::string_view kModelPrefix = "model.";
inline constexpr std::string_view kOptimizerPrefix = "optim.";

/// Saves model.state_dict() and optimizer.state_dict() (prefixed "model." and "optim.") atomically.
template <Floating T>
void save_checkpoint(const std::filesystem::path& path, const nn::Module<T>& model, const Optimizer<T>& optimizer,
                     Metadata metadata = {}) {
  Checkpoint c;
  c.insert(model.state_dict(), kModelPrefix);
  c.insert(optimizer.state_dict(), kOptimizerPrefix);
  c.metadata = std::move(metadata);
  save_safetensors(path, c);
}

/// Restores what save_checkpoint wrote into `model` and `optimizer` and returns the metadata. The
/// file must hold only "model." and "optim." tensors of element type T; the module's strict
/// load_state_dict and the optimizer's load_state_dict check their parts.
template <Floating T>
Metadata load_checkpoint(const std::filesystem::path& path, nn::Module<T>& model, Optimizer<T>& optimizer) {
  Checkpoint c = load_safetensors(path);
  for (const auto& [name, t] : c.entries())
    check(name.starts_with(kModelPrefix) || name.starts_with(kOptimizerPrefix), "load_checkpoint", "'", path.string(),
          "': tensor '", name, "' belongs to neither the model (\"model.\") nor the optimizer (\"optim.\")");
  NamedTensors<T> model_state, optimizer_state;
  try {
    model_state = c.named<T>(kModelPrefix);
    optimizer_state = c.named<T>(kOptimizerPrefix);
  } catch (const Error& e) {
    fail("load_checkpoint", "'", path.string(), "': ", e.what());
  }
  // Check both parts before changing either: the module's load_state_dict checks everything before
  // it copies anything, and the optimizer's load cannot fail once check_state_dict has passed.
  optimizer.check_state_dict(optimizer_state);
  model.load_state_dict(model_state);
  optimizer.load_state_dict(optimizer_state);
  return c.metadata;
}

}  // namespace metagrad::io
