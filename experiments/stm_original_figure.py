"""Gradient correction (eq. 5) and cycle-ERF (eq. 6) on the original STM: the path a user with
``STM_weights.pth`` takes, run here on random-but-converted weights (no real weights here).

    python -m experiments.stm_original_figure --davis ../shared/data/davis2016-mini \
        --out docs/figures/stm_original_correction.png \
        --json experiments/results/stm_original_correction.json

The ResNet-50 weights are the seeded ones of the parity test (``benchmarks.
golden_stm_original``: official state-dict names and shapes, values from numpy), written as
a ``.npz`` in the official ``DataParallel`` naming and imported with ``python -m vosjax.convert
--from stm`` as a user would. Each davis2016-mini clip (first ``--frames`` frames, resized to
``--size``, padded black to a multiple of 16) is propagated with the official protocol (K = 11,
memory every 5 + previous) without and with gradient correction (N = 10, alpha = 180, every 5
frames), and the cycle-ERF of frame 0's mask is computed on frame 10. Per frame the IoU with
the ground truth is recorded. With random weights the numbers say nothing about STM's accuracy;
the figure shows that both features run on the original architecture and what they change.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks.golden_stm_original import draw_state_dict
from experiments import common

REPO = common.REPO

ERF_REF = 10


def convert_random_weights(workdir: str) -> str:
    """Write the seeded R50 weights as ``STM_weights.npz`` (``module.`` names) and convert them
    with the command line; returns the checkpoint directory."""
    g = np.load(os.path.join(REPO, "tests", "data", "stm_original_golden.npz"))
    shapes = [tuple(int(s) for s in x.strip("[]").split(",") if s.strip()) for x in g["shapes"]]
    sd = draw_state_dict(g["names"], shapes)
    npz = os.path.join(workdir, "STM_weights.npz")
    np.savez(npz, **{"module." + k: v for k, v in sd.items()})
    ckpt = os.path.join(workdir, "ckpt")
    # from the repository root, python -m takes vosjax from this checkout
    subprocess.run([sys.executable, "-m", "vosjax.convert", "--from", "stm", npz, "--out", ckpt],
                   check=True, cwd=REPO)
    return ckpt


def iou(probs, labels):
    """Per-frame IoU of argmax(probs) > 0 with labels > 0 (``[T, K, H, W]``, ``[T, H, W]``)."""
    pred = np.argmax(probs, axis=1) > 0
    gt = labels > 0
    inter = (pred & gt).sum(axis=(1, 2))
    union = (pred | gt).sum(axis=(1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--davis", required=True, help="davis2016-mini root")
    p.add_argument("--out", required=True, help="figure PNG")
    p.add_argument("--json", required=True, help="per-frame IoU and timings")
    p.add_argument("--size", type=int, nargs=2, default=(60, 107),
                   help="frames are resized into this (then padded to a multiple of 16)")
    p.add_argument("--frames", type=int, default=21)
    args = p.parse_args(argv)

    import jax
    from PIL import Image

    from vosjax.correction import GradientCorrection, cycle_erf
    from vosjax.data.davis import load_davis_video
    from vosjax.data.transforms import denormalize, fit_size, resize_pad_frames, resize_pad_labels
    from vosjax.erf import heat_overlay
    from vosjax.families import load_model
    from vosjax.inference.propagation import propagate
    from vosjax.models.stm_original import NUM_SLOTS, pad_to_multiple

    with tempfile.TemporaryDirectory() as tmp:
        model, variables = load_model(convert_random_weights(tmp))
    corr = GradientCorrection()          # N = 10, alpha = 180, every 5 frames (the paper's)
    erf_fn = jax.jit(lambda v, ref, target, masks: cycle_erf(model, v, ref, target, masks,
                                                             n_iter=10, rate=180.0))
    stats, rows = {}, []
    for name in ("blackswan", "car-shadow", "motocross-jump"):
        video = load_davis_video(args.davis, name, year="2016")
        n = min(args.frames, video.num_frames)
        frames, labels = video.load_frames(range(n)), video.load_labels(range(n)) > 0
        new_h, new_w, _ = fit_size(frames.shape[1:3], tuple(args.size))
        size = pad_to_multiple(new_h, new_w)
        x, info = resize_pad_frames(frames, size, pad="black")
        lab, _ = resize_pad_labels(labels.astype(np.uint8), size)
        first = lab[:1].astype(np.float32)
        t0 = time.perf_counter()
        plain = propagate(model, variables, x, first, num_slots=NUM_SLOTS).probs
        t1 = time.perf_counter()
        res = propagate(model, variables, x, first, num_slots=NUM_SLOTS, correction=corr)
        t2 = time.perf_counter()
        erf = np.asarray(erf_fn(variables, x[ERF_REF], x[0], first))[0]
        stats[name] = {
            "size": list(size), "frames": n, "corrected_frames": sorted(res.corrected),
            "iou_plain": iou(plain, lab).round(4).tolist(),
            "iou_corrected": iou(res.probs, lab).round(4).tolist(),
            "max_prob_change": float(np.abs(res.probs - plain).max()),
            "correction_loss_first_last": {int(t): [float(v[0]), float(v[-1])]
                                           for t, v in res.correction_losses.items()},
            "seconds_plain": round(t1 - t0, 1), "seconds_corrected": round(t2 - t1, 1)}
        shown = denormalize(x)
        t = n - 1
        row = [common.mask_overlay(shown[0], lab[0]),
               common.mask_overlay(shown[t], np.argmax(plain[t], 0)),
               common.mask_overlay(shown[t], np.argmax(res.probs[t], 0)),
               heat_overlay(shown[ERF_REF], erf)]
        rows.append(np.concatenate([np.pad(r, ((0, 0), (0, 2), (0, 0)), constant_values=255)
                                    for r in row], axis=1))
        print(f"{name}: mean IoU plain {np.mean(stats[name]['iou_plain'][1:]):.3f}, "
              f"corrected {np.mean(stats[name]['iou_corrected'][1:]):.3f}, "
              f"max prob change {stats[name]['max_prob_change']:.3f}")
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0)), constant_values=255)
            for r in rows]
    img = Image.fromarray(np.concatenate(rows, axis=0))
    img = img.resize((img.width * 2, img.height * 2), Image.NEAREST)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    img.save(args.out, optimize=True)
    common.write_results(args.json, {
        **common.record(__file__, argv),
        "weights": "random (seeded, benchmarks/golden_stm_original.py), converted --from stm",
        "columns": ["frame 0 + given mask", "frame T-1 plain", "frame T-1 corrected",
                    f"cycle-ERF of frame 0's mask on frame {ERF_REF}"],
        "correction": {"n_iter": corr.n_iter, "rate": corr.rate, "every": corr.every},
        "clips": stats})
    print(f"wrote {args.out} and {args.json}")


if __name__ == "__main__":
    main()
