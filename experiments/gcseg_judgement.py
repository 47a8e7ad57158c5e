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

    python experiments/gcseg_judgement.py --run runs/experiments/gcseg-paper/both-s0 \
        --out experiments/results/gcseg_judgement.json
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

KINDS = ("correct", "background", "other_object", "other_video")
WRONG = KINDS[1:]
CHUNK = 32  # fixed batch of the jitted calls (padded): one compilation each


def _chunked(fn, arrays):
    """Apply jitted ``fn`` to equal-length arrays in fixed-size padded chunks."""
    n = len(arrays[0])
    outs = []
    for i in range(0, n, CHUNK):
        part = [a[i:i + CHUNK] for a in arrays]
        k = len(part[0])
        if k < CHUNK:
            part = [np.concatenate([p, np.repeat(p[-1:], CHUNK - k, 0)]) for p in part]
        outs.append(np.asarray(fn(*part))[:k])
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def moved_mask(mask, forbidden, rng):
    """``mask`` [H, W] (binary) translated so that it lies inside the frame and touches no
    ``forbidden`` pixel; None when no position fits."""
    ys, xs = np.nonzero(mask)
    r0, r1, c0, c1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    patch = mask[r0:r1, c0:c1]
    h, w = mask.shape
    spots = [(y, x) for y in range(0, h - (r1 - r0) + 1, 2)
             for x in range(0, w - (c1 - c0) + 1, 2)
             if not np.any(forbidden[y:y + r1 - r0, x:x + c1 - c0] & patch)]
    if not spots:
        return None
    y, x = spots[rng.integers(len(spots))]
    out = np.zeros_like(mask)
    out[y:y + r1 - r0, x:x + c1 - c0] = patch
    return out


def video_samples(video, size, rng):
    """Per video: frames, masks and the index pairs of each kind (before feature extraction).

    Returns ``dict(frames [T, H, W, 3], first [O, H, W], targets: list of (t, mask [H, W]),
    correct: [(o, target idx)], background: [(o, target idx)], other_object: [(o, target
    idx)], by_obj_t: {(o, t): target idx of the correct mask})``.
    """
    from vosjax.data.transforms import resize_pad_frames  # noqa: PLC0415

    x, _ = resize_pad_frames(video.load_frames(range(video.num_frames)), size)
    lab = video.labels
    if lab.shape[1:] != tuple(size):
        raise ValueError(f"{video.name}: labels {lab.shape[1:]} != working size {size} "
                         "(this probe expects videos at the working size)")
    ids = [int(i) for i in np.unique(lab[0]) if i]
    first = np.stack([(lab[0] == i) for i in ids]).astype(np.float32)
    targets, kinds, by_obj_t = [], {k: [] for k in KINDS[:3]}, {}
    for t in range(1, video.num_frames):
        objects = lab[t - 1] > 0
        forbidden = objects | (lab[t] > 0)
        for o, i in enumerate(ids):
            m = (lab[t - 1] == i)
            if not m.any():
                continue
            by_obj_t[(o, t)] = len(targets)
            kinds["correct"].append((o, len(targets)))
            targets.append((t, m.astype(np.float32)))
            bg = moved_mask(m, forbidden, rng)
            if bg is not None:
                kinds["background"].append((o, len(targets)))
                targets.append((t, bg.astype(np.float32)))
    for (o, t), _ in list(by_obj_t.items()):
        others = [p for p in range(len(ids)) if p != o and (p, t) in by_obj_t]
        if others:
            kinds["other_object"].append((o, by_obj_t[(others[0], t)]))
    return dict(frames=x, first=first, targets=targets, by_obj_t=by_obj_t, **kinds)


