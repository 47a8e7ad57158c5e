"""Compilations per video as the video length changes (issue: "a video compiles once per
resolution"): a tiny STM, one video of each length in turn, XLA compilations counted.

    python -m benchmarks.compile_count --label before --note "commit 3f42af2 (...)"
    python -m benchmarks.compile_count --label after --note "host frames in, ..."

Per length: the compilations, XLA compile seconds and wall seconds of its first video (the
programs of earlier lengths are in the cache). The two labels are runs of different code (check
out the commit before a change, then after it), written into the same file
(``benchmarks/results/compile_count_cpu.json`` by default): ``runs`` holds each run's command,
date, machine and rows; ``rows`` compares them length by length (``speedup``: the first video's
wall time before / after) once both are there.
"""
from __future__ import annotations

import argparse
import os
import time

from benchmarks import harness

LABELS = ("before", "after")


def speedup_rows(runs: dict) -> list[dict]:
    """The before/after rows of ``runs`` (none until both labels ran, on the same lengths)."""
    if set(LABELS) - set(runs):
        return []
    b, a = runs["before"], runs["after"]
    if [r["frames"] for r in b["rows"]] != [r["frames"] for r in a["rows"]]:
        return []
    keys = ("compiles", "compile_s", "wall_s")
    return [harness.speedup_row(f"first video of {rb['frames']} frames", b.get("note", ""),
                                a.get("note", ""), {k: rb[k] for k in keys},
                                {k: ra[k] for k in keys}, metric="wall_s", frames=rb["frames"])
            for rb, ra in zip(b["rows"], a["rows"])]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--label", required=True, choices=LABELS)
    p.add_argument("--note", default="", help="what this run's code is (shown in the table)")
    p.add_argument("--lengths", default="8,9,13,21,22")
    harness.add_size(p, "64x96")
    p.add_argument("--correction", action="store_true")
    harness.add_out(p, "compile_count_{backend}.json")
    args = p.parse_args(argv)

    import jax
    import numpy as np

    from vosjax.correction import GradientCorrection
    from vosjax.inference import propagate
    from vosjax.models.stm import STM, init_stm

    backend = jax.default_backend()
    h, w = args.size
    run = harness.Run("compile_count", backend, __file__, argv,
                      settings={"size": [h, w], "correction": args.correction})
    model = STM("resnet10", keydim=16, valdim=32, mdim=32)
    variables = jax.jit(lambda r: init_stm(model, r, h, w))(jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    corr = GradientCorrection(n_iter=2) if args.correction else None
    for t in (int(v) for v in args.lengths.split(",")):
        frames = rng.normal(size=(t, h, w, 3)).astype(np.float32)
        masks = np.zeros((2, h, w), np.float32)
        masks[0, 4:20, 4:30], masks[1, 30:50, 40:80] = 1, 1
        with harness.CompileCounter() as cc:
            start = time.perf_counter()
            probs = propagate(model, variables, frames, masks, correction=corr).probs
            np.asarray(probs)
            wall = time.perf_counter() - start
        run.add_row({"frames": t, "compiles": cc.count, "compile_s": round(cc.seconds, 3),
                     "wall_s": round(wall, 3)})
    this = run.finish()
    path = harness.out_path(args, backend)
    runs = harness.read_result(path)["runs"] if os.path.isfile(path) else {}
    runs[args.label] = {"command": this["command"], "date": this["date"], "note": args.note,
                        "machine": this["machine"], "settings": this["settings"],
                        "rows": this["rows"]}
    harness.write_result(path, {**this, "rows": speedup_rows(runs), "runs": runs})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
