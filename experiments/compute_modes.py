"""bfloat16 against float32-highest, measured (vosjax.compute).

Two measurements:

1. **Held-out J&F** of a trained demo model (a ``train.py --config configs/demo.py`` workdir):
   the demo's held-out synthetic videos segmented in both modes, without and with gradient
   correction (N = 10, every 5 frames, alpha = 10.8: the paper's 180 scaled to 64x96 frames as
   in docs/experiments.md, ``experiments.common.SCALED_RATE``), DAVIS protocol.
2. **Golden R18 weights** (``../shared/golden/stm_training``): the golden 11-frame clip
   propagated in both modes (without / with correction); per frame, the max and mean absolute
   difference of the probabilities and the share of pixels whose label differs.

Command::

    python -m experiments.compute_modes --workdir /tmp/vosjax-demo \
        --golden ../shared/golden/stm_training --out experiments/results/compute_modes.json
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

from experiments import common

REPO = pathlib.Path(common.REPO)
MODES = ("float32-highest", "bfloat16")


def heldout_jf(workdir: str, correction_rate: float, num_videos: int | None) -> dict:
    """J&F of the demo's held-out videos in each mode, correction off and on."""
    from vosjax.compute import resolve
    from vosjax.correction import GradientCorrection
    from vosjax.evaluation.runner import run_videos
    from vosjax.families import load_model

    videos, base = common.demo_heldout(num_videos)
    rows = {}
    for corr in (None, GradientCorrection(n_iter=10, rate=correction_rate, every=5)):
        opts = base.__class__(**{**base.__dict__, "correction": corr})
        key = "correction" if corr else "plain"
        for mode in MODES:
            model, variables = load_model(workdir, **resolve(mode).model_kwargs())
            start = time.perf_counter()
            report = run_videos(model, variables, videos, opts)
            row = {k: float(v) for k, v in report.scores.global_row().items()}
            row["seconds"] = time.perf_counter() - start
            rows.setdefault(key, {})[mode] = row
            print(f"{key:10s} {mode:16s} J&F {100 * row['J&F-Mean']:.2f}", flush=True)
        r = rows[key]
        r["delta_jf_points"] = 100 * (r["bfloat16"]["J&F-Mean"] - r["float32-highest"]["J&F-Mean"])
    return {"videos": len(videos), "correction_rate": correction_rate, "rows": rows}


class _Jittered:
    """A video whose uint8 frames get seeded +-1 noise (an imperceptible perturbation); each
    frame's noise is seeded by (seed, frame index), whatever frames a call asks for."""

    def __init__(self, video, seed: int):
        self.video, self.seed = video, seed

    def __getattr__(self, name):
        return getattr(self.video, name)

    def load_frames(self, indices=None):
        indices = range(self.video.num_frames) if indices is None else indices
        f = self.video.load_frames(indices).astype(np.int16)
        noise = np.stack([np.random.default_rng((self.seed, t)).integers(-1, 2, f.shape[1:])
                          for t in indices]) if len(f) else 0
        return np.clip(f + noise, 0, 255).astype(np.uint8)


def noise_control(workdir: str, seeds, num_videos: int | None) -> dict:
    """How much J&F moves in float32-highest when the frames get +-1 uint8 noise: the scale of
    change that the metric shows on this model for a perturbation far below bfloat16's."""
    from vosjax.compute import resolve
    from vosjax.evaluation.runner import run_videos
    from vosjax.families import load_model

    videos, opts = common.demo_heldout(num_videos)
    model, variables = load_model(workdir, **resolve("float32-highest").model_kwargs())
    out = {}
    for seed in seeds:
        report = run_videos(model, variables, [_Jittered(v, seed) for v in videos], opts,
                            background=False)
        out[str(seed)] = 100 * float(report.scores.global_row()["J&F-Mean"])
        print(f"float32-highest, +-1 uint8 noise seed {seed}: J&F {out[str(seed)]:.2f}",
              flush=True)
    return {"what": "plain (no correction), float32-highest, frames +-1 uint8 noise",
            "jf_by_seed": out}


def golden_frames(golden: pathlib.Path) -> dict:
    """Per-frame differences bfloat16 vs float32-highest on the golden R18 clip."""
    from vosjax.compute import resolve
    from vosjax.convert import load_stm_training
    from vosjax.correction import GradientCorrection
    from vosjax.inference import propagate

    w = {k: (v.astype(np.float32) if v.dtype == np.float16 else v)
         for k, v in np.load(golden / "weights_r18.npz").items()}
    inp = dict(np.load(golden / "inputs.npz"))
    frames = inp["frames"].transpose(0, 2, 3, 1)
    first = inp["masks"][0, 1:int(inp["num_objects"]) + 1]
    base, variables = load_stm_training(w)
    slots, every = int(inp["max_obj"]), int(inp["save_freq"])
    out = {}
    for name, corr in (("plain", None),
                       ("correction", GradientCorrection(n_iter=int(inp["loop"]),
                                                         rate=float(inp["correction_rate"]),
                                                         every=every))):
        probs = {}
        for mode in MODES:
            model = base.clone(**resolve(mode).model_kwargs())
            probs[mode] = np.asarray(propagate(model, variables, frames, first, num_slots=slots,
                                               mem_every=every, correction=corr).probs)
        a, b = probs["float32-highest"], probs["bfloat16"]
        diff = np.abs(a - b)
        out[name] = [{"frame": t, "max_abs": float(diff[t].max()),
                      "mean_abs": float(diff[t].mean()),
                      "label_changed": float(np.mean(a[t].argmax(0) != b[t].argmax(0)))}
                     for t in range(a.shape[0])]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", required=True, help="trained demo workdir (train.py output)")
    p.add_argument("--golden", default=str(REPO.parent / "shared" / "golden" / "stm_training"))
    p.add_argument("--out", default=str(REPO / "experiments" / "results" / "compute_modes.json"))
    p.add_argument("--correction-rate", type=float, default=common.SCALED_RATE)
    p.add_argument("--num-videos", type=int, default=None, help="default: the demo's 8")
    p.add_argument("--control-only", action="store_true",
                   help="add the +-1 uint8 noise control (seeds 1, 2) to an existing --out")
    args = p.parse_args(argv)
    if args.control_only:
        import json
        with open(args.out) as f:
            result = json.load(f)
        result["heldout"]["noise_control"] = noise_control(args.workdir, (1, 2), args.num_videos)
        result["noise_control_command"] = common.command(__file__, argv)
        common.write_results(args.out, result)
        print(f"wrote {args.out}")
        return 0
    golden = pathlib.Path(args.golden)
    if not (golden / "weights_r18.npz").is_file():
        raise SystemExit(f"{golden}: no weights_r18.npz (the golden STM-Training data)")
    result = {
        **common.record(__file__, argv),
        "heldout": heldout_jf(args.workdir, args.correction_rate, args.num_videos),
        "golden_r18": golden_frames(golden),
    }
    common.write_results(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
