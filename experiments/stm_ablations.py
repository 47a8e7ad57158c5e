"""Evaluate the trained STM ablation runs under every inference setting of the paper's
Tables 3-5 and Figures 3-4 (docs/experiments.md).

    python experiments/stm_ablations.py --runs runs/experiments/stm \
        --out experiments/results/stm_synthetic.json

``--runs`` holds the workdirs ``{baseline,cycle}-s{seed}`` written by ``experiments/run.sh``.
Every model is scored on the held-out synthetic videos of its config (DAVIS protocol,
J&F-Mean over objects). Results are appended to ``--out`` setting by setting (re-running skips
what is there), each with its frames/s on this machine.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import re
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# name -> (models, reference, correction (n_iter, rate) or None, memory replacement)
# ``models``: which trained variants run it; ``memory``: None | "baseline" | "bbox" (Table 5).
# The correction loss is a mean over pixels, so dL/dY per pixel scales as 1 / (H W): the
# paper's alpha = 180 at 240x427 corresponds to 180 * (64 * 96) / (240 * 427) = 10.8 at our
# 64x96. Figure 4 sweeps x1/3, x1, x3 of it and the unscaled 180.
SCALED_RATE = round(180.0 * 64 * 96 / (240 * 427), 1)
N_SWEEP = (1, 5, 10, 20)
RATE_SWEEP = (3.6, SCALED_RATE, 32.4, 180.0)
DEFAULT_GC = (10, SCALED_RATE)


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    models: tuple[str, ...]
    reference: str = "mem"
    correction: tuple[int, float] | None = None
    memory: str | None = None


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

def load_config(spec: str):
    """``"path/to/config.py[:arg]"`` -> its ``get_config(arg)`` (as ``--config`` reads it)."""
    import importlib.util  # noqa: PLC0415

    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: config file not found")
    mod_spec = importlib.util.spec_from_file_location("_experiment_config", path)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()


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
    from vosjax.correction import GradientCorrection  # noqa: PLC0415

    corr = None
    if setting.correction is not None:
        corr = GradientCorrection(n_iter=setting.correction[0], rate=setting.correction[1])
    return dict(reference=setting.reference, correction=corr)


def evaluate(model, variables, videos, size, memory_labels=None, **segment_kwargs):
    """Segment (:func:`~vosjax.inference.video.segment_video` with ``segment_kwargs``) and
    score ``videos``; returns ``(row, labels per video)``. ``fps`` leaves out the first video
    (it includes the compilation)."""
    from vosjax.evaluation.protocol import DavisScores, score_sequence  # noqa: PLC0415
    from vosjax.inference.video import segment_video  # noqa: PLC0415

    scored, preds, frames_n, seconds = [], {}, 0, 0.0
    for k, v in enumerate(videos):
        frames = v.load_frames(range(v.num_frames))
        mem = None if memory_labels is None else memory_labels[v.name]
        start = time.perf_counter()
        res = segment_video(model, variables, frames, v.first_masks, size=size,
                            memory_labels=mem, **segment_kwargs)
        labels = np.asarray(res.labels)
        if k > 0 or len(videos) == 1:
            seconds += time.perf_counter() - start
            frames_n += v.num_frames
        preds[v.name] = labels
        scored.append(score_sequence(v.name, v.labels, labels))
    row = DavisScores(scored).global_row()
    return {"JF": row["J&F-Mean"], "J": row["J-Mean"], "F": row["F-Mean"],
            "fps": frames_n / seconds, "frames": sum(v.num_frames for v in videos)}, preds


def find_runs(runs_dir: str, variants=("baseline", "cycle")):
    """Finished runs (with an ``eval.json``) named ``<variant>-s<seed>`` in ``runs_dir``:
    ``[(variant, seed, workdir)]`` sorted by name."""
    if not os.path.isdir(runs_dir):
        raise FileNotFoundError(f"{runs_dir}: not a folder (--runs)")
    pattern = re.compile(r"^(%s)-s(\d+)$" % "|".join(map(re.escape, variants)))
    found = []
    for name in sorted(os.listdir(runs_dir)):
        m = pattern.match(name)
        if m and os.path.isfile(os.path.join(runs_dir, name, "eval.json")):
            found.append((m.group(1), int(m.group(2)), os.path.join(runs_dir, name)))
    if not found:
        raise FileNotFoundError(f"{runs_dir}: no finished runs named "
                                f"{{{','.join(variants)}}}-s<seed> (run experiments/run.sh first)")
    return found


def train_record(workdir: str) -> dict:
    """Training wall time of a train.py workdir (``model.json`` is written when training
    starts, ``eval.json`` after its held-out evaluation) and its steps/s."""
    import json  # noqa: PLC0415

    with open(os.path.join(workdir, "eval.json")) as f:
        ev = json.load(f)
    start = os.path.getmtime(os.path.join(workdir, "model.json"))
    end = os.path.getmtime(os.path.join(workdir, "eval.json"))
    return {"wall_s": round(end - start, 1), "steps": ev.get("step"),
            "steps_per_s": ev.get("train_steps_per_s")}


def open_results(path: str, script: str, videos, size) -> dict:
    """The results JSON at ``path`` (created if missing) with this run's header fields."""
    import json  # noqa: PLC0415

    from benchmarks.harness import cpu_name  # noqa: PLC0415

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    results = {}
    if os.path.isfile(path):
        with open(path) as f:
            results = json.load(f)
    results.setdefault("runs", {})
    results.update(machine=cpu_name(), nproc=os.cpu_count(), python=platform.python_version(),
                   command=" ".join(["python", script, *sys.argv[1:]]),
                   videos=len(videos), size=list(size))
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", required=True, help="folder of the {baseline,cycle}-s<seed> runs")
    p.add_argument("--out", required=True, help="JSON file to write (updated in place)")
    p.add_argument("--config", default="configs/experiments/stm_synthetic.py",
                   help="the runs' config file (its eval videos are used)")
    p.add_argument("--only", default="", help="comma-separated setting names (default all)")
    args = p.parse_args(argv)

    from vosjax.checkpoint import load_model, write_json  # noqa: PLC0415
    from vosjax.training.run import heldout_videos  # noqa: PLC0415

    config = load_config(args.config)
    videos = heldout_videos(config)
    size = tuple(config.data.size)
    only = set(filter(None, args.only.split(",")))
    unknown = only - {s.name for s in SETTINGS}
    if unknown:
        raise SystemExit(f"--only: unknown settings {sorted(unknown)}")
    results = open_results(args.out, "experiments/stm_ablations.py", videos, size)
    runs = find_runs(args.runs)
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
        entry.setdefault("train", train_record(workdir))
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
            write_json(os.path.abspath(args.out), results)
            print(f"{key} {s.name}: J&F {row['JF']:.3f} ({row['fps']:.1f} frames/s)",
                  flush=True)
    write_json(os.path.abspath(args.out), results)
    return results


if __name__ == "__main__":
    main()
