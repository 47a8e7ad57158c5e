"""GCSeg Tables V-VI in miniature: each trained module ablation scored with the adaptive search
(judgement module) on and off (docs/experiments.md).

    python experiments/gcseg_ablations.py --runs runs/experiments/gcseg \
        --out experiments/results/gcseg_synthetic.json

``--runs`` holds the workdirs ``{reference,coseg,both}-s{seed}`` written by
``experiments/run.sh`` (``configs/experiments/gcseg_synthetic.py``). Results are appended to
``--out`` (re-running skips what is there).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MODES = ("reference", "coseg", "both")


def judge_stats(model, variables, videos, size, num_fragments, seed):
    """How often the judgement module rejects ``M_{t-1}`` (adaptive search on): the fraction
    of (frame >= 1, object) decisions that zeroed the previous mask, the fraction that zeroed a
    non-empty one (rejecting an empty mask changes nothing), and the mean cosine similarity it
    thresholded."""
    import numpy as np  # noqa: PLC0415

    from vosjax.data.transforms import resize_pad_frames, resize_pad_labels  # noqa: PLC0415
    from vosjax.gcseg.inference import segment_video  # noqa: PLC0415

    keep, sim, nonempty = [], [], []
    for v in videos:
        x, _ = resize_pad_frames(v.load_frames(range(v.num_frames)), size)
        lab = v.load_labels([0])[0]
        ids = [i for i in np.unique(lab) if i != 0]
        masks, _ = resize_pad_labels(np.stack([lab == i for i in ids]).astype(np.uint8), size)
        probs, info = segment_video(model, variables, x, masks.astype(np.float32),
                                    num_fragments=num_fragments, seed=seed,
                                    adaptive_search=True, return_info=True)
        lab_t = np.argmax(probs, axis=1)                        # [T, H, W] 0..O
        present = np.stack([(lab_t == k + 1).any(axis=(1, 2)) for k in range(len(ids))], 1)
        nonempty.append(present[:-1].ravel())                   # M_{t-1} for t = 1..T-1
        keep.append(info["keep"][1:].ravel())
        sim.append(info["similarity"][1:].ravel())
    keep, sim, nonempty = (np.concatenate(a) for a in (keep, sim, nonempty))
    return {"rejected_fraction": float(1.0 - keep.mean()), "decisions": int(keep.size),
            "rejected_nonempty_fraction": float(np.mean(~keep & nonempty)),
            "similarity_mean": float(sim.mean()), "similarity_min": float(sim.min())}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--config", default="configs/experiments/gcseg_synthetic.py")
    args = p.parse_args(argv)

    from experiments.stm_ablations import (evaluate, find_runs, load_config,  # noqa: PLC0415
                                           open_results, train_record)
    from vosjax.checkpoint import load_model, write_json  # noqa: PLC0415
    from vosjax.training.run import heldout_videos  # noqa: PLC0415

    config = load_config(args.config)
    videos = heldout_videos(config)
    size = tuple(config.data.size)
    results = open_results(args.out, "experiments/gcseg_ablations.py", videos, size)
    for mode, seed, workdir in find_runs(args.runs, MODES):
        key = f"{mode}-s{seed}"
        model, variables = load_model(workdir)
        entry = results["runs"].setdefault(key, {"variant": mode, "seed": seed, "settings": {}})
        entry.setdefault("train", train_record(workdir))
        for name, search in (("search", True), ("nosearch", False)):
            if name in entry["settings"]:
                continue
            t0 = time.perf_counter()
            row, _ = evaluate(model, variables, videos, size, adaptive_search=search,
                              num_fragments=config.eval.num_fragments, seed=config.eval.seed)
            row["wall_s"] = time.perf_counter() - t0
            entry["settings"][name] = row
            write_json(os.path.abspath(args.out), results)
            print(f"{key} {name}: J&F {row['JF']:.3f} ({row['fps']:.1f} frames/s)", flush=True)
        if "judge" not in entry:
            entry["judge"] = judge_stats(model, variables, videos, size,
                                         config.eval.num_fragments, config.eval.seed)
            write_json(os.path.abspath(args.out), results)
            print(f"{key} judge: {entry['judge']}", flush=True)
    write_json(os.path.abspath(args.out), results)
    return results


if __name__ == "__main__":
    main()
