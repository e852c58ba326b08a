#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs metagrad's main job on a fresh Debian 12 machine that has only git: installs the Debian
# packages it needs (when missing), fetches MNIST into the data cache (examples/fetch_data.sh),
# builds the job in Release and runs it.
# The job is examples/03_explain_mnist: train a small CNN on MNIST, then explain its predictions
# with every explainer (gradient, gradient x input, integrated gradients, SmoothGrad, contextual
# decomposition, ACD) and bound it with interval bound propagation; PNG grids + results.json.
#   examples/run.sh [--quick] [--fashion] [--out DIR] [more arguments for the job]
# Every argument is passed through; without --out, results go to out/03_explain_mnist/.
# If the data cannot be fetched (no network), the job runs on its built-in synthetic data set and
# says so.
# Environment: METAGRAD_BUILD_ROOT (default <repo>/build), METAGRAD_JOBS (default: all cores),
# METAGRAD_DATA (data cache, default $HOME/.cache/metagrad).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=SCRIPTDIR/../cmake/ensure_packages.sh
source cmake/ensure_packages.sh

build=${METAGRAD_BUILD_ROOT:-$root/build}/examples
jobs=${METAGRAD_JOBS:-$(nproc)}
job=03_explain_mnist
args=("$@")
has_out=false fashion=false synthetic=false
for a in "$@"; do
  [[ $a == --out || $a == --out=* ]] && has_out=true
  [[ $a == --fashion ]] && fashion=true
  [[ $a == --synthetic ]] && synthetic=true
done
$has_out || args+=(--out "$root/out/$job")

echo "==> [packages] checking the Debian packages the build needs"
ensure_packages cmake ninja-build g++ ccache libeigen3-dev nlohmann-json3-dev libcli11-dev zlib1g-dev libstb-dev libopenblas-openmp-dev libopenblas-dev

if ! $synthetic; then
  set_name=mnist
  $fashion && set_name=fashion-mnist
  echo "==> [data] fetching $set_name into the cache (examples/fetch_data.sh $set_name)"
  if ! bash examples/fetch_data.sh "$set_name"; then
    echo "==> [data] could not fetch $set_name; running on the built-in synthetic data set instead (--synthetic)"
    kept=()
    for a in "${args[@]}"; do [[ $a == --fashion ]] || kept+=("$a"); done
    args=("${kept[@]}" --synthetic)
  fi
fi

echo "==> [build] Release build of examples/$job in $build"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build" -G Ninja "${launcher[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DMETAGRAD_BUILD_TESTS=OFF -DMETAGRAD_BUILD_BENCHMARKS=OFF -DMETAGRAD_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$build" -j "$jobs" --target "$job"

echo "==> [run] $job ${args[*]}"
exec "$build/examples/$job" "${args[@]}"
