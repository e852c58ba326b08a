#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs metagrad's main job on a fresh Debian 12 machine that has only git: installs the Debian
# packages it needs (when missing), builds the job in Release and runs it.
# For now the job is the demo examples/00_mlp_hvp: train a small MLP on synthetic data, then check
# a Hessian-vector product of its loss against finite differences of the gradient.
#   examples/run.sh [--quick] [--out DIR] [more arguments for the job]
# Every argument is passed through; without --out, results go to out/00_mlp_hvp/results.json.
# Environment: METAGRAD_BUILD_ROOT (default <repo>/build), METAGRAD_JOBS (default: all cores).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=SCRIPTDIR/../cmake/ensure_packages.sh
source cmake/ensure_packages.sh

build=${METAGRAD_BUILD_ROOT:-$root/build}/examples
jobs=${METAGRAD_JOBS:-$(nproc)}
job=00_mlp_hvp
args=("$@")
has_out=false
for a in "$@"; do [[ $a == --out || $a == --out=* ]] && has_out=true; done
$has_out || args+=(--out "$root/out/$job")

echo "==> [packages] checking the Debian packages the build needs"
ensure_packages cmake ninja-build g++ ccache libeigen3-dev nlohmann-json3-dev libcli11-dev zlib1g-dev libstb-dev

echo "==> [build] Release build of examples/$job in $build"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build" -G Ninja "${launcher[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DMETAGRAD_BUILD_TESTS=OFF -DMETAGRAD_BUILD_BENCHMARKS=OFF -DMETAGRAD_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$build" -j "$jobs" --target "$job"

echo "==> [run] $job ${args[*]}"
exec "$build/examples/$job" "${args[@]}"
