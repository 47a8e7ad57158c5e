"""Time vosjax's DAVIS scorer against the official davis2017-evaluation toolkit.

Generates (once, seeded) a DAVIS-2017-val-sized set on disk: 30 sequences, 1,999 frames,
60 objects at 854x480, plus a perturbed prediction folder; runs both scorers as full command
lines (PNG reading included) on the same machine; compares every CSV number and the
unrounded per-object statistics; writes ``benchmarks/results/scoring_cpu.json``.

The toolkit is never vendored: pass a checkout of it and a Python that has its requirements
(opencv-python-headless, scikit-image, pandas, scipy, pillow, numpy, tqdm)::

    python -m benchmarks.score_timing --toolkit /path/to/davis2017-evaluation \\
        --toolkit-python /path/to/venv/bin/python --workdir /tmp/score_bench
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time

import numpy as np

from benchmarks.official.davis_toolkit import (csv_max_diff, ours_cli, raw_max_diff,
                                               run_toolkit_cli, run_toolkit_raw, toolkit_command)
from vosjax.evaluation.davis import score_davis
from vosjax.evaluation.synthetic import (blob_video, perturb_video, write_davis_layout,
                                         write_label_folder)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Objects per sequence: 10x1, 12x2, 6x3, 2x4 = 60 objects in 30 sequences (DAVIS-2017 val).
OBJECTS = [1] * 10 + [2] * 12 + [3] * 6 + [4] * 2
TOTAL_FRAMES = 1999  # DAVIS-2017 val
HEIGHT, WIDTH = 480, 854

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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(fn, *args) -> tuple[float, float]:
    """(wall seconds, user + system CPU seconds of the child process) of ``fn(*args)``."""
    cpu, start = _children_cpu(), time.perf_counter()
    fn(*args)
    return time.perf_counter() - start, _children_cpu() - cpu


def _run_ours(cmd: list[str]) -> None:
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)


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
    times = {"ours": [], "toolkit": []}
    cpu = {"ours": [], "toolkit": []}
    load = [os.getloadavg()[0]]
    for _ in range(args.repeats):
        # Fresh copies each time: the toolkit reuses CSVs it finds in the results folder.
        for folder in (ours_dir, tk_dir):
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(results, folder)
        for name, fn, fargs in (
                ("ours", _run_ours, (ours_cli(davis, ours_dir),)),
                ("toolkit", run_toolkit_cli, (args.toolkit, args.toolkit_python, davis, tk_dir))):
            wall, used = _timed(fn, *fargs)
            times[name].append(wall)
            cpu[name].append(used)
            print(f"{name}: {wall:.2f} s wall, {used:.2f} s CPU", flush=True)
    load.append(os.getloadavg()[0])

    csv_diff = csv_max_diff(ours_dir, tk_dir)
    raw = raw_max_diff(run_toolkit_raw(args.toolkit, args.toolkit_python, davis, results),
                       score_davis(davis, results, year=2017, split="val"))

    t_ours, t_tk = min(times["ours"]), min(times["toolkit"])
    record = {
        "machine": {"cpu": _cpu_name(), "logical_cpus": os.cpu_count(),
                    "python": platform.python_version(), "numpy": np.__version__},
        "dataset": {"sequences": len(OBJECTS), "frames": TOTAL_FRAMES, "objects": sum(OBJECTS),
                    "height": HEIGHT, "width": WIDTH, "seed": 0},
        "command_ours": " ".join(ours_cli(davis, ours_dir)),
        "command_toolkit": toolkit_command(args.toolkit, args.toolkit_python, davis, tk_dir),
        "seconds_ours": round(t_ours, 3),
        "seconds_toolkit": round(t_tk, 3),
        "all_runs_seconds": {k: [round(v, 3) for v in vs] for k, vs in times.items()},
        "all_runs_cpu_seconds": {k: [round(v, 3) for v in vs] for k, vs in cpu.items()},
        "speedup": round(t_tk / t_ours, 2),
        "speedup_cpu_time": round(min(cpu["toolkit"]) / min(cpu["ours"]), 2),
        "load_average_1min_before_after": [round(v, 2) for v in load],
        "max_abs_diff_csv": csv_diff,
        **{f"max_abs_diff_{k}": v for k, v in raw.items()},
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
