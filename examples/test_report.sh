#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CTest test-examples-report: builds the suite's report from a fixture (report_fixture: two fake
# examples, figures drawn by io/plot), checks make_report's terminal summary and that it refuses a
# malformed results.json naming the field, then renders report.html in headless chromium
# (--dump-dom and --screenshot) and checks that every table and image is there and every image
# loaded (the page's own script writes data-loaded-images="OK/ALL" on <body> after load).
# Exits 77 (CTest's skip) where chromium is absent.
#   test_report.sh REPORT_FIXTURE MAKE_REPORT WORKDIR
set -euo pipefail

fixture=$1 make_report=$2 work=$3
fail() {
  echo "test_report.sh: FAILED: $*" >&2
  exit 1
}
rm -rf "$work"
mkdir -p "$work"
out=$work/out

"$fixture" "$out" --broken >/dev/null
# The malformed one alone: make_report exits 1 and names the file and the field.
if "$make_report" --out "$out" broken >"$work/broken.txt" 2>&1; then fail "make_report accepted a metric without std"; fi
grep -q 'broken/results.json: rows\[1\].metrics.test_acc: must be {"mean", "std", "values"}' "$work/broken.txt" ||
  fail "make_report's error does not name the field: $(cat "$work/broken.txt")"
rm -rf "$out/broken"

"$make_report" --out "$out" --note "fixture of test_report.sh" --elapsed 3.5 >"$work/summary.txt" ||
  fail "make_report failed: $(cat "$work/summary.txt")"
cat "$work/summary.txt"
# Selected rows only (rrr at lambda 10, not its other two), the paper's figure beside ours.
grep -Eq '^fake_paper +ibp_ex +test_acc +0\.900 ± 0\.000 +0\.910$' "$work/summary.txt" || fail "no ibp_ex line with the paper's 0.910"
grep -Eq '^ +rrr +test_worst_group_acc +0\.450 ± 0\.050 +—$' "$work/summary.txt" || fail "no rrr worst-group line"
[[ $(grep -c ' rrr ' "$work/summary.txt") == 2 ]] || fail "the summary should show rrr's selected row only (2 metrics)"
# A curve: one selected row per method; the summary names its point.
grep -Eq '^ +penalty \(n=10\) +test_error +0\.200 ± 0\.000 +—$' "$work/summary.txt" || fail "no penalty (n=10) line"
grep -q 'penalty (n=20)' "$work/summary.txt" && fail "the summary shows an unselected curve point"
grep -Eq '^ +costly +test_acc +0\.500 ± 0\.141 +—$' "$work/summary.txt" || fail "no line for the row with seeds of its own"
page=$out/report.html
[[ -s $page ]] || fail "no $page"
grep -q 'id=injected>' "$page" && fail "unescaped text in the page"

browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [[ -z $browser ]]; then
  echo "SKIP: chromium is not installed (Debian: apt-get install chromium); the report was built and checked, not rendered"
  exit 77
fi
# shellcheck disable=SC2054  # the comma belongs to --window-size
flags=(--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --hide-scrollbars
  --user-data-dir="$work/profile" --virtual-time-budget=5000 --window-size=1280,2000)
url="file://$(cd "$out" && pwd)/report.html"
timeout 60 "$browser" "${flags[@]}" --dump-dom "$url" >"$work/dom.html" 2>"$work/chromium.log" ||
  fail "chromium --dump-dom failed: $(tail -5 "$work/chromium.log")"
timeout 60 "$browser" "${flags[@]}" --screenshot="$work/report.png" "$url" >>"$work/chromium.log" 2>&1 ||
  fail "chromium --screenshot failed: $(tail -5 "$work/chromium.log")"

dom=$work/dom.html
# Three figures, all decoded; a summary, two results tables and one of the paper's figures.
grep -q 'data-loaded-images="3/3"' "$dom" || fail "not every image loaded: $(grep -o 'data-loaded-images="[^"]*"' "$dom")"
grep -q 'data-tables="4"' "$dom" || fail "expected 4 tables: $(grep -o 'data-tables="[^"]*"' "$dom")"
for want in 'id="fake_sweep"' 'id="fake_paper"' 'class="summary"' 'src="fake_sweep/accuracy.png"' \
  'src="fake_sweep/sweep.png"' 'src="fake_paper/grid.png"' 'class="paper-figures"' '(paper 0.910)' \
  'fixture of test_report.sh' '&lt;img src=x id=injected&gt;' '&lt;b&gt;bold?&lt;/b&gt;'; do
  grep -qF -- "$want" "$dom" || fail "the rendered page lacks $want"
done
[[ $(grep -o '<table class="results"' "$dom" | wc -l) == 2 ]] || fail "expected 2 results tables"
grep -q 'id="injected"' "$dom" && fail "the paper's text became an element"
size=$(stat -c %s "$work/report.png" 2>/dev/null || echo 0)
((size > 20000)) || fail "the screenshot $work/report.png is missing or blank ($size bytes)"
echo "test_report.sh: report rendered by $("$browser" --version 2>/dev/null | head -1); 3/3 images loaded, 4 tables; screenshot $work/report.png ($size bytes)"
