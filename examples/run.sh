#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The reproduction suite, metagrad's main command, on a fresh Debian 12 machine that has only git:
# installs the Debian packages it needs (when missing), fetches the data sets into the cache
# (examples/fetch_data.sh; an example whose data cannot be fetched runs on its synthetic stand-in,
# or is skipped where it has none), builds the examples in Release, runs every one (quick by
# default) into OUT/<name>/, then prints one summary table and writes OUT/report.html
# (examples/make_report.cpp: every example's table and figures, the paper's numbers beside ours).
#   examples/run.sh [--full] [--only NAME[,NAME...]]... [--out DIR] [-- more arguments for every example]
# --full runs the settings docs/results.md reports (hours on 2 cores; the longest sweeps keep their
# finished runs with --resume, so a stopped --full picks up where it was); quick mode takes minutes.
# Environment: METAGRAD_BUILD_ROOT (default <repo>/build), METAGRAD_JOBS (default: all cores),
# METAGRAD_DATA (data cache, default $HOME/.cache/metagrad).
set -euo pipefail

# ---- the suite: one line per run; each later method issue adds its example here ----
#   name | target | data set | data arguments | without the data ("SKIP": skip) | quick arguments ("-": not run) | full arguments
suite=(
  "03_explain_mnist         | 03_explain_mnist         | mnist         |                      | --synthetic | --quick | "
  "02_reweight_noisy_labels | 02_reweight_noisy_labels | mnist         | --data mnist         |             | --quick | "
  "04_decoy_mnist           | 04_decoy_mnist           | mnist         | --data mnist         | --data synthetic | --quick | --resume"
  "04_decoy_fashion_mnist   | 04_decoy_mnist           | fashion-mnist | --data fashion-mnist | SKIP        | -       | --threads 1 --resume"
  "05_explanation_constraints | 05_explanation_constraints | mnist       |                      |             | --quick | "
  "06_flint                 | 06_flint                 | mnist         | --data mnist         | --data synthetic | --quick | --epochs 40"
  "06_flint_fashion_mnist   | 06_flint                 | fashion-mnist | --data fashion-mnist | SKIP        | -       | "
  "07_color_mnist           | 07_color_mnist           | mnist         | --data mnist         | --data synthetic | --quick | --seeds 10 --sweep-seeds 1 --eg-lambdas 0.1,1,10 --threads 1"
  "08_cdep_decoy_mnist      | 08_cdep_decoy_mnist      | mnist         | --data mnist         | --data synthetic | --quick | --seeds 5 --sweep-seeds 1 --eg-lambdas 1,10,100 --threads 1"
  "09_smat_text_synthetic   | 09_smat_text_synthetic   | mnist         |                      |             | --quick | "
  "10_smat_text             | 10_smat_text             | spam-assassin |                      | SKIP        | --quick | --max-len 256 --max-epochs 100 --patience 15 --threads 1 --resume"
  "11_cd_text_lstm          | 11_cd_text_lstm          | spam-assassin | --data spam          | --data synthetic | --quick | --seeds 3 --threads 1"
  "13_smat_image            | 13_smat_image            | mnist         | --data mnist         | --data synthetic | --quick | --threads 1"
  "12_awd_mnist             | 12_awd_mnist             | mnist         | --data mnist         | --data synthetic | --quick | --threads 1"
)

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=SCRIPTDIR/../cmake/ensure_packages.sh
source cmake/ensure_packages.sh

usage() { sed -n '9p' "${BASH_SOURCE[0]}" | sed 's/^# *//' >&2; }
full=false out=$root/out only=() extra=()
while (($#)); do
  case $1 in
    --full) full=true ;;
    --quick) full=false ;;
    --only) [[ $# -ge 2 ]] || { usage; exit 2; }; IFS=, read -ra parts <<<"$2"; only+=("${parts[@]}"); shift ;;
    --only=*) IFS=, read -ra parts <<<"${1#--only=}"; only+=("${parts[@]}") ;;
    --out) [[ $# -ge 2 ]] || { usage; exit 2; }; out=$2; shift ;;
    --out=*) out=${1#--out=} ;;
    --) shift; extra=("$@"); break ;;
    -h | --help) usage; exit 0 ;;
    *) echo "examples/run.sh: unknown argument '$1'" >&2; usage; exit 2 ;;
  esac
  shift
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
mode=quick
$full && mode=full

trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; echo "${s%"${s##*[![:space:]]}"}"; }
# The runs of this mode (and of --only), as parallel arrays.
names=() targets=() datasets=() data_args=() no_data=() run_args=()
known=()
for line in "${suite[@]}"; do
  IFS='|' read -r n t d da nd q f <<<"$line"
  n=$(trim "$n")
  known+=("$n")
  args=$(trim "$q")
  $full && args=$(trim "$f")
  [[ $args == - ]] && continue
  if ((${#only[@]})); then
    hit=false
    for o in "${only[@]}"; do [[ $o == "$n" ]] && hit=true; done
    $hit || continue
  fi
  names+=("$n") targets+=("$(trim "$t")") datasets+=("$(trim "$d")") data_args+=("$(trim "$da")")
  no_data+=("$(trim "$nd")") run_args+=("$args")
done
for o in "${only[@]}"; do
  [[ " ${known[*]} " == *" $o "* ]] || { echo "examples/run.sh: --only $o: no such example (known: ${known[*]})" >&2; exit 2; }
done
((${#names[@]})) || { echo "examples/run.sh: nothing to run in $mode mode (--only ${only[*]})" >&2; exit 2; }

suite_start=$EPOCHREALTIME
seconds_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }'; }
echo "metagrad reproduction suite, $mode mode: ${names[*]} -> $out"

echo "==> [packages] checking the Debian packages the build needs"
ensure_packages cmake ninja-build g++ ccache libeigen3-dev nlohmann-json3-dev libcli11-dev zlib1g-dev libstb-dev libopenblas-openmp-dev libopenblas-dev libcairo2-dev fonts-dejavu-core pkgconf

declare -A have_data=()
for d in $(printf '%s\n' "${datasets[@]}" | sort -u); do
  echo "==> [data] fetching $d into the cache (examples/fetch_data.sh $d)"
  if bash examples/fetch_data.sh "$d"; then have_data[$d]=1
  else echo "==> [data] could not fetch $d: examples that need it run on synthetic data or are skipped"; fi
done

build=${METAGRAD_BUILD_ROOT:-$root/build}/examples
jobs=${METAGRAD_JOBS:-$(nproc)}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
echo "==> [build] configuring the Release build in $build"
cmake -S "$root" -B "$build" -G Ninja "${launcher[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DMETAGRAD_BUILD_TESTS=OFF -DMETAGRAD_BUILD_BENCHMARKS=OFF -DMETAGRAD_BUILD_EXAMPLES=ON >/dev/null
# A target this checkout does not define yet (an example still being written) is skipped.
available=$(ninja -C "$build" -t targets all | sed -n 's/^\([A-Za-z0-9_]*\): phony$/\1/p')
wanted=(make_report)
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$available" && [[ " ${wanted[*]} " != *" $t "* ]] && wanted+=("$t")
done
echo "==> [build] Release build of ${wanted[*]}"
build_start=$EPOCHREALTIME
declare -A broken=()
if ! cmake --build "$build" -j "$jobs" --target "${wanted[@]}"; then
  # Find which failed; the others still run.
  cmake --build "$build" -j "$jobs" --target make_report
  for t in "${wanted[@]:1}"; do
    cmake --build "$build" -j "$jobs" --target "$t" >/dev/null 2>&1 || broken[$t]=1
  done
  echo "==> [build] these targets do not build: ${!broken[*]} (their examples are reported as failed)"
fi
echo "<== [build] done in $(seconds_since "$build_start") s"

notes=() ran=() failed=()
for i in "${!names[@]}"; do
  n=${names[$i]} t=${targets[$i]} d=${datasets[$i]}
  if ! grep -qx "$t" <<<"$available"; then
    echo "==> [skip] $n: this checkout has no target $t yet"
    notes+=("$n: skipped, this checkout has no target $t yet")
    continue
  fi
  if [[ -n ${broken[$t]:-} ]]; then
    echo "==> [fail] $n: target $t does not build (see the build output above)"
    failed+=("$n")
    notes+=("$n: FAILED, target $t does not build")
    continue
  fi
  read -ra args <<<"${run_args[$i]}"
  if [[ -n ${have_data[$d]:-} ]]; then
    read -ra more <<<"${data_args[$i]}"
  elif [[ ${no_data[$i]} == SKIP ]]; then
    echo "==> [skip] $n: needs $d, which could not be fetched"
    notes+=("$n: skipped, $d could not be fetched")
    continue
  else
    read -ra more <<<"${no_data[$i]}"
    notes+=("$n: ran on synthetic data ($d could not be fetched)")
  fi
  rm -f "$out/$n/results.json"  # a failed run must not leave an old one for the report
  echo "==> [run $((${#ran[@]} + ${#failed[@]} + 1))] $n: $t ${args[*]} ${more[*]} ${extra[*]} --out $out/$n"
  run_start=$EPOCHREALTIME
  if "$build/examples/$t" "${args[@]}" "${more[@]}" "${extra[@]}" --out "$out/$n"; then
    ran+=("$n")
    echo "<== [run] $n done in $(seconds_since "$run_start") s"
  else
    rc=$?
    failed+=("$n")
    notes+=("$n: FAILED (exit $rc)")
    echo "<== [run] $n FAILED (exit $rc) after $(seconds_since "$run_start") s"
  fi
done

elapsed=$(seconds_since "$suite_start")
echo "==> [report] summary of ${ran[*]:-nothing} and $out/report.html"
report_rc=0
if ((${#ran[@]})); then
  note_args=()
  for n in "${notes[@]}"; do note_args+=(--note "$n"); done
  "$build/examples/make_report" --out "$out" --elapsed "$elapsed" "${note_args[@]}" "${ran[@]}" || report_rc=$?
fi
echo
echo "suite ($mode mode): ${#ran[@]} ran, ${#failed[@]} failed, $((${#names[@]} - ${#ran[@]} - ${#failed[@]})) skipped in ${elapsed} s"
for n in "${notes[@]}"; do echo "  $n"; done
((${#failed[@]} == 0 && report_rc == 0))
