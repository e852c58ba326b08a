#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Merges the results.json of runs of one example that were split by method or setting (one process
per core, say) into one results.json: rows are concatenated, a row that repeats an earlier one's
(method, setting) is an error, and per method the row with the best mean of the selection metric is marked selected again, so the choice is made over
the whole sweep, on validation data only. Figures are renamed <run>_<figure> with the run's folder
name (unless they already start so) and copied beside the output; an earlier merge's output can be
one of the runs.

With --by-seed the runs are instead the same rows on disjoint seeds (one process per seed): each
(method, setting) must appear in every run; its metrics' values are joined in seed order and mean
and sample std recomputed, and per-seed lists of a row (e.g. best_epochs) are joined the same way.
The figures are the first run's (they come from its first seed).

  examples/merge_results.py --select valid_worst_group_acc [--minimize] --out DIR RUN_DIR [RUN_DIR ...]
  examples/merge_results.py --by-seed --select valid_acc --out DIR SEED_RUN_DIR [SEED_RUN_DIR ...]
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile


def merge_by_seed(docs, out):
    """One document whose rows hold every run's seeds (see the module's description)."""
    seeds = [s for _, d in docs for s in d["seeds"]]
    if len(set(seeds)) != len(seeds):
        sys.exit(f"merge_results --by-seed: the runs' seeds overlap: {seeds}")
    order = sorted(range(len(seeds)), key=lambda i: seeds[i])
    first_run, first = docs[0]
    keys = [(r["method"], json.dumps(r["setting"], sort_keys=True)) for r in first["rows"]]
    per_run = []
    for run, d in docs:
        rows = {(r["method"], json.dumps(r["setting"], sort_keys=True)): r for r in d["rows"]}
        if set(rows) != set(keys):
            sys.exit(f"merge_results --by-seed: {run} does not have the same rows as {first_run}")
        per_run.append((d, rows))
    merged = dict(first)
    merged["seeds"] = sorted(seeds)
    merged["rows"] = []
    for key in keys:
        row = dict(first["rows"][keys.index(key)])
        row["metrics"] = {}
        for name in first["rows"][keys.index(key)]["metrics"]:
            values = []
            for d, rows in per_run:
                m = rows[key]["metrics"].get(name)
                if m is None or len(m["values"]) != len(d["seeds"]):
                    sys.exit(f"merge_results --by-seed: {key[0]}.{name} lacks one value per seed in a run")
                values += m["values"]
            values = [values[i] for i in order]
            row["metrics"][name] = {"mean": statistics.fmean(values),
                                    "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                                    "values": values}
        for field, value in first["rows"][keys.index(key)].items():
            if isinstance(value, list) and len(value) == len(first["seeds"]) and field != "metrics":
                joined = [v for _, rows in per_run for v in rows[key][field]]
                row[field] = [joined[i] for i in order]
        merged["rows"].append(row)
    for fig in first["figures"]:
        shutil.copyfile(os.path.join(first_run, fig), os.path.join(out, fig))
    merged["runs"] = {os.path.basename(os.path.normpath(run)): {"seeds": d["seeds"], "elapsed_s": d["elapsed_s"]}
                      for run, d in docs}
    merged["elapsed_s"] = sum(d["elapsed_s"] for _, d in docs)
    return merged


def merge_rows(docs, out):
    """One document with every run's rows (a (method, setting) may appear in one run only)."""
    merged = dict(docs[0][1])
    merged["rows"], merged["figures"], merged["runs"] = [], [], {}
    seen = set()
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
            shutil.copyfile(os.path.join(run, fig), os.path.join(out, target))
            merged["figures"].append(target)
        if "runs" in d:  # an earlier merge: keep its runs as they were
            merged["runs"].update(d["runs"])
        else:
            merged["runs"][name] = {"config": d.get("config"), "elapsed_s": d["elapsed_s"]}
    merged["elapsed_s"] = sum(d["elapsed_s"] for _, d in docs)
    return merged


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--select", required=True, help="the validation metric the selection uses")
    ap.add_argument("--minimize", action="store_true", help="lower is better (a loss or error)")
    ap.add_argument("--out", required=True, help="folder for the merged results.json and figures")
    ap.add_argument("--by-seed", action="store_true", help="the runs are the same rows on disjoint seeds")
    ap.add_argument("runs", nargs="+", help="folders holding a results.json each")
    a = ap.parse_args()

    docs = []
    for run in a.runs:
        with open(os.path.join(run, "results.json")) as f:
            docs.append((run, json.load(f)))
    first = docs[0][1]
    for run, d in docs[1:]:
        for key in ("example", "mode") + (() if a.by_seed else ("seeds",)):
            if d[key] != first[key]:
                sys.exit(f"merge_results: {run} has {key} {d[key]!r}, the first run {first[key]!r}")
    os.makedirs(a.out, exist_ok=True)
    if a.by_seed:
        merged = merge_by_seed(docs, a.out)
    else:
        merged = merge_rows(docs, a.out)
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
    how = "seeds joined per row" if a.by_seed else "rows concatenated"
    merged["merge_note"] = (f"{len(docs)} runs merged by examples/merge_results.py: {how}, "
                            f"selection redone per method on the best mean {a.select}")
    fd, tmp = tempfile.mkstemp(dir=a.out, prefix=".results.json.")
    with os.fdopen(fd, "w") as f:
        json.dump(merged, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(a.out, "results.json"))
    print(f"wrote {os.path.join(a.out, 'results.json')} ({len(merged['rows'])} rows)")


if __name__ == "__main__":
    main()
