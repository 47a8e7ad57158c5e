"""GCSeg Tables V-VI in miniature with the paper's ablation protocol (docs/experiments.md).

Each trained run is scored on the held-out synthetic videos with the adaptive search off
(``nosearch``) and on with each judgement rule: ``search-paper`` (the paper's rule, cosine >
0.7) and ``search-centred`` (features centred per channel over the frame, threshold chosen on
TRAINING videos for this run by ``experiments.gcseg_judgement``'s criterion), plus a
control, ``zero-prev``: every ``M_{t-1}`` rejected (the short-term cue never used)::

    python -m experiments.gcseg_ablations --runs runs/experiments/gcseg-paper \
        --out experiments/results/gcseg_paper_protocol.json

``--runs`` holds the workdirs written by ``experiments/run.sh`` (suite ``gcseg``):
``{baseline,reference,coseg,both}-s{seed}`` (``configs/experiments/gcseg_synthetic.py:MODE``,
no static-image pre-training) and ``both+rec-s{seed}`` (``:both-recurrent``, the recurrent
stage on top of ``both-s{seed}``). Finished runs only (``eval.json``); results are appended to
``--out`` (re-running skips what is there); every expected run that is missing is listed in
the JSON as owed, with its command.

``--protocol pretrain --runs DIR --out experiments/results/gcseg_synthetic.json`` scores the
earlier runs (``MODE-pretrain``: 200 static-image pre-training updates first) the same way.
``--protocol long --runs runs/experiments/gcseg-long --out experiments/results/gcseg_long.json``
scores the full model trained 10x longer (``:both-long``, workdirs ``both-s{seed}``, seeds
``LONG_SEEDS``): do the judgement rules help a model that segments better?
"""
from __future__ import annotations

import argparse
import os
import time

from experiments import common

MODES = ("baseline", "reference", "coseg", "both")
SEEDS = (0, 1, 2)
LONG_SEEDS = (0, 1)
CONFIG = "configs/experiments/gcseg_synthetic.py"


def expected_runs(protocol: str, runs_dir: str):
    """``{name: (variant, seed, command)}`` of every run the protocol's tables need."""
    out = {}
    if protocol == "long":
        for seed in LONG_SEEDS:
            out[f"both-s{seed}"] = ("both-long", seed, (
                f"python train.py --config {CONFIG}:both-long --config.seed={seed} "
                f"--workdir {runs_dir}/both-s{seed}"))
        return out
    for seed in SEEDS:
        for mode in MODES:
            arg = mode if protocol == "paper" else f"{mode}-pretrain"
            out[f"{mode}-s{seed}"] = (mode, seed, (
                f"python train.py --config {CONFIG}:{arg} --config.seed={seed} "
                f"--workdir {runs_dir}/{mode}-s{seed}"))
        if protocol == "paper":
            out[f"both+rec-s{seed}"] = ("both+rec", seed, (
                f"python train.py --config {CONFIG}:both-recurrent --config.seed={seed} "
                f"--workdir {runs_dir}/both+rec-s{seed} "
                f"--config.train.init_from={runs_dir}/both-s{seed}"))
    return out


def evaluate_gcseg(model, variables, videos, size, *, adaptive_search, num_fragments, seed):
    """Segment and score ``videos`` (DAVIS protocol) with the GCSeg propagator; returns the
    scores, frames/s (without the first video, which includes the compilation) and how often
    the judgement module rejected ``M_{t-1}`` (all, and non-empty ones: rejecting an empty mask
    changes nothing)."""
    import numpy as np

    from vosjax.data.transforms import resize_pad_frames
    from vosjax.evaluation.protocol import DavisScores, score_sequence
    from vosjax.inference.gcseg import segment_video

    scored, keep, nonempty, sims, frames_n, seconds = [], [], [], [], 0, 0.0
    for k, v in enumerate(videos):
        x, _ = resize_pad_frames(v.load_frames(range(v.num_frames)), size)
        lab = v.labels
        if lab.shape[1:] != tuple(size):
            raise ValueError(f"{v.name}: expected videos at the working size {size}")
        ids = [i for i in np.unique(lab[0]) if i != 0]
        first = np.stack([lab[0] == i for i in ids]).astype(np.float32)
        start = time.perf_counter()
        probs, info = segment_video(model, variables, x, first, num_fragments=num_fragments,
                                    seed=seed, adaptive_search=adaptive_search,
                                    return_info=True)
        if k > 0:
            seconds += time.perf_counter() - start
            frames_n += v.num_frames
        pred = np.argmax(probs, axis=1).astype(np.uint8)          # [T, H, W] 0..O
        scored.append(score_sequence(v.name, lab, pred))
        present = np.stack([(pred == o + 1).any(axis=(1, 2)) for o in range(len(ids))], 1)
        nonempty.append(present[:-1].ravel())                     # M_{t-1}, t = 1..T-1
        keep.append(info["keep"][1:].ravel())
        sims.append(info["similarity"][1:].ravel())
    row = DavisScores(scored).global_row()
    keep, nonempty, sims = (np.concatenate(a) for a in (keep, nonempty, sims))
    out = {"JF": row["J&F-Mean"], "J": row["J-Mean"], "F": row["F-Mean"],
           "fps": frames_n / max(seconds, 1e-9), "frames": sum(v.num_frames for v in videos)}
    if adaptive_search:
        out["judge"] = {"decisions": int(keep.size),
                        "rejected_fraction": float(1.0 - keep.mean()),
                        "rejected_nonempty_fraction": float(np.mean(~keep & nonempty)),
                        "similarity_mean_nonempty": float(sims[nonempty].mean()),
                        "similarity_min_nonempty": float(sims[nonempty].min())}
    return out


