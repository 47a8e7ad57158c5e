"""Time vosjax's DAVIS scorer against the official davis2017-evaluation toolkit.

Generates (once, seeded) a DAVIS-2017-val-sized set on disk: 30 sequences, 1,999 frames,
60 objects at 854x480, plus a perturbed prediction folder; runs both scorers as full command
lines (PNG reading included) on the same machine, alternately (``--repeats`` rounds; the fastest
run of each kept); compares every CSV number and the unrounded per-object statistics; writes
``benchmarks/results/scoring_cpu.json`` (one row: each scorer's seconds and command).

The toolkit is never vendored: pass a checkout of it and a Python that has its requirements
(opencv-python-headless, scikit-image, pandas, scipy, pillow, numpy, tqdm)::

    python -m benchmarks.score_timing --toolkit /path/to/davis2017-evaluation \\
        --toolkit-python /path/to/venv/bin/python --workdir /tmp/score_bench
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys

import numpy as np

from benchmarks import harness
from benchmarks.official.davis_toolkit import (
    csv_max_diff,
    ours_cli,
    raw_max_diff,
    run_toolkit_cli,
    run_toolkit_raw,
    toolkit_command,
)
from vosjax.data.synthetic import blob_video, perturb_video, write_davis_layout, write_label_folder
from vosjax.evaluation.davis import score_davis

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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--toolkit", required=True, help="davis2017-evaluation checkout")
    parser.add_argument("--toolkit-python", default=sys.executable)
    parser.add_argument("--workdir", default="/tmp/vosjax_score_bench")
    harness.add_repeats(parser, 1, "timed runs of each scorer (the fastest kept)")
    harness.add_out(parser, "scoring_cpu.json")
    args = parser.parse_args(argv)

    davis, results = make_benchmark_set(args.workdir)
    folders = {"ours": os.path.join(args.workdir, "ours"),
               "toolkit": os.path.join(args.workdir, "toolkit")}
    run = harness.Run("scoring", "cpu", __file__, argv, settings={"dataset": {
        "sequences": len(OBJECTS), "frames": TOTAL_FRAMES, "objects": sum(OBJECTS),
        "height": HEIGHT, "width": WIDTH, "seed": 0}})
    ours_cmd = ours_cli(davis, folders["ours"])
    toolkit_args = (args.toolkit, args.toolkit_python, davis, folders["toolkit"])
    cpu = {"ours": [], "toolkit": []}

    def fresh(name):
        # A fresh copy each time: the toolkit reuses CSVs it finds in the results folder.
        shutil.rmtree(folders[name], ignore_errors=True)
        shutil.copytree(results, folders[name])

    def scorer(name, fn):
        def call():
            used = _children_cpu()
            fn()
            cpu[name].append(_children_cpu() - used)
            print(f"{name}: {cpu[name][-1]:.2f} s CPU", flush=True)
        return call

    timing = harness.alternate(
        {"ours": scorer("ours", lambda: subprocess.run(ours_cmd, cwd=REPO, check=True,
                                                       stdout=subprocess.DEVNULL)),
         "toolkit": scorer("toolkit", lambda: run_toolkit_cli(*toolkit_args))},
        args.repeats, warmup=False, prepare=fresh)
    csv_diff = csv_max_diff(folders["ours"], folders["toolkit"])
    raw = raw_max_diff(run_toolkit_raw(args.toolkit, args.toolkit_python, davis, results),
                       score_davis(davis, results, year=2017, split="val"))
    side = {name: {"min_s": round(t.stats["min_s"], 3),
                   "runs_s": [round(v, 3) for v in t.stats["runs_s"]],
                   "cpu_runs_s": [round(v, 3) for v in cpu[name]]}
            for name, t in timing.items()}
    side["ours"]["command"] = " ".join(ours_cmd)
    side["toolkit"]["command"] = toolkit_command(*toolkit_args)
    run.add_row({**side, "speedup": round(side["toolkit"]["min_s"] / side["ours"]["min_s"], 2),
                 "speedup_cpu_time": round(min(cpu["toolkit"]) / min(cpu["ours"]), 2),
                 "max_abs_diff_csv": csv_diff,
                 **{f"max_abs_diff_{k}": v for k, v in raw.items()}})
    run.write(harness.out_path(args))


if __name__ == "__main__":
    main()
