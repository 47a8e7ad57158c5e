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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--config", default="configs/experiments/gcseg_synthetic.py")
    args = p.parse_args(argv)

    from experiments.stm_ablations import (evaluate, find_runs, load_config,  # noqa: PLC0415
                                           open_results)
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
    return results


if __name__ == "__main__":
    main()
