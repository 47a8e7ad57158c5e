"""Does gradient correction (eq. 5) do what it claims on a trained model? Measured per frame.

On the trained demo model (a ``train.py --config configs/demo.py`` workdir), every held-out
video is propagated with gradient correction on (N = 10 steps every 5 frames, the demo's
alpha, reference: the first frame). For every corrected frame ``t`` it records the
reconstruction loss of eq. 5 (memorize frame ``t`` with its mask, segment frame 0, score
against frame 0's ground truth) **before** the correction (the propagation's own first loss) and
**after** it (the same loss recomputed here on the corrected mask with
:func:`vosjax.correction.reconstruction_loss`, an independent evaluation). It also scores the
held-out videos with and without correction (DAVIS protocol).

Command::

    python -m experiments.correction_effect --workdir /tmp/vosjax-demo \
        --out experiments/results/correction_effect.json
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from experiments import common


def corrected_frame_losses(model, variables, video, options) -> list[dict]:
    """Per corrected frame of one video: ``{"frame", "before", "after", "trajectory"}``.

    ``before`` is the loss at the uncorrected prediction (step 0 of the correction loop),
    ``trajectory`` the loss before each of the N updates, ``after`` the loss at the corrected
    mask, recomputed here from the corrected mask the propagation memorized."""
    import jax

    from vosjax.correction import reconstruction_loss
    from vosjax.data.transforms import resize_pad_frames, resize_pad_labels
    from vosjax.inference.propagation import propagate
    from vosjax.inference.video import objects_from_annotations

    frames = video.load_frames(range(video.num_frames))
    ids, starts, masks = objects_from_annotations(video.first_masks, video.num_frames)
    if np.any(starts != 0):
        raise ValueError(f"{video.name}: objects starting after frame 0 are not supported here")
    x, _ = resize_pad_frames(frames, options.size, options.pad)
    small = resize_pad_labels(masks.astype(np.uint8), options.size)[0].astype(np.float32)
    res = propagate(model, variables, x, small, mem_every=options.mem_every,
                    correction=options.correction)
    o = len(ids)
    ref_query = model.apply(variables, jax.numpy.asarray(x[0]), method=model.encode_query)
    ref_probs = res.probs[0]
    loss_after = jax.jit(lambda frame, m: reconstruction_loss(model, variables, frame, m,
                                                              ref_query, ref_probs))
    rows = []
    for t in sorted(res.corrected):
        traj = np.asarray(res.correction_losses[t], np.float64)
        after = float(loss_after(x[t], np.asarray(res.corrected[t])[1:o + 1]))
        rows.append({"frame": int(t), "before": float(traj[0]), "after": after,
                     "trajectory": [float(v) for v in traj]})
    return rows


def measure(workdir: str, rate: float, num_videos: int | None) -> dict:
    from vosjax.compute import resolve
    from vosjax.correction import GradientCorrection
    from vosjax.evaluation.runner import run_videos
    from vosjax.families import load_model

    videos, base = common.demo_heldout(num_videos)
    corr = GradientCorrection(n_iter=10, rate=rate, every=5)
    opts = base.__class__(**{**base.__dict__, "correction": corr})
    model, variables = load_model(workdir, **resolve("float32-highest").model_kwargs())
    per_video = {}
    for v in videos:
        per_video[v.name] = corrected_frame_losses(model, variables, v, opts)
        lowered = sum(r["after"] < r["before"] for r in per_video[v.name])
        print(f"{v.name}: loss lowered on {lowered}/{len(per_video[v.name])} corrected frames",
              flush=True)
    jf = {}
    for key, o in (("plain", base), ("correction", opts)):
        report = run_videos(model, variables, videos, o)
        jf[key] = {k: float(val) for k, val in report.scores.global_row().items()}
        print(f"{key:10s} J&F {100 * jf[key]['J&F-Mean']:.2f}", flush=True)
    rows = [r for rs in per_video.values() for r in rs]
    before = np.array([r["before"] for r in rows])
    after = np.array([r["after"] for r in rows])
    return {
        "corrected_frames": len(rows),
        "lowered": int(np.sum(after < before)),
        "median_relative_drop": float(np.median((before - after) / before)),
        "min_relative_drop": float(np.min((before - after) / before)),
        "per_video": per_video,
        "jf": jf,
        "delta_jf_points": 100 * (jf["correction"]["J&F-Mean"] - jf["plain"]["J&F-Mean"]),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", required=True, help="a trained configs/demo.py workdir")
    p.add_argument("--rate", type=float, default=common.SCALED_RATE,
                   help="alpha (default: the paper's 180 scaled to the demo's 64x96)")
    p.add_argument("--num-videos", type=int, default=None, help="default: the demo's 8")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    result = {
        **common.record(__file__, argv),
        "model_step": max(int(d) for d in os.listdir(os.path.join(a.workdir, "checkpoints"))
                          if d.isdigit()),
        "settings": {"n_iter": 10, "every": 5, "rate": a.rate, "compute": "float32-highest"},
        **measure(a.workdir, a.rate, a.num_videos),
    }
    common.write_results(a.out, result)
    print(json.dumps({k: result[k] for k in ("corrected_frames", "lowered", "delta_jf_points")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
