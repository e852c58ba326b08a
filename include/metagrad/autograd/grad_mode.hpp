// SPDX-License-Identifier: MIT
// Whether ops record a graph on this thread. Backward rules run with recording off unless
// create_graph asks for a differentiable result.
#pragma once

namespace metagrad {

class GradMode {
 public:
  static bool enabled() { return flag(); }
  static void set_enabled(bool on) { flag() = on; }

 private:
  static bool& flag() {
    thread_local bool on = true;
    return on;
  }
};

/// Sets recording on or off for its scope and restores the previous state.
class GradModeGuard {
 public:
  explicit GradModeGuard(bool on) : previous_(GradMode::enabled()) { GradMode::set_enabled(on); }
  ~GradModeGuard() { GradMode::set_enabled(previous_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool previous_;
};

/// Whether tangent rules (forward mode, autograd/node.hpp) are recorded when recording is on. On by
/// default, so that tangents are differentiable in reverse mode. A caller that will not
/// differentiate the tangents it gets (hvp without create_graph reads one tangent off a gradient)
/// turns it off for its scope: the tangent computations then keep no nodes or temporaries alive.
class TangentRecording {
 public:
  static bool enabled() { return flag(); }
  static void set_enabled(bool on) { flag() = on; }

 private:
  static bool& flag() {
    thread_local bool on = true;
    return on;
  }
};

class TangentRecordingGuard {
 public:
  explicit TangentRecordingGuard(bool on) : previous_(TangentRecording::enabled()) { TangentRecording::set_enabled(on); }
  ~TangentRecordingGuard() { TangentRecording::set_enabled(previous_); }
  TangentRecordingGuard(const TangentRecordingGuard&) = delete;
  TangentRecordingGuard& operator=(const TangentRecordingGuard&) = delete;

 private:
  bool previous_;
};

struct NoGradGuard : GradModeGuard {
  NoGradGuard() : GradModeGuard(false) {}
};
struct EnableGradGuard : GradModeGuard {
  EnableGradGuard() : GradModeGuard(true) {}
};

}  // namespace metagrad
