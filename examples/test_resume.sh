#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CTest test-examples-resume: a sweep split with --shard 0/2 and 1/2 and finished by a run with
# --resume writes the same results.json rows (every value per seed) and the same figures as the
# sweep run in one go, for the SMaT driver (09, synthetic text) and for 04 (synthetic squares); a
# rerun with --resume trains nothing; a shard alone writes no results.json.
#   test_resume.sh SMAT_TEXT_SYNTHETIC DECOY_MNIST PYTHON3 WORKDIR
set -euo pipefail

smat=$1 decoy=$2 python=$3 work=$4
fail() {
  echo "test_resume.sh: FAILED: $*" >&2
  exit 1
}
rm -rf "$work"
mkdir -p "$work"

check_same() {  # check_same NAME DIR_A DIR_B FIGURE...
  local name=$1 a=$2 b=$3
  shift 3
  "$python" - "$a/results.json" "$b/results.json" <<'PY' || fail "$name: the resumed run's rows differ"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
keep = lambda d: [(r["method"], r["setting"], r["selected"], r["metrics"]) for r in d["rows"]]
sys.exit(0 if keep(a) == keep(b) and len(a["rows"]) > 0 else 1)
PY
  for f in "$@"; do cmp -s "$a/$f" "$b/$f" || fail "$name: $f differs"; done
}

run_three_ways() {  # run_three_ways NAME BINARY ARGS...: whole, then shards + resume
  local name=$1 bin=$2
  shift 2
  "$bin" "$@" --out "$work/$name-whole" >"$work/$name-whole.log" 2>&1 || fail "$name: the whole run failed"
  "$bin" "$@" --out "$work/$name-split" --shard 1/2 >"$work/$name-shard1.log" 2>&1 || fail "$name: shard 1/2 failed"
  [[ ! -e $work/$name-split/results.json ]] || fail "$name: a shard alone wrote results.json"
  "$bin" "$@" --out "$work/$name-split" --shard 0/2 >"$work/$name-shard0.log" 2>&1 || fail "$name: shard 0/2 failed"
  "$bin" "$@" --out "$work/$name-split" --resume >"$work/$name-resume.log" 2>&1 || fail "$name: the resume run failed"
  grep -q " 0 to train here" "$work/$name-resume.log" || fail "$name: the resume run trained again: $(cat "$work/$name-resume.log")"
}

run_three_ways smat "$smat" --quick --seeds 2 --ns 125 --max-epochs 2 --teacher-epochs 1 --conditions none,attention_all,smat --threads 1
check_same smat "$work/smat-whole" "$work/smat-split" explanations.html
run_three_ways decoy "$decoy" --quick --data synthetic --epochs 1 --methods erm,rrr --train-limit 300 --seeds 2 --threads 1
check_same decoy "$work/decoy-whole" "$work/decoy-split" saliency.png accuracy.png
echo "test_resume.sh: the sharded and resumed sweeps match the whole ones"
