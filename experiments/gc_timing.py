"""Figure 3's time axis: frames/s of one trained model vs the correction iterations N, measured
in rounds that alternate the settings (so machine load affects all alike).

    python -m experiments.gc_timing --run runs/experiments/stm/cycle-s0 \
        --out experiments/results/gc_timing.json

Each setting first segments the ``--videos`` held-out videos once (compiling a program per
object count); then ``--rounds`` rounds each segment them again per setting. Reports the
median frames/s over rounds.
"""
from __future__ import annotations

import argparse
import functools
import os

import numpy as np

from experiments import common


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a trained workdir")
    p.add_argument("--out", required=True)
    p.add_argument("--config", default="configs/experiments/stm_synthetic.py")
    p.add_argument("--iters", default="0,1,5,10,20", help="comma-separated N (0: no correction)")
    p.add_argument("--videos", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)

    from benchmarks.harness import alternate, load_average
    from vosjax.correction import GradientCorrection
    from vosjax.families import load_model
    from vosjax.inference.options import STMOptions
    from vosjax.inference.video import segment_video
    from vosjax.jobs import heldout_videos

    try:
        iters = [int(v) for v in args.iters.split(",")]
    except ValueError:
        raise SystemExit(f"--iters must be comma-separated ints, got {args.iters!r}") from None
    config = common.load_config(args.config)
    size = tuple(config.data.size)
    videos = heldout_videos(config)[:args.videos]
    clips = [(v.load_frames(range(v.num_frames)), v.first_masks) for v in videos]
    model, variables = load_model(args.run)
    load_start = load_average()

    def corr(n):
        return None if n == 0 else GradientCorrection(n_iter=n, rate=common.DEFAULT_GC[1])

    frames = sum(len(f) for f, _ in clips)

    def segment_all(n):
        for f, m in clips:
            np.asarray(segment_video(model, variables, f, m,
                                     STMOptions(size=size, correction=corr(n))).labels)

    # One warm-up pass per setting (a program per object count compiles there), then rounds
    # in alternating order.
    timing = alternate({n: functools.partial(segment_all, n) for n in iters}, args.rounds,
                       zigzag=True)
    fps = {n: [frames / s for s in timing[n].stats["runs_s"]] for n in iters}
    rows = [{"n_iter": n, "fps_median": float(np.median(fps[n])), "fps_runs": fps[n]}
            for n in iters]
    out = {**common.record(__file__, argv), "load_average_start": load_start,
           "run": os.path.basename(os.path.abspath(args.run)),
           "rate": common.DEFAULT_GC[1], "every": 5, "videos": args.videos,
           "frames_per_video": int(len(clips[0][0])), "rows": rows,
           "load_average_end": load_average()}
    common.write_results(args.out, out)
    for row in rows:
        print(f"N={row['n_iter']}: {row['fps_median']:.1f} frames/s")


if __name__ == "__main__":
    main()
