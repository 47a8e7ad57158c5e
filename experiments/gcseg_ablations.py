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
import platform
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

RUN_RE = re.compile(r"^(reference|coseg|both)-s(\d+)$")


def find_runs(runs_dir: str):
    found = []
    for name in sorted(os.listdir(runs_dir)):
        m = RUN_RE.match(name)
        if m and os.path.isfile(os.path.join(runs_dir, name, "eval.json")):
            found.append((m.group(1), int(m.group(2)), os.path.join(runs_dir, name)))
    if not found:
        raise FileNotFoundError(f"{runs_dir}: no finished runs named "
                                "{reference,coseg,both}-s<seed> (run experiments/run.sh first)")
    return found


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--config", default="configs/experiments/gcseg_synthetic.py")
    args = p.parse_args(argv)

    import json  # noqa: PLC0415

    from benchmarks.record import cpu_name  # noqa: PLC0415
    from experiments.stm_ablations import evaluate, load_config  # noqa: PLC0415
    from vosjax.checkpoint import load_model, write_json  # noqa: PLC0415
    from vosjax.training.run import heldout_videos  # noqa: PLC0415

    config = load_config(args.config)
    videos = heldout_videos(config)
    size = tuple(config.data.size)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    results = {}
    if os.path.isfile(args.out):
        with open(args.out) as f:
            results = json.load(f)
    results.setdefault("runs", {})
    results.update(machine=cpu_name(), nproc=os.cpu_count(), python=platform.python_version(),
                   command=" ".join(["python", "experiments/gcseg_ablations.py", *sys.argv[1:]]),
                   videos=len(videos), size=list(size))
    for mode, seed, workdir in find_runs(args.runs):
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
