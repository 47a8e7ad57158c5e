"""What the experiment scripts share; each script is run from the repository root as
``python -m experiments.NAME`` and imports nothing from a sibling script.

* the record every result file starts with (:func:`record`: command, date, machine) and the
  atomic JSON writer (:func:`write_results`, :func:`open_results`);
* configs and trained runs: :func:`load_config` (``path.py[:arg]`` as ``train.py --config``
  reads it), :func:`find_runs`, :func:`train_record`, :func:`demo_heldout`;
* the correction settings of the sweeps (:data:`SCALED_RATE`, :data:`DEFAULT_GC`,
  :data:`N_SWEEP`, :data:`RATE_SWEEP`);
* :func:`mask_overlay` for the figures;
* the GCSeg judgement probe (:func:`similarities`, :func:`roc_auc`, :func:`best_threshold`)
  used by ``gcseg_judgement`` (separability) and ``gcseg_ablations`` (the centred rule's
  threshold).
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import re
import shlex
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The correction loss is a mean over pixels, so dL/dY per pixel scales as 1 / (H W): the
# paper's alpha = 180 at 240x427 corresponds to 180 * (64 * 96) / (240 * 427) = 10.8 at the
# synthetic experiments' (and the demo's) 64x96. Figure 4 sweeps x1/3, x1, x3 of it and the
# unscaled 180.
SCALED_RATE = round(180.0 * 64 * 96 / (240 * 427), 1)
N_SWEEP = (1, 5, 10, 20)
RATE_SWEEP = (3.6, SCALED_RATE, 32.4, 180.0)
DEFAULT_GC = (10, SCALED_RATE)


# ---------------------------------------------------------------------------------------------
# result files
# ---------------------------------------------------------------------------------------------
def command(file: str, argv=None) -> str:
    """``python -m experiments.NAME ARGS`` of the script at ``file`` (``argv``: its arguments,
    default the process's)."""
    module = os.path.splitext(os.path.relpath(os.path.abspath(file), REPO))[0]
    args = sys.argv[1:] if argv is None else list(argv)
    return " ".join(shlex.quote(a) for a in ["python", "-m", module.replace(os.sep, "."), *args])


def cpu_name() -> str:
    from benchmarks.harness import cpu_name as name

    return name()


def record(file: str, argv=None) -> dict:
    """The fields a result file starts with: the command, the date and the machine (CPU model,
    cores, Python, JAX's version and backend)."""
    import jax

    return {"command": command(file, argv), "date": datetime.date.today().isoformat(),
            "machine": cpu_name(), "nproc": os.cpu_count(), "python": platform.python_version(),
            "jax": jax.__version__, "backend": jax.default_backend()}


def write_results(path: str, results: dict) -> str:
    """Write ``results`` as JSON to ``path`` atomically (its folder created)."""
    from vosjax.atomic import write_json

    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return write_json(path, results)


def open_results(path: str, file: str, argv=None, **fields) -> dict:
    """The results JSON at ``path`` (a new one if missing) with ``runs`` and this run's
    :func:`record` and ``fields``: scripts that add settings run by run update it in place."""
    results = {}
    if os.path.isfile(path):
        with open(path) as f:
            results = json.load(f)
    results.setdefault("runs", {})
    results.update(record(file, argv), **fields)
    return results


# ---------------------------------------------------------------------------------------------
# configs and trained runs
# ---------------------------------------------------------------------------------------------
def load_config(spec: str):
    """``"path/to/config.py[:arg]"`` -> its ``get_config(arg)`` (as ``--config`` reads it)."""
    import importlib.util

    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: config file not found")
    mod_spec = importlib.util.spec_from_file_location("_experiment_config", path)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()


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
    with open(os.path.join(workdir, "eval.json")) as f:
        ev = json.load(f)
    start = os.path.getmtime(os.path.join(workdir, "model.json"))
    end = os.path.getmtime(os.path.join(workdir, "eval.json"))
    return {"wall_s": round(end - start, 1), "steps": ev.get("step"),
            "steps_per_s": ev.get("train_steps_per_s")}


def demo_heldout(num_videos: int | None):
    """The demo config's held-out videos (the first ``num_videos``; default its 8) and its
    inference options."""
    from configs import demo
    from vosjax.families import inference_options
    from vosjax.jobs import heldout_videos

    config = demo.get_config()
    if num_videos:
        with config.unlocked():
            config.eval.num_videos = num_videos
    return heldout_videos(config), inference_options(config)


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------
def mask_overlay(frame, labels):
    """``frame`` (uint8 ``[H, W, 3]``) with the foreground of ``labels`` tinted red."""
    out = frame.astype(np.float32).copy()
    fg = labels > 0
    out[fg] = 0.5 * out[fg] + 0.5 * np.array([255.0, 64.0, 64.0])
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# the GCSeg judgement probe
# ---------------------------------------------------------------------------------------------
KINDS = ("correct", "background", "other_object", "other_video")
WRONG = KINDS[1:]
CHUNK = 32  # fixed batch of the jitted calls (padded): one compilation each


def _chunked(fn, arrays):
    """Apply jitted ``fn`` to equal-length arrays in fixed-size padded chunks."""
    n = len(arrays[0])
    outs = []
    for i in range(0, n, CHUNK):
        part = [a[i:i + CHUNK] for a in arrays]
        k = len(part[0])
        if k < CHUNK:
            part = [np.concatenate([p, np.repeat(p[-1:], CHUNK - k, 0)]) for p in part]
        outs.append(np.asarray(fn(*part))[:k])
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def moved_mask(mask, forbidden, rng):
    """``mask`` [H, W] (binary) translated so that it lies inside the frame and touches no
    ``forbidden`` pixel; None when no position fits."""
    ys, xs = np.nonzero(mask)
    r0, r1, c0, c1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    patch = mask[r0:r1, c0:c1]
    h, w = mask.shape
    spots = [(y, x) for y in range(0, h - (r1 - r0) + 1, 2)
             for x in range(0, w - (c1 - c0) + 1, 2)
             if not np.any(forbidden[y:y + r1 - r0, x:x + c1 - c0] & patch)]
    if not spots:
        return None
    y, x = spots[rng.integers(len(spots))]
    out = np.zeros_like(mask)
    out[y:y + r1 - r0, x:x + c1 - c0] = patch
    return out


def video_samples(video, size, rng):
    """Per video: frames, masks and the index pairs of each kind (before feature extraction).

    Returns ``dict(frames [T, H, W, 3], first [O, H, W], targets: list of (t, mask [H, W]),
    correct: [(o, target idx)], background: [(o, target idx)], other_object: [(o, target
    idx)], by_obj_t: {(o, t): target idx of the correct mask})``.
    """
    from vosjax.data.transforms import resize_pad_frames

    x, _ = resize_pad_frames(video.load_frames(range(video.num_frames)), size)
    lab = video.labels
    if lab.shape[1:] != tuple(size):
        raise ValueError(f"{video.name}: labels {lab.shape[1:]} != working size {size} "
                         "(this probe expects videos at the working size)")
    ids = [int(i) for i in np.unique(lab[0]) if i]
    first = np.stack([(lab[0] == i) for i in ids]).astype(np.float32)
    targets, kinds, by_obj_t = [], {k: [] for k in KINDS[:3]}, {}
    for t in range(1, video.num_frames):
        objects = lab[t - 1] > 0
        forbidden = objects | (lab[t] > 0)
        for o, i in enumerate(ids):
            m = (lab[t - 1] == i)
            if not m.any():
                continue
            by_obj_t[(o, t)] = len(targets)
            kinds["correct"].append((o, len(targets)))
            targets.append((t, m.astype(np.float32)))
            bg = moved_mask(m, forbidden, rng)
            if bg is not None:
                kinds["background"].append((o, len(targets)))
                targets.append((t, bg.astype(np.float32)))
    for (o, t), _ in list(by_obj_t.items()):
        others = [p for p in range(len(ids)) if p != o and (p, t) in by_obj_t]
        if others:
            kinds["other_object"].append((o, by_obj_t[(others[0], t)]))
    return dict(frames=x, first=first, targets=targets, by_obj_t=by_obj_t, **kinds)


def similarities(model, variables, videos, size, rules, seed=0, features="masked"):
    """``{rule: {kind: similarities [n]}}`` over ``videos`` (see the module docstring).
    ``features="masked"``: ``F = E(I, M)`` as the adaptive search computes them;
    ``"image"``: ``E(I, 0)`` (the mask only places the box)."""
    import jax
    import jax.numpy as jnp

    from vosjax.models.gcseg import judgement_similarity

    lvl = model.ref_level
    scale = 1.0 if features == "masked" else 0.0
    extract = jax.jit(lambda f, m: model.apply(variables, f, m * jnp.float32(scale),
                                               method=model.extract)[lvl])
    rng = np.random.default_rng(seed)
    per_video = []
    for v in videos:
        s = video_samples(v, size, rng)
        f0 = _chunked(extract, [s["frames"][[0] * len(s["first"])], s["first"]])
        ft = _chunked(extract, [s["frames"][[t for t, _ in s["targets"]]],
                                np.stack([m for _, m in s["targets"]])])
        per_video.append((s, f0, ft))
    quads = {k: ([], [], [], []) for k in KINDS}  # feat0, mask0, feat_t, mask_t

    def add(kind, s, f0, o, ft_v, s_t, j):
        q = quads[kind]
        q[0].append(f0[o]), q[1].append(s["first"][o])
        q[2].append(ft_v[j]), q[3].append(s_t["targets"][j][1])

    for n, (s, f0, ft) in enumerate(per_video):
        for kind in ("correct", "background", "other_object"):
            for o, j in s[kind]:
                add(kind, s, f0, o, ft, s, j)
        s2, _, ft2 = per_video[(n + 1) % len(per_video)]  # the next video's correct masks
        if len(per_video) > 1:
            for (o, t), _ in s["by_obj_t"].items():
                if (0, t) in s2["by_obj_t"]:
                    add("other_video", s, f0, o, ft2, s2, s2["by_obj_t"][(0, t)])
    out = {}
    for rule in rules:
        sim = jax.jit(lambda a, b, c, d, r=rule: judgement_similarity(
            a, b, c, d, rule=r, box_threshold=model.box_threshold)[0])
        out[rule] = {k: _chunked(sim, [np.stack(x) for x in quads[k]]) if quads[k][0]
                     else np.zeros((0,), np.float32) for k in KINDS}
    return out


def roc_auc(pos, neg) -> float:
    """P(score of a positive > score of a negative), ties counted 1/2 (Mann-Whitney)."""
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)


def best_threshold(pos, neg) -> float:
    """The threshold maximising TPR - FPR for the rule ``keep iff s > threshold``: midway
    between consecutive distinct scores."""
    s = np.unique(np.concatenate([pos, neg]))
    cands = np.concatenate([[s[0] - 1e-3], (s[:-1] + s[1:]) / 2, [s[-1] + 1e-3]])
    j = [(pos > c).mean() - (neg > c).mean() for c in cands]
    return float(cands[int(np.argmax(j))])
