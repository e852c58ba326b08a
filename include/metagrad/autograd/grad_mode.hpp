// SPDX-License-Identifier: MIT
// Whether ops record a graph on this thread. Backward rules run with recording off unless
// create_graph asks for a differentiable result.
#pragma once

namespace metagrad {

/// A per-thread on/off switch, on by default; Tag makes each switch its own.
template <class Tag>
class ThreadSwitch {
 public:
  static bool enabled() { return flag(); }
  static void set_enabled(bool on) { flag() = on; }

 private:
  static bool& flag() {
    thread_local bool on = true;
    return on;
  }
};

/// Sets a switch on or off for its scope and restores the previous state.
template <class Switch>
class SwitchGuard {
 public:
  explicit SwitchGuard(bool on) : previous_(Switch::enabled()) { Switch::set_enabled(on); }
  ~SwitchGuard() { Switch::set_enabled(previous_); }
  SwitchGuard(const SwitchGuard&) = delete;
  SwitchGuard& operator=(const SwitchGuard&) = delete;

 private:
  bool previous_;
};

using GradMode = ThreadSwitch<struct GradModeTag>;
using GradModeGuard = SwitchGuard<GradMode>;

/// Whether tangent rules (forward mode, autograd/node.hpp) are recorded when recording is on. On by
/// default, so that tangents are differentiable in reverse mode. A caller that will not
/// differentiate the tangents it gets (hvp without create_graph reads one tangent off a gradient)
/// turns it off for its scope: the tangent computations then keep no nodes or temporaries alive.
using TangentRecording = ThreadSwitch<struct TangentRecordingTag>;
using TangentRecordingGuard = SwitchGuard<TangentRecording>;

struct NoGradGuard : GradModeGuard {
  NoGradGuard() : GradModeGuard(false) {}
};
struct EnableGradGuard : GradModeGuard {
  EnableGradGuard() : GradModeGuard(true) {}
};

}  // namespace metagrad