def similarities(model, variables, videos, size, rules, seed=0, features="masked"):
    """``{rule: {kind: similarities [n]}}`` over ``videos`` (see the module docstring).
    ``features="masked"``: ``F = E(I, M)`` as the adaptive search computes them;
    ``"image"``: ``E(I, 0)`` (the mask only places the box)."""
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415

    from vosjax.models.gcseg import judgement_similarity  # noqa: PLC0415

    lvl = model.ref_level
    scale = 1.0 if features == "masked" else 0.0
    extract = jax.jit(lambda f, m: model.apply(variables, f, m * jnp.float32(scale),
                                               method=model.extract)[lvl])
    rng = np.random.default_rng(seed)
    per_video = []
    for v in videos:
        s = video_samples(v, size, rng)
        f0 = _chunked(extract, [s["frames"][[0] * len(s["first"])], s["first"]])
        ft = _chunked(extract, [s["frames"][[t for t, _ in s["targets"]]],
                                np.stack([m for _, m in s["targets"]])])
        per_video.append((s, f0, ft))
    quads = {k: ([], [], [], []) for k in KINDS}  # feat0, mask0, feat_t, mask_t

    def add(kind, s, f0, o, ft_v, s_t, j):
        q = quads[kind]
        q[0].append(f0[o]), q[1].append(s["first"][o])
        q[2].append(ft_v[j]), q[3].append(s_t["targets"][j][1])

    for n, (s, f0, ft) in enumerate(per_video):
        for kind in ("correct", "background", "other_object"):
            for o, j in s[kind]:
                add(kind, s, f0, o, ft, s, j)
        s2, _, ft2 = per_video[(n + 1) % len(per_video)]  # the next video's correct masks
        if len(per_video) > 1:
            for (o, t), _ in s["by_obj_t"].items():
                if (0, t) in s2["by_obj_t"]:
                    add("other_video", s, f0, o, ft2, s2, s2["by_obj_t"][(0, t)])
    out = {}
    for rule in rules:
        sim = jax.jit(lambda a, b, c, d, r=rule: judgement_similarity(
            a, b, c, d, rule=r, box_threshold=model.box_threshold)[0])
        out[rule] = {k: _chunked(sim, [np.stack(x) for x in quads[k]]) if quads[k][0]
                     else np.zeros((0,), np.float32) for k in KINDS}
    return out


def roc_auc(pos, neg) -> float:
    """P(score of a positive > score of a negative), ties counted 1/2 (Mann-Whitney)."""
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)


def best_threshold(pos, neg) -> float:
    """The threshold maximising TPR - FPR for the rule ``keep iff s > threshold``: midway
    between consecutive distinct scores."""
    s = np.unique(np.concatenate([pos, neg]))
    cands = np.concatenate([[s[0] - 1e-3], (s[:-1] + s[1:]) / 2, [s[-1] + 1e-3]])
    j = [(pos > c).mean() - (neg > c).mean() for c in cands]
    return float(cands[int(np.argmax(j))])


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
    """Median wall time of one jitted :func:`vosjax.gcseg.inference.frame_step` (4 references,
    the video's objects) with M_{t-1} kept (threshold -2), rejected non-empty (threshold 2:
    a second extractor pass) and rejected empty (threshold 2, empty masks: skipped)."""
    import jax  # noqa: PLC0415

    from vosjax.data.transforms import resize_pad_frames  # noqa: PLC0415
    from vosjax.gcseg.inference import frame_step  # noqa: PLC0415

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

    from benchmarks.harness import cpu_name  # noqa: PLC0415
    from experiments.stm_ablations import load_config  # noqa: PLC0415
    from vosjax.checkpoint import load_model, write_json  # noqa: PLC0415
    from vosjax.training.input_pipeline import build_videos  # noqa: PLC0415
    from vosjax.training.run import heldout_videos  # noqa: PLC0415

    config = load_config(args.config)
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
    res = {"command": " ".join(["python", "experiments/gcseg_judgement.py", *sys.argv[1:]]),
           "machine": cpu_name(), "nproc": os.cpu_count(), "run": os.path.abspath(args.run),
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
    write_json(os.path.abspath(args.out), res)
    return res


if __name__ == "__main__":
    main()
