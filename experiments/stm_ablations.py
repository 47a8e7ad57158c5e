"""Evaluate the trained STM ablation runs under every inference setting of the paper's
Tables 3-5 and Figures 3-4 (docs/experiments.md).

    python -m experiments.stm_ablations --runs runs/experiments/stm \
        --out experiments/results/stm_synthetic.json

``--runs`` holds the workdirs ``{baseline,cycle}-s{seed}`` written by ``experiments/run.sh``.
Every model is scored on the held-out synthetic videos of its config (DAVIS protocol,
J&F-Mean over objects). Results are appended to ``--out`` setting by setting (re-running skips
what is there), each with its frames/s on this machine.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from experiments import common
from experiments.common import DEFAULT_GC, N_SWEEP, RATE_SWEEP


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    models: tuple[str, ...]
    reference: str = "mem"
    correction: tuple[int, float] | None = None
    memory: str | None = None


# name, models (which trained variants run it), reference set, correction (n_iter, rate) or
# None (the rates: the paper's alpha scaled to 64x96, see experiments.common), memory
# replacement (None | "baseline" | "bbox": Table 5).
SETTINGS = (
    # Table 3 (the "mem" rows also serve Table 4's MEM row) and Table 4.
    Setting("mem", ("baseline", "cycle")),
    Setting("mem+gc", ("baseline", "cycle"), correction=DEFAULT_GC),
    Setting("first", ("baseline", "cycle"), reference="first"),
    Setting("prev", ("baseline", "cycle"), reference="prev"),
    Setting("first+prev", ("baseline", "cycle"), reference="first+prev"),
    # Table 5: memory frames hold low-quality masks (the cycle model, as in the paper).
    Setting("lowq-baseline", ("cycle",), memory="baseline"),
    Setting("lowq-baseline+gc", ("cycle",), correction=DEFAULT_GC, memory="baseline"),
    Setting("lowq-bbox", ("cycle",), memory="bbox"),
    Setting("lowq-bbox+gc", ("cycle",), correction=DEFAULT_GC, memory="bbox"),
    # Figures 3 and 4: correction iterations N and rate alpha (cycle model).
    *(Setting(f"gc-n{n}", ("cycle",), correction=(n, DEFAULT_GC[1])) for n in N_SWEEP
      if (n, DEFAULT_GC[1]) != DEFAULT_GC),
    *(Setting(f"gc-rate{r:g}", ("cycle",), correction=(DEFAULT_GC[0], r)) for r in RATE_SWEEP
      if (DEFAULT_GC[0], r) != DEFAULT_GC),
)


def box_labels(labels: np.ndarray) -> np.ndarray:
    """``[T, H, W]`` label maps -> each object's bounding box filled with its id (the
    "bounding box" references of Table 5); objects are painted in id order, so a later id wins
    where boxes overlap."""
    out = np.zeros_like(labels)
    for t, lab in enumerate(labels):
        for i in np.unique(lab):
            if i == 0:
                continue
            ys, xs = np.nonzero(lab == i)
            out[t, ys.min():ys.max() + 1, xs.min():xs.max() + 1] = i
    return out


def setting_kwargs(setting: Setting) -> dict:
    """:func:`vosjax.inference.video.segment_video` arguments of a setting."""
    from vosjax.correction import GradientCorrection

    corr = None
    if setting.correction is not None:
        corr = GradientCorrection(n_iter=setting.correction[0], rate=setting.correction[1])
    return dict(reference=setting.reference, correction=corr)


def evaluate(model, variables, videos, size, memory_labels=None, **segment_kwargs):
    """Segment (:func:`~vosjax.inference.video.segment_video` with ``segment_kwargs``) and
    score ``videos``; returns ``(row, labels per video)``. ``fps`` leaves out the first video
    (it includes the compilation)."""
    from vosjax.evaluation.protocol import DavisScores, score_sequence
    from vosjax.inference.options import STMOptions
    from vosjax.inference.video import segment_video

    scored, preds, frames_n, seconds = [], {}, 0, 0.0
    for k, v in enumerate(videos):
        frames = v.load_frames(range(v.num_frames))
        mem = None if memory_labels is None else memory_labels[v.name]
        start = time.perf_counter()
        res = segment_video(model, variables, frames, v.first_masks,
                            STMOptions(size=size, **segment_kwargs), memory_labels=mem)
        labels = np.asarray(res.labels)
        if k > 0 or len(videos) == 1:
            seconds += time.perf_counter() - start
            frames_n += v.num_frames
        preds[v.name] = labels
        scored.append(score_sequence(v.name, v.labels, labels))
    row = DavisScores(scored).global_row()
    return {"JF": row["J&F-Mean"], "J": row["J-Mean"], "F": row["F-Mean"],
            "fps": frames_n / seconds, "frames": sum(v.num_frames for v in videos)}, preds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", required=True, help="folder of the {baseline,cycle}-s<seed> runs")
    p.add_argument("--out", required=True, help="JSON file to write (updated in place)")
    p.add_argument("--config", default="configs/experiments/stm_synthetic.py",
                   help="the runs' config file (its eval videos are used)")
    p.add_argument("--only", default="", help="comma-separated setting names (default all)")
    args = p.parse_args(argv)

    from vosjax.families import load_model
    from vosjax.jobs import heldout_videos

    config = common.load_config(args.config)
    videos = heldout_videos(config)
    size = tuple(config.data.size)
    only = set(filter(None, args.only.split(",")))
    unknown = only - {s.name for s in SETTINGS}
    if unknown:
        raise SystemExit(f"--only: unknown settings {sorted(unknown)}")
    results = common.open_results(args.out, __file__, argv, videos=len(videos), size=list(size))
    runs = common.find_runs(args.runs)
    workdirs = {(variant, seed): workdir for variant, seed, workdir in runs}
    baseline_preds: dict[int, dict] = {}

    def baseline_predictions(seed):
        """Table 5's "baseline predict" masks: baseline-s<seed>'s MEM predictions, computed
        only when a setting needs them (None without that run)."""
        if seed not in baseline_preds and ("baseline", seed) in workdirs:
            m, v = load_model(workdirs[("baseline", seed)])
            baseline_preds[seed] = evaluate(m, v, videos, size, None,
                                            **setting_kwargs(SETTINGS[0]))[1]
        return baseline_preds.get(seed)

    for variant, seed, workdir in sorted(runs, key=lambda r: (r[1], r[0])):
        key = f"{variant}-s{seed}"
        model, variables = load_model(workdir)
        entry = results["runs"].setdefault(key, {"variant": variant, "seed": seed,
                                                 "settings": {}})
        entry.setdefault("train", common.train_record(workdir))
        for s in SETTINGS:
            if (variant not in s.models or (only and s.name not in only)
                    or s.name in entry["settings"]):
                continue
            mem = None
            if s.memory == "baseline":
                mem = baseline_predictions(seed)
                if mem is None:
                    print(f"{key} {s.name}: skipped (no baseline-s{seed} run)", flush=True)
                    continue
            elif s.memory == "bbox":
                mem = {v.name: box_labels(v.labels) for v in videos}
            t0 = time.perf_counter()
            row, preds = evaluate(model, variables, videos, size, mem, **setting_kwargs(s))
            row["wall_s"] = time.perf_counter() - t0
            if variant == "baseline" and s is SETTINGS[0]:
                baseline_preds[seed] = preds
            entry["settings"][s.name] = row
            common.write_results(args.out, results)
            print(f"{key} {s.name}: J&F {row['JF']:.3f} ({row['fps']:.1f} frames/s)",
                  flush=True)
    common.write_results(args.out, results)
    return results


if __name__ == "__main__":
    main()