def trivial_scores(videos) -> dict:
    """J&F of two model-free predictions on ``videos`` (DAVIS protocol): no object after
    frame 0 (the protocol scores 1 where the ground truth is empty too), and the frame-0
    masks copied to every frame; plus the share of (frame >= 1, object) pairs in which the
    object is present."""
    import numpy as np

    from vosjax.evaluation.protocol import DavisScores, score_sequence

    empty, copy, present = [], [], []
    for v in videos:
        lab = v.labels
        pred = np.zeros_like(lab)
        pred[0] = lab[0]
        empty.append(score_sequence(v.name, lab, pred))
        copy.append(score_sequence(v.name, lab, np.repeat(lab[:1], len(lab), 0)))
        present += [float((lab[1:] == i).any(axis=(1, 2)).mean())
                    for i in np.unique(lab[0]) if i]
    return {"empty_after_frame0": DavisScores(empty).global_row()["J&F-Mean"],
            "copy_frame0": DavisScores(copy).global_row()["J&F-Mean"],
            "object_present_share": float(np.mean(present))}


def calibrate(model, variables, videos, size) -> dict:
    """The centred rule's threshold for this model, chosen on training ``videos`` (max TPR -
    FPR, correct vs wrong masks; the probe of :mod:`experiments.gcseg_judgement`), with its
    training AUC."""
    import numpy as np

    s = common.similarities(model, variables, videos, size, ["centred"], seed=0)["centred"]
    neg = np.concatenate([s[k] for k in common.WRONG])
    return {"threshold": common.best_threshold(s["correct"], neg), "train_videos": len(videos),
            "train_auc": common.roc_auc(s["correct"], neg)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--protocol", choices=("paper", "pretrain", "long"), default="paper")
    p.add_argument("--config", default=f"{CONFIG}:both")
    p.add_argument("--train-videos", type=int, default=16,
                   help="training videos to choose the centred rule's threshold on")
    p.add_argument("--only", default="", help="comma-separated run names (default: all)")
    args = p.parse_args(argv)

    from vosjax.families import load_model
    from vosjax.jobs import heldout_videos
    from vosjax.training.input_pipeline import build_videos

    config = common.load_config(args.config)
    videos = heldout_videos(config)
    train_all = build_videos("synthetic", config.data)
    train_videos = [train_all[i] for i in range(args.train_videos)]
    size = tuple(config.data.size)
    results = common.open_results(args.out, __file__, argv, videos=len(videos), size=list(size))
    results["protocol"] = args.protocol
    results["trivial"] = trivial_scores(videos)
    expected = expected_runs(args.protocol, args.runs)
    only = set(filter(None, args.only.split(",")))
    ev = dict(num_fragments=config.eval.num_fragments, seed=config.eval.seed)
    for key, (variant, seed, command) in expected.items():
        workdir = os.path.join(args.runs, key)
        if (only and key not in only) or not os.path.isfile(os.path.join(workdir, "eval.json")):
            continue
        model, variables = load_model(workdir)
        entry = results["runs"].setdefault(key, {"variant": variant, "seed": seed,
                                                 "settings": {}, "command": command})
        entry.setdefault("machine", common.cpu_name())  # runs are scored on several machines
        entry.setdefault("train", common.train_record(workdir))
        if "centred_calibration" not in entry:
            entry["centred_calibration"] = calibrate(model, variables, train_videos, size)
        thr = entry["centred_calibration"]["threshold"]
        settings = (("nosearch", model, False),
                    ("search-paper", model.clone(judgement="paper", judge_threshold=0.7), True),
                    ("search-centred", model.clone(judgement="centred", judge_threshold=thr),
                     True),
                    # Control: a threshold above any cosine rejects every M_{t-1}; tells a
                    # judgement that judges from one that merely drops the short-term cue.
                    ("zero-prev", model.clone(judgement="paper", judge_threshold=2.0), True))
        for name, m, search in settings:
            if name in entry["settings"]:
                continue
            t0 = time.perf_counter()
            row = evaluate_gcseg(m, variables, videos, size, adaptive_search=search, **ev)
            row["wall_s"] = round(time.perf_counter() - t0, 1)
            entry["settings"][name] = row
            common.write_results(args.out, results)
            print(f"{key} {name}: J&F {row['JF']:.4f} "
                  f"{row.get('judge', '')}", flush=True)
    if args.protocol in ("paper", "long"):
        results["owed"] = {k: cmd for k, (_, _, cmd) in expected.items()
                           if k not in results["runs"]}
    common.write_results(args.out, results)
    return results


if __name__ == "__main__":
    main()
