"""Compilations per video as the video length changes (issue: "a video compiles once per
resolution"): a tiny STM, one video of each length in turn, XLA compilations counted.

    python -m benchmarks.compile_count --out benchmarks/results/compile_count_cpu.json \
        --label after

Writes, per length, the compilations and XLA compile seconds of its first video (the programs
of earlier lengths are in the cache). Label the run (``before``/``after`` a change) to keep
both in the file.
"""
from __future__ import annotations

import argparse
import json
import os
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--label", required=True)
    p.add_argument("--lengths", default="8,9,13,21,22")
    p.add_argument("--size", default="64x96")
    p.add_argument("--correction", action="store_true")
    args = p.parse_args(argv)

    import jax  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from benchmarks import harness as record  # noqa: PLC0415
    from vosjax.correction import GradientCorrection  # noqa: PLC0415
    from vosjax.inference import propagate  # noqa: PLC0415
    from vosjax.models.stm import STM, init_stm  # noqa: PLC0415

    h, w = (int(v) for v in args.size.split("x"))
    model = STM("resnet10", keydim=16, valdim=32, mdim=32)
    variables = jax.jit(lambda r: init_stm(model, r, h, w))(jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    corr = GradientCorrection(n_iter=2) if args.correction else None
    rows = []
    for t in (int(v) for v in args.lengths.split(",")):
        frames = rng.normal(size=(t, h, w, 3)).astype(np.float32)
        masks = np.zeros((2, h, w), np.float32)
        masks[0, 4:20, 4:30], masks[1, 30:50, 40:80] = 1, 1
        with record.CompileCounter() as cc:
            start = time.perf_counter()
            probs = propagate(model, variables, frames, masks, correction=corr).probs
            np.asarray(probs)
            wall = time.perf_counter() - start
        rows.append({"frames": t, "compiles": cc.count, "compile_s": round(cc.seconds, 3),
                     "wall_s": round(wall, 3)})
        print(rows[-1], flush=True)
    out = {"benchmark": "compile_count", "runs": {}}
    if os.path.isfile(args.out):
        with open(args.out) as f:
            out = json.load(f)
    out["runs"][args.label] = {**record.header("cpu"), **record.versions(), "size": [h, w],
                       "correction": args.correction, "rows": rows,
                       "load_average_end": record.load_average()}
    record.write_json(args.out, out)


if __name__ == "__main__":
    main()
