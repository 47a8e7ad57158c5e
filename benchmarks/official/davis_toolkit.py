"""Run the official davis2017-evaluation toolkit (a checkout you pass in; never vendored) and
compare its numbers with vosjax's.

The toolkit is driven as a subprocess with its own Python, which must have its requirements
(opencv-python-headless, scikit-image, pandas, scipy, pillow, numpy, tqdm), in the checkout's
folder (so its ``davis2017`` package imports as it does for the toolkit's own scripts).
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

# Runs inside the toolkit's Python, in the checkout (``python -c`` puts the working folder first
# on the module path): per-frame J / F of every sequence through the toolkit's own classes (the
# loop of DAVISEvaluation.evaluate), and its per-object statistics. Arguments: davis root,
# results folder, output file (absolute paths).
_DUMP = r"""
import json, sys
from davis2017.evaluation import DAVISEvaluation
from davis2017.results import Results
ev = DAVISEvaluation(davis_root=sys.argv[1], task='semi-supervised', gt_set='val')
frames = {}
results = Results(root_dir=sys.argv[2])
for seq in ev.dataset.get_sequences():
    gt, void, ids = ev.dataset.get_all_masks(seq, True)
    gt, ids = gt[:, 1:-1], ids[1:-1]
    res = results.read_masks(seq, ids)
    j, f = ev._evaluate_semisupervised(gt, res, None, ('J', 'F'))
    frames[seq] = {'J': j.tolist(), 'F': f.tolist()}
stats = ev.evaluate(sys.argv[2])
out = {'frames': frames}
for m in ('J', 'F'):
    out[m] = {'names': list(stats[m]['M_per_object']),
              **{s: [float(v) for v in stats[m][s]] for s in ('M', 'R', 'D')}}
json.dump(out, open(sys.argv[3], 'w'))
"""


def run_toolkit_cli(toolkit: str, python: str, davis_root: str, results: str) -> float:
    """``evaluation_method.py --task semi-supervised --set val`` on ``results``; returns the
    wall time in seconds. The toolkit reuses CSVs it finds, so pass a fresh folder."""
    cmd = [python, os.path.join(toolkit, "evaluation_method.py"), "--task", "semi-supervised",
           "--set", "val", "--davis_path", davis_root, "--results_path", results]
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=toolkit, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if out.returncode != 0 or "Global results" not in out.stdout:
        raise RuntimeError(f"toolkit failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return elapsed


def toolkit_command(toolkit: str, python: str, davis_root: str, results: str) -> str:
    return (f"{python} {os.path.join(toolkit, 'evaluation_method.py')} --task semi-supervised "
            f"--set val --davis_path {davis_root} --results_path {results}")


def run_toolkit_raw(toolkit: str, python: str, davis_root: str, results: str) -> dict:
    """The toolkit's unrounded numbers: ``{"frames": {seq: {"J": [[...]], "F": ...}},
    "J": {"names", "M", "R", "D"}, "F": {...}}``."""
    with tempfile.TemporaryDirectory() as tmp:
        dump = os.path.join(tmp, "raw.json")
        out = subprocess.run([python, "-c", _DUMP, os.path.abspath(davis_root),
                              os.path.abspath(results), dump],
                             cwd=toolkit, capture_output=True, text=True)
        if out.returncode != 0 or not os.path.exists(dump):
            raise RuntimeError(f"toolkit failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
        with open(dump) as f:
            return json.load(f)


def _rows(path: str) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def csv_max_diff(ours_dir: str, toolkit_dir: str, split: str = "val") -> float:
    """Max abs difference over every number of both CSVs (names and layout must match;
    an empty cell, the toolkit's NaN, must be empty in both)."""
    diff = 0.0
    for kind in ("global", "per-sequence"):
        a = _rows(os.path.join(ours_dir, f"{kind}_results-{split}.csv"))
        b = _rows(os.path.join(toolkit_dir, f"{kind}_results-{split}.csv"))
        if len(a) != len(b) or a[0] != b[0]:
            raise AssertionError(f"{kind} CSV layouts differ: {a[:2]} vs {b[:2]}")
        for ra, rb in zip(a[1:], b[1:]):
            for va, vb in zip(ra, rb, strict=True):
                try:
                    diff = max(diff, abs(float(va) - float(vb)))
                except ValueError:
                    if va != vb:
                        raise AssertionError(f"{kind} CSV rows differ: {ra} vs {rb}") from None
    return diff


def raw_max_diff(toolkit_raw: dict, scores) -> dict[str, float]:
    """Max abs differences between the toolkit's unrounded numbers and a
    :class:`vosjax.evaluation.protocol.DavisScores`: per frame and per object statistic
    (NaN must be NaN in both)."""
    def d(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
            raise AssertionError(f"shapes or NaNs differ: {a.shape} vs {b.shape}")
        ok = ~np.isnan(a)
        return float(np.abs(a[ok] - b[ok]).max(initial=0.0))

    per_frame = 0.0
    for seq in scores.sequences:
        ref = toolkit_raw["frames"][seq.name]
        per_frame = max(per_frame, d(ref["J"], seq.j), d(ref["F"], seq.f))
    stats = 0.0
    for metric in ("J", "F"):
        if toolkit_raw[metric]["names"] != scores.object_names:
            raise AssertionError("object rows differ between the toolkit and vosjax")
        for s in ("M", "R", "D"):
            stats = max(stats, d(toolkit_raw[metric][s], scores.stat(metric, s)))
    return {"per_frame": per_frame, "per_object_stats": stats}


def ours_cli(davis_root: str, results: str, year: int = 2017) -> list[str]:
    """The vosjax command line that scores ``results``."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return [sys.executable, os.path.join(repo, "evaluate.py"), "--score",
            f"--davis_root={davis_root}", f"--year={year}", "--split=val",
            f"--results={results}"]
