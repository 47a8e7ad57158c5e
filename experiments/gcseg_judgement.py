"""Can the judgement module tell a right M_{t-1} from a wrong one? (docs/gcseg.md, "The
judgement module"). For a trained GCSeg, every rule of
:func:`vosjax.models.gcseg.judgement_similarity` scores ``(F_0, M_0)`` of an object against
``(F_t, M)`` where ``M`` is:

* ``correct``: the object's ground-truth mask of frame t-1 (a correct propagation);
* ``background``: the same mask shape moved onto background (no overlap with any labelled
  object in t-1 or t), i.e. a same-size box on background;
* ``other_object``: another labelled object's ground-truth mask of t-1 in the same video;
* ``other_video``: frame t and an object's mask of t-1 from another video.

``F = E(I, M)`` at the model's ``ref_level``, exactly what the adaptive search computes. For
each rule: the similarity distributions, the ROC AUC of correct vs each wrong kind (and vs all
wrong ones pooled), and a threshold chosen on TRAINING videos (maximising TPR - FPR, correct
vs all wrong) and then applied to the held-out videos. Also times one jitted inference step
with the mask kept, rejected non-empty (second extractor pass) and rejected empty (skipped)::

    python -m experiments.gcseg_judgement --run runs/experiments/gcseg-paper/both-s0 \
        --out experiments/results/gcseg_judgement.json

The probe itself (:func:`experiments.common.similarities`) is shared with
``experiments.gcseg_ablations``, which chooses the centred rule's threshold with it.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from experiments import common
from experiments.common import KINDS, WRONG, best_threshold, roc_auc, similarities


def summary(sims, threshold) -> dict:
    """Distribution, AUCs and the keep rates at ``threshold`` of one rule on one video set."""
    pos = sims["correct"]
    neg = np.concatenate([sims[k] for k in WRONG])
    out = {"threshold": threshold, "auc_all_wrong": roc_auc(pos, neg), "kinds": {}}
    for k in KINDS:
        x = sims[k]
        row = {"n": int(x.size)}
        if x.size:
            row.update(mean=float(x.mean()), min=float(x.min()), max=float(x.max()),
                       p05=float(np.percentile(x, 5)), p50=float(np.median(x)),
                       p95=float(np.percentile(x, 95)), kept=float((x > threshold).mean()))
        if k != "correct":
            row["auc_vs_correct"] = roc_auc(pos, x)
        out["kinds"][k] = row
    return out


def step_timing(model, variables, video, size, reps=20) -> dict:
    """Median wall time of one jitted :func:`vosjax.inference.gcseg.frame_step` (4 references,
    the video's objects) with M_{t-1} kept (threshold -2), rejected non-empty (threshold 2:
    a second extractor pass) and rejected empty (threshold 2, empty masks: skipped)."""
    import jax

    from vosjax.data.transforms import resize_pad_frames
    from vosjax.inference.gcseg import frame_step

    x, _ = resize_pad_frames(video.load_frames(range(3)), size)
    lab = video.load_labels([0, 1])
    ids = [i for i in np.unique(lab[0]) if i]
    prev = np.stack([lab[1] == i for i in ids]).astype(np.float32)
    m0 = np.stack([lab[0] == i for i in ids]).astype(np.float32)
    refs, ref_masks = x[[0, 1, 1, 1]], np.stack([m0, prev, prev, prev])
    wts = np.ones(4, np.float32)
    out = {"objects": len(ids), "references": 4, "reps": reps}
    for name, thr, pm in (("kept", -2.0, prev), ("rejected_nonempty", 2.0, prev),
                          ("rejected_empty", 2.0, np.zeros_like(prev))):
        m = model.clone(judge_threshold=thr)
        jax.block_until_ready(frame_step(m, variables, x[2], pm, refs, ref_masks, wts))
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            jax.block_until_ready(frame_step(m, variables, x[2], pm, refs, ref_masks, wts))
            times.append(time.perf_counter() - t0)
        out[f"{name}_ms"] = 1000 * float(np.median(times))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a trained GCSeg train.py workdir")
    p.add_argument("--config", default="configs/experiments/gcseg_synthetic.py:both")
    p.add_argument("--train-videos", type=int, default=16,
                   help="training videos (of config.data.synthetic) to choose thresholds on")
    p.add_argument("--heldout-videos", type=int, default=0,
                   help="use only the first N held-out videos (default: config.eval's)")
    p.add_argument("--rules", default="paper,centred,standardised")
    p.add_argument("--features", choices=("masked", "image"), default="masked",
                   help="masked: F = E(I, M) (the paper); image: E(I, 0), the mask only "
                   "places the box (a probe)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    from vosjax.families import load_model
    from vosjax.jobs import heldout_videos
    from vosjax.training.input_pipeline import build_videos

    config = common.load_config(args.config)
    size = tuple(config.data.size)
    model, variables = load_model(args.run)
    train_all = build_videos("synthetic", config.data)
    train = [train_all[i] for i in range(args.train_videos)]
    held = heldout_videos(config)
    held = held[:args.heldout_videos] if args.heldout_videos else held
    rules = args.rules.split(",")
    t0 = time.perf_counter()
    sims_train = similarities(model, variables, train, size, rules, seed=0,
                              features=args.features)
    sims_held = similarities(model, variables, held, size, rules, seed=1,
                             features=args.features)
    res = {**common.record(__file__, argv), "run": os.path.abspath(args.run),
           "model": {"mode": model.mode, "arch": model.arch, "ref_level": model.ref_level},
           "features": args.features, "train_videos": len(train),
           "heldout_videos": len(held), "size": list(size),
           "rules": {}}
    for rule in rules:
        thr = best_threshold(sims_train[rule]["correct"],
                             np.concatenate([sims_train[rule][k] for k in WRONG]))
        res["rules"][rule] = {"train": summary(sims_train[rule], thr),
                              "heldout": summary(sims_held[rule], thr)}
        if rule == "paper":
            res["rules"][rule]["heldout_at_0.7"] = summary(sims_held[rule], 0.7)
        h = res["rules"][rule]["heldout"]
        print(f"{rule}: threshold {thr:.3f} (train); held-out AUC correct vs all wrong "
              f"{h['auc_all_wrong']:.3f}; " + ", ".join(
                  f"{k} mean {h['kinds'][k]['mean']:.3f} kept {h['kinds'][k]['kept']:.2f}"
                  for k in KINDS if h["kinds"][k]["n"]), flush=True)
    res["similarity_wall_s"] = round(time.perf_counter() - t0, 1)
    res["step_timing"] = step_timing(model, variables, held[0], size)
    print(f"frame_step: {res['step_timing']}", flush=True)
    common.write_results(args.out, res)
    return res


if __name__ == "__main__":
    main()
