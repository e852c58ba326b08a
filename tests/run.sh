#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds metagrad and passes every test, on a fresh Debian 12 machine that has only git:
#   1. installs the Debian packages it needs (when missing),
#   2. Release build of tests, benchmarks and examples (so none of them can rot), then ctest,
#   3. ASan+UBSan build (-O1 with line tables only, portable ISA) of tests and examples, then ctest,
#   (in both, the tests are unity-built, one executable per layer: METAGRAD_TEST_UNITY, about 40 %
#   less compile time; every test file is still its own CTest test),
#   (the Release ctest includes test-package-relocate: it installs the build, moves the prefix, and
#   builds and runs tests/cmake_import against the moved copy with find_package(metagrad), with and
#   without COMPONENTS OpenBLAS, and with pkg-config; see tests/package/relocate.cmake).
# Prints the time of each phase and ends with ctest's summary. Exits non-zero on any failure.
# Environment: METAGRAD_BUILD_ROOT (default <repo>/build), METAGRAD_JOBS (default: all cores),
# METAGRAD_TEST_UNITY (default ON; OFF builds one executable per test file, as a developer would).
set -Eeuo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=SCRIPTDIR/../cmake/ensure_packages.sh
source cmake/ensure_packages.sh

build_root=${METAGRAD_BUILD_ROOT:-$root/build}
jobs=${METAGRAD_JOBS:-$(nproc)}
unity=${METAGRAD_TEST_UNITY:-ON}
packages=(cmake ninja-build g++ ccache libeigen3-dev doctest-dev libbenchmark-dev nlohmann-json3-dev libcli11-dev libstb-dev zlib1g-dev libopenblas-openmp-dev libopenblas-dev pkgconf libcairo2-dev fonts-dejavu-core chromium)

# ---- phases: a name, a start time, and one line per finished phase in the summary ----
script_start=$EPOCHREALTIME
phase_name="" phase_start=""
summary=()
seconds_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
begin() {
  phase_name=$1
  phase_start=$EPOCHREALTIME
  echo
  echo "==> [$phase_name] $2"
}
end() {
  local s
  s=$(seconds_since "$phase_start")
  summary+=("$(printf '  %-28s %7s s' "$phase_name" "$s")")
  echo "<== [$phase_name] done in $s s"
}
on_error() {
  echo >&2
  echo "tests/run.sh: FAILED in phase [$phase_name] (exit $1) after $(seconds_since "$script_start") s" >&2
  exit "$1"
}
trap 'on_error $?' ERR

cmake_common=(-G Ninja)
command -v ccache >/dev/null && cmake_common+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

# Configures and builds one tree: build_tree DIR CMAKE_ARGS...
build_tree() {
  local dir=$1
  shift
  cmake -S "$root" -B "$dir" "${cmake_common[@]}" "$@"
  cmake --build "$dir" -j "$jobs"
}
# Runs ctest in DIR, keeping its output in DIR/ctest.log for the summary.
run_ctest() {
  ctest --test-dir "$1" --output-on-failure -j "$jobs" 2>&1 | tee "$1/ctest.log"
}
ctest_summary() { grep -E '^[0-9]+% tests passed|^Total Test time' "$1/ctest.log"; }

# Non-blank, non-comment lines per layer of include/metagrad (like tinygrad's sz.py).
line_count() {
  find include/metagrad -type f \( -name '*.hpp' -o -name '*.h' \) -print0 | sort -z |
    xargs -0 awk '
      FNR == 1 { split(FILENAME, p, "/"); layer = (p[4] == "" ? "(top)" : p[3]); files[layer]++; nfiles++ }
      /^[[:space:]]*$/ || /^[[:space:]]*\/\// { next }
      { lines[layer]++; total++ }
      END {
        for (l in files) printf "  %-14s %4d files %7d lines\n", l, files[l], lines[l] | "sort"
        close("sort")
        printf "  %-14s %4d files %7d lines\n", "total", nfiles, total
      }'
}

echo "metagrad tests/run.sh: build and test everything (repo $root, build dirs under $build_root, $jobs jobs)"
[[ -n ${CI:-} ]] && echo "CI=$CI"

begin packages "checking the Debian packages the build and tests need"
ensure_packages "${packages[@]}"
echo "cmake $(cmake --version | head -1 | awk '{print $3}'), $(g++ --version | head -1), ccache: $(command -v ccache || echo none)"
end

echo
echo "include/metagrad line count (non-blank, non-comment lines):"
line_count

begin "release build" "Release build of tests, benchmarks and examples in $build_root/release"
build_tree "$build_root/release" -DCMAKE_BUILD_TYPE=Release -DMETAGRAD_TEST_UNITY="$unity" \
  -DMETAGRAD_BUILD_TESTS=ON -DMETAGRAD_BUILD_BENCHMARKS=ON -DMETAGRAD_BUILD_EXAMPLES=ON
end

begin "release tests" "ctest on the Release build"
run_ctest "$build_root/release"
end

# -g1 (line tables) is enough for the sanitizers' stack traces and compiles a third faster than -g.
begin "sanitize build" "ASan+UBSan build (-O1 -g1) of tests and examples in $build_root/sanitize"
build_tree "$build_root/sanitize" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DMETAGRAD_NATIVE=OFF -DMETAGRAD_SANITIZE=ON -DMETAGRAD_TEST_UNITY="$unity" \
  -DMETAGRAD_BUILD_TESTS=ON -DMETAGRAD_BUILD_BENCHMARKS=OFF -DMETAGRAD_BUILD_EXAMPLES=ON
end

begin "sanitize tests" "ctest on the sanitizer build (detect_leaks=1, UBSan halts on error)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  run_ctest "$build_root/sanitize"
end

echo
echo "==> summary: every phase passed"
printf '%s\n' "${summary[@]}"
printf '  %-28s %7s s\n' "total" "$(seconds_since "$script_start")"
echo "include/metagrad: $(line_count | tail -n 1 | awk '{print $4, "lines in", $2, "files"}')"
echo "sanitize ctest: $(grep -m1 -E '^[0-9]+% tests passed' "$build_root/sanitize/ctest.log")"
echo
echo "release ctest:"
ctest_summary "$build_root/release"
