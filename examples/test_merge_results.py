#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ctest for merge_results.py: a run split by method and a run split by seed merge into the
results.json one process would have written (rows, joined values, mean/std, the selection)."""
import json
import os
import statistics
import subprocess
import sys
import tempfile

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "merge_results.py")


def metric(values):
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def write_run(folder, seeds, rows, figure="fig.png"):
    os.makedirs(folder)
    with open(os.path.join(folder, figure), "wb") as f:
        f.write(b"\x89PNG fixture")
    doc = {"example": "fixture", "mode": "full", "seeds": seeds, "rows": rows, "figures": [figure],
           "elapsed_s": 10.0}
    with open(os.path.join(folder, "results.json"), "w") as f:
        json.dump(doc, f)


def row(method, setting, valid, test, **extra):
    return {"method": method, "setting": setting, "selected": True,
            "metrics": {"valid_acc": metric(valid), "test_acc": metric(test)}, **extra}


def merge(out, *args):
    subprocess.run([sys.executable, SCRIPT, "--out", out, *args], check=True, capture_output=True)
    with open(os.path.join(out, "results.json")) as f:
        return json.load(f)


def fails(out, *args):
    return subprocess.run([sys.executable, SCRIPT, "--out", out, *args], capture_output=True).returncode != 0


def main():
    failures, checks = [], [0]

    def expect(ok, what):
        checks[0] += 1
        if not ok:
            failures.append(what)

    with tempfile.TemporaryDirectory() as tmp:
        # Split by seed: seeds 2 and 0 in one process, 1 in another; values must come out in seed order.
        write_run(f"{tmp}/a", [2, 0], [row("erm", {}, [0.5, 0.7], [0.4, 0.6], best_epochs=[3, 1]),
                                       row("rrr", {"lambda": 1}, [0.8, 0.6], [0.7, 0.5], best_epochs=[9, 8])])
        write_run(f"{tmp}/b", [1], [row("erm", {}, [0.6], [0.5], best_epochs=[2]),
                                    row("rrr", {"lambda": 1}, [0.7], [0.6], best_epochs=[7])])
        d = merge(f"{tmp}/by_seed", "--by-seed", "--select", "valid_acc", f"{tmp}/a", f"{tmp}/b")
        expect(d["seeds"] == [0, 1, 2], f"seeds {d['seeds']}")
        erm = next(r for r in d["rows"] if r["method"] == "erm")
        expect(erm["metrics"]["test_acc"]["values"] == [0.6, 0.5, 0.4], f"erm test values {erm['metrics']}")
        expect(abs(erm["metrics"]["test_acc"]["mean"] - 0.5) < 1e-12, "erm mean")
        expect(abs(erm["metrics"]["test_acc"]["std"] - 0.1) < 1e-12, "erm sample std")
        expect(erm["best_epochs"] == [1, 2, 3], f"per-seed list {erm['best_epochs']}")
        expect(all(r["selected"] for r in d["rows"]), "one row per method: each selected")
        expect(os.path.exists(f"{tmp}/by_seed/fig.png"), "the first run's figure is copied")
        # Overlapping seeds, or a run without one of the rows, are errors.
        write_run(f"{tmp}/c", [0], [row("erm", {}, [0.6], [0.5]), row("rrr", {"lambda": 1}, [0.7], [0.6])])
        expect(fails(f"{tmp}/bad1", "--by-seed", "--select", "valid_acc", f"{tmp}/a", f"{tmp}/c"), "overlapping seeds")
        write_run(f"{tmp}/e", [5], [row("erm", {}, [0.6], [0.5])])
        expect(fails(f"{tmp}/bad2", "--by-seed", "--select", "valid_acc", f"{tmp}/a", f"{tmp}/e"), "missing row")

        # Split by setting: the selection is redone over both runs, on validation only.
        write_run(f"{tmp}/s1", [0, 1], [row("rrr", {"lambda": 1}, [0.6, 0.6], [0.9, 0.9])])
        write_run(f"{tmp}/s2", [0, 1], [row("rrr", {"lambda": 10}, [0.8, 0.8], [0.1, 0.1])])
        d = merge(f"{tmp}/by_setting", "--select", "valid_acc", f"{tmp}/s1", f"{tmp}/s2")
        chosen = [r["setting"] for r in d["rows"] if r["selected"]]
        expect(chosen == [{"lambda": 10}], f"selected {chosen} (must follow valid, not test)")
        expect(sorted(d["figures"]) == ["s1_fig.png", "s2_fig.png"], f"figures {d['figures']}")
        expect(fails(f"{tmp}/bad3", "--select", "valid_acc", f"{tmp}/s1", f"{tmp}/s1"), "a repeated row")

    for f in failures:
        print("FAILED:", f)
    print(f"{checks[0] - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
