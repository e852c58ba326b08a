#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Merges the results.json of runs of one example that were split by method or setting (one process
per core, say) into one results.json: rows are concatenated, a row that repeats an earlier one's
(method, setting) is an error, and per method the row with the best mean of the selection metric is marked selected again, so the choice is made over
the whole sweep, on validation data only. Figures are renamed <run>_<figure> with the run's folder
name (unless they already start so) and copied beside the output; an earlier merge's output can be
one of the runs.

  examples/merge_results.py --select valid_worst_group_acc [--minimize] --out DIR RUN_DIR [RUN_DIR ...]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--select", required=True, help="the validation metric the selection uses")
    ap.add_argument("--minimize", action="store_true", help="lower is better (a loss or error)")
    ap.add_argument("--out", required=True, help="folder for the merged results.json and figures")
    ap.add_argument("runs", nargs="+", help="folders holding a results.json each")
    a = ap.parse_args()

    docs = []
    for run in a.runs:
        with open(os.path.join(run, "results.json")) as f:
            docs.append((run, json.load(f)))
    first = docs[0][1]
    for run, d in docs[1:]:
        for key in ("example", "mode", "seeds"):
            if d[key] != first[key]:
                sys.exit(f"merge_results: {run} has {key} {d[key]!r}, the first run {first[key]!r}")
    merged = dict(first)
    merged["rows"], merged["figures"], merged["runs"] = [], [], {}
    seen = set()
    os.makedirs(a.out, exist_ok=True)
    for run, d in docs:
        name = os.path.basename(os.path.normpath(run))
        for row in d["rows"]:
            key = (row["method"], json.dumps(row["setting"], sort_keys=True))
            if key in seen:
                sys.exit(f"merge_results: {run} repeats the row {key}")
            seen.add(key)
            merged["rows"].append(row)
        for fig in d["figures"]:
            target = fig if fig.startswith(f"{name}_") else f"{name}_{fig}"
            shutil.copyfile(os.path.join(run, fig), os.path.join(a.out, target))
            merged["figures"].append(target)
        if "runs" in d:  # an earlier merge: keep its runs as they were
            merged["runs"].update(d["runs"])
        else:
            merged["runs"][name] = {"config": d.get("config"), "elapsed_s": d["elapsed_s"]}
    merged["elapsed_s"] = sum(d["elapsed_s"] for _, d in docs)
    best = {}
    for i, row in enumerate(merged["rows"]):
        m = row["metrics"].get(a.select)
        if m is None:
            sys.exit(f"merge_results: row {row['method']} {row['setting']} has no metric {a.select}")
        group = row["method"]
        score = -m["mean"] if a.minimize else m["mean"]
        if group not in best or score > best[group][0]:
            best[group] = (score, i)
    chosen = {i for _, i in best.values()}
    for i, row in enumerate(merged["rows"]):
        row["selected"] = i in chosen
    merged["merge_note"] = (f"{len(docs)} runs merged by examples/merge_results.py: rows concatenated, "
                            f"selection redone per method on the best mean {a.select}")
    fd, tmp = tempfile.mkstemp(dir=a.out, prefix=".results.json.")
    with os.fdopen(fd, "w") as f:
        json.dump(merged, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(a.out, "results.json"))
    print(f"wrote {os.path.join(a.out, 'results.json')} ({len(merged['rows'])} rows)")


if __name__ == "__main__":
    main()
