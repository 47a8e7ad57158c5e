"""Time vosjax's DAVIS scorer against the official davis2017-evaluation toolkit.

Generates (once, seeded) a DAVIS-2017-val-sized set on disk: 30 sequences, 1,999 frames,
60 objects at 854x480, plus a perturbed prediction folder; runs both scorers as full command
lines (PNG reading included) on the same machine; compares every CSV number and the
unrounded per-object statistics; writes ``benchmarks/results/scoring_cpu.json``.

The toolkit is never vendored: pass a checkout of it and a Python that has its requirements
(opencv-python-headless, scikit-image, pandas, scipy, pillow, numpy, tqdm)::

    python benchmarks/score_timing.py --toolkit /path/to/davis2017-evaluation \\
        --toolkit-python /path/to/venv/bin/python --workdir /tmp/score_bench
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from vosjax.evaluation.synthetic import (  # noqa: E402
    blob_video, perturb_video, write_davis_layout, write_label_folder)

# Objects per sequence: 10x1, 12x2, 6x3, 2x4 = 60 objects in 30 sequences (DAVIS-2017 val).
OBJECTS = [1] * 10 + [2] * 12 + [3] * 6 + [4] * 2
TOTAL_FRAMES = 1999  # DAVIS-2017 val
HEIGHT, WIDTH = 480, 854

# Dumps the toolkit's unrounded per-object statistics (run with the toolkit's Python).
TOOLKIT_DUMP = """
import json, sys
sys.path.insert(0, sys.argv[1])
from davis2017.evaluation import DAVISEvaluation
res = DAVISEvaluation(davis_root=sys.argv[2], task='semi-supervised', gt_set='val')
res = res.evaluate(sys.argv[3])
out = {m: {'names': list(res[m]['M_per_object']), 'M': [float(v) for v in res[m]['M']],
           'R': [float(v) for v in res[m]['R']], 'D': [float(v) for v in res[m]['D']]}
       for m in ('J', 'F')}
json.dump(out, open(sys.argv[4], 'w'))
"""


def make_benchmark_set(workdir: str, seed: int = 0) -> tuple[str, str]:
    """Write ``workdir/davis`` (ground truth) and ``workdir/results`` (predictions) unless
    they exist already; returns both paths."""
    davis, results = os.path.join(workdir, "davis"), os.path.join(workdir, "results")
    if os.path.exists(os.path.join(workdir, "complete")):
        return davis, results
    shutil.rmtree(workdir, ignore_errors=True)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(25, 105, len(OBJECTS))
    lengths = np.maximum(3, np.round(lengths * TOTAL_FRAMES / lengths.sum())).astype(int)
    lengths[-1] += TOTAL_FRAMES - lengths.sum()
    sequences = {}
    for i, (n_obj, n_frames) in enumerate(zip(OBJECTS, lengths)):
        name = f"seq{i:02d}"
        gt = blob_video(rng, int(n_frames), n_obj, HEIGHT, WIDTH, void_patch=(i % 7 == 3))
        sequences[name] = gt
        write_label_folder(os.path.join(results, name), perturb_video(rng, gt, n_obj))
    write_davis_layout(davis, sequences, year=2017, split="val")
    open(os.path.join(workdir, "complete"), "w").close()
    return davis, results


def _read_csv(path: str) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _csv_diff(a: str, b: str) -> float:
    """Max abs difference between the numbers of two CSVs of the same layout."""
    ra, rb = _read_csv(a), _read_csv(b)
    if len(ra) != len(rb) or ra[0] != rb[0]:
        raise SystemExit(f"CSV layouts differ: {a} vs {b}")
    diff = 0.0
    for la, lb in zip(ra[1:], rb[1:]):
        for va, vb in zip(la, lb):
            try:
                diff = max(diff, abs(float(va) - float(vb)))
            except ValueError:
                if va != vb:
                    raise SystemExit(f"CSV rows differ: {la} vs {lb}") from None
    return diff


def _timed(cmd: list[str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(l.split(":", 1)[1].strip() for l in out.splitlines()
                    if l.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--toolkit", required=True, help="davis2017-evaluation checkout")
    parser.add_argument("--toolkit-python", default=sys.executable)
    parser.add_argument("--workdir", default="/tmp/vosjax_score_bench")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of each (min kept)")
    parser.add_argument("--output", default=os.path.join(REPO, "benchmarks", "results",
                                                         "scoring_cpu.json"))
    args = parser.parse_args()

    davis, results = make_benchmark_set(args.workdir)
    ours_dir, tk_dir = os.path.join(args.workdir, "ours"), os.path.join(args.workdir, "toolkit")
    ours_cmd = [sys.executable, os.path.join(REPO, "evaluate.py"), "--score",
                f"--davis-root={davis}", "--year=2017", "--split=val", f"--results={ours_dir}"]
    tk_cmd = [args.toolkit_python, os.path.join(args.toolkit, "evaluation_method.py"),
              "--task", "semi-supervised", "--set", "val", "--davis_path", davis,
              "--results_path", tk_dir]
    times = {"ours": [], "toolkit": []}
    for _ in range(args.repeats):
        for name, folder, cmd, cwd in (("ours", ours_dir, ours_cmd, REPO),
                                       ("toolkit", tk_dir, tk_cmd, args.toolkit)):
            # Fresh copies: the toolkit reuses CSVs it finds in the results folder.
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(results, folder)
            times[name].append(_timed(cmd, cwd))
            print(f"{name}: {times[name][-1]:.2f} s", flush=True)

    csv_diff = max(_csv_diff(os.path.join(ours_dir, f"{kind}_results-val.csv"),
                             os.path.join(tk_dir, f"{kind}_results-val.csv"))
                   for kind in ("global", "per-sequence"))

    # Unrounded per-object statistics of both.
    dump = os.path.join(args.workdir, "toolkit_raw.json")
    subprocess.run([args.toolkit_python, "-c", TOOLKIT_DUMP, args.toolkit, davis, results,
                    dump], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(dump) as f:
        tk = json.load(f)
    from vosjax.evaluation.davis import score_davis  # noqa: PLC0415
    ours = score_davis(davis, results, year=2017, split="val")
    raw_diff = 0.0
    for metric in ("J", "F"):
        if tk[metric]["names"] != ours.object_names:
            raise SystemExit("object rows differ between the toolkit and vosjax")
        for stat in ("M", "R", "D"):
            ref = np.asarray(tk[metric][stat])
            raw_diff = max(raw_diff, float(np.abs(ref - ours.stat(metric, stat)).max()))

    t_ours, t_tk = min(times["ours"]), min(times["toolkit"])
    record = {
        "machine": {"cpu": _cpu_name(), "logical_cpus": os.cpu_count(),
                    "python": platform.python_version(), "numpy": np.__version__},
        "dataset": {"sequences": len(OBJECTS), "frames": TOTAL_FRAMES, "objects": sum(OBJECTS),
                    "height": HEIGHT, "width": WIDTH, "seed": 0},
        "command_ours": " ".join(ours_cmd),
        "command_toolkit": " ".join(tk_cmd),
        "seconds_ours": round(t_ours, 3),
        "seconds_toolkit": round(t_tk, 3),
        "all_runs_seconds": {k: [round(v, 3) for v in vs] for k, vs in times.items()},
        "speedup": round(t_tk / t_ours, 2),
        "max_abs_diff_csv": csv_diff,
        "max_abs_diff_unrounded_per_object": raw_diff,
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    tmp = args.output + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    os.replace(tmp, args.output)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
