"""Check that vosjax's DAVIS scores equal the official toolkit's on awkward generated data.

Each case is a DAVIS-2017 layout plus a results folder: random blobs at 480p, odd image
sizes, empty predictions, predictions missing objects, ground-truth objects that vanish or
skip ids, void pixels, pixel noise, masks shifted around the boundary tolerance, and a
300-frame sequence (the toolkit's uint8 decay-bin indices wrap there). For every case, the
per-frame J / F, the per-object Mean / Recall / Decay and every CSV number are compared.

    python -m benchmarks.toolkit_compare --toolkit /path/to/davis2017-evaluation \\
        --toolkit-python /path/to/venv/bin/python [--out benchmarks/results/toolkit_compare.json]

One row per case (its sequences, frames and max abs differences).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from benchmarks import harness
from benchmarks.official.davis_toolkit import (
    csv_max_diff,
    ours_cli,
    raw_max_diff,
    run_toolkit_cli,
    run_toolkit_raw,
)
from vosjax.data.synthetic import blob_video, perturb_video, write_davis_layout, write_label_folder
from vosjax.evaluation.davis import score_davis


def _shifted_rectangles(h: int, w: int, shifts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    gt = np.zeros((len(shifts), h, w), np.uint8)
    gt[:, h // 4:h // 2, w // 4:w // 2] = 1
    pred = np.stack([np.roll(g, s, axis=1) for g, s in zip(gt, shifts)])
    return gt, pred


def make_cases(rng: np.random.Generator) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """``{case: {sequence: (gt ids [T, H, W], prediction ids [T, H, W])}}``."""
    cases = {}

    def blobs(t, k, h, w, **kw):
        gt = blob_video(rng, t, k, h, w, void_patch=kw.pop("void", False))
        return gt, perturb_video(rng, gt, k, **kw)

    cases["blobs_480p"] = {f"b{i}": blobs(int(rng.integers(5, 12)), k, 480, 854)
                           for i, k in enumerate([1, 2, 3, 5])}
    cases["odd_sizes"] = {"o1": blobs(6, 3, 37, 91), "o2": blobs(7, 2, 101, 57),
                          "o3": blobs(5, 4, 3, 200), "o4": blobs(5, 2, 129, 64)}
    gt, _ = blobs(6, 3, 120, 160)
    cases["empty_predictions"] = {"e1": (gt, np.zeros_like(gt)), "e2": blobs(6, 1, 60, 80)}
    gt, pred = blobs(8, 3, 90, 120)
    cases["missing_objects"] = {"m1": (gt, np.where(pred == 1, 1, 0).astype(np.uint8)),
                                "m2": (gt, np.where(pred >= 2, pred - 1, 0).astype(np.uint8))}
    gt, pred = blobs(8, 3, 90, 120)
    gt[2:5][gt[2:5] == 2] = 0            # object 2 vanishes from the ground truth
    gt[0][gt[0] == 2] = 0                # and ids 1, 3 only in frame 0 (2 is a gap)
    gt[3:, 5:9, 5:9] = 4                 # an id above frame 0's ids is ignored
    cases["vanishing_and_gap_ids"] = {"v1": (gt, pred), "v2": blobs(6, 2, 64, 64, void=True)}
    noise = lambda t, k, h, w: (rng.random((t, h, w)) < 0.3) * rng.integers(0, k + 1, (t, h, w))  # noqa: E731
    cases["pixel_noise"] = {"n1": (noise(5, 2, 48, 64).astype(np.uint8),
                                   noise(5, 2, 48, 64).astype(np.uint8))}
    cases["shift_tolerance"] = {"s1": _shifted_rectangles(480, 854, [0, 7, 8, 9, 10, 8]),
                                "s2": _shifted_rectangles(31, 47, [0, 1, 2, 3, 4])}
    cases["long_sequence"] = {"l1": blobs(300, 2, 24, 32, max_shift=2)}
    return cases


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--toolkit", required=True, help="davis2017-evaluation checkout")
    parser.add_argument("--toolkit-python", default=sys.executable)
    harness.add_out(parser, "toolkit_compare.json")
    args = parser.parse_args(argv)
    run = harness.Run("toolkit_compare", "cpu", __file__, argv)
    with tempfile.TemporaryDirectory() as tmp:
        for name, seqs in make_cases(np.random.default_rng(0)).items():
            root = os.path.join(tmp, name)
            davis_root, preds = os.path.join(root, "davis"), os.path.join(root, "results")
            write_davis_layout(davis_root, {s: gt for s, (gt, _) in seqs.items()})
            for s, (_, pred) in seqs.items():
                write_label_folder(os.path.join(preds, s), pred)
            ours_dir, tk_dir = os.path.join(root, "ours"), os.path.join(root, "toolkit")
            shutil.copytree(preds, ours_dir)
            shutil.copytree(preds, tk_dir)
            subprocess.run(ours_cli(davis_root, ours_dir), check=True, stdout=subprocess.DEVNULL)
            run_toolkit_cli(args.toolkit, args.toolkit_python, davis_root, tk_dir)
            raw = raw_max_diff(run_toolkit_raw(args.toolkit, args.toolkit_python, davis_root,
                                               preds), score_davis(davis_root, preds))
            run.add_row({"case": name, "sequences": len(seqs),
                         "frames": int(sum(len(gt) for gt, _ in seqs.values())),
                         "max_abs_diff_csv": csv_max_diff(ours_dir, tk_dir),
                         **{f"max_abs_diff_{k}": v for k, v in raw.items()}})
    worst = max(v for r in run.rows for k, v in r.items() if k.startswith("max_abs"))
    run.write(harness.out_path(args), worst_max_abs_diff=worst)
    print(f"worst max abs diff over all cases: {worst}")
    if worst > 1e-4:
        raise SystemExit("vosjax and the toolkit disagree")


if __name__ == "__main__":
    main()
