"""Cycle-ERF (eq. 6) of the baseline vs the cycle-trained model, as the paper's Figure 6.

    python -m experiments.erf_figure --runs runs/experiments/stm \
        --davis ../shared/data/davis2016-mini --out docs/figures/cycle_erf.png \
        --json experiments/results/cycle_erf.json

For every seed's pair of runs ({baseline,cycle}-s<seed>) and every clip (held-out synthetic
videos and the DAVIS-2016 sequences), the cycle-ERF of the first-frame mask is computed on
reference frames 5, 10, 15, 20 (all in one ``vmap``). The figure shows seed 0; the JSON holds,
per model, the share of the ERF mass that falls on the object's ground-truth mask of the
reference frame (higher: the model relies on the object itself rather than on look-alikes).
"""
from __future__ import annotations

import argparse
import functools
import os

import numpy as np

from experiments import common

REFS = (5, 10, 15, 20)


@functools.lru_cache(maxsize=None)
def _erf_fn(model, n_iter, rate):
    """Jitted ``vmap`` of :func:`~vosjax.correction.cycle_erf` over reference frames (built
    once per model, so clips of one shape share a compilation). The variables are an argument:
    closed over, jit would constant-fold them (minutes of compilation)."""
    import jax

    from vosjax.correction import cycle_erf

    return jax.jit(jax.vmap(lambda v, ref, target, masks: cycle_erf(
        model, v, ref, target, masks, n_iter=n_iter, rate=rate), in_axes=(None, 0, None, None)))


def erf_maps(model, variables, frames, first_masks, refs, n_iter, rate):
    """``[L, O, H, W]`` cycle-ERF of ``first_masks`` ``[O, H, W]`` for reference frames
    ``refs`` of ``frames`` ``[T, H, W, 3]`` (normalised), in one jitted vmap."""
    import jax.numpy as jnp

    fn = _erf_fn(model, n_iter, rate)
    return np.asarray(fn(variables, jnp.asarray(frames[list(refs)]), jnp.asarray(frames[0]),
                         jnp.asarray(first_masks, jnp.float32)))


def mass_on_object(erf, masks):
    """Share of each map's (non-negative) mass on its object's mask: ``erf``, ``masks``
    ``[..., H, W]`` -> ``[...]`` (NaN where a map is all zero)."""
    e = np.maximum(erf, 0.0)
    total = e.sum(axis=(-2, -1))
    inside = (e * (masks > 0)).sum(axis=(-2, -1))
    return np.where(total > 0, inside / np.where(total > 0, total, 1.0), np.nan)


def clips(config, davis_root, size):
    """(name, uint8 frames [T, H, W, 3], labels [T, H, W]) of the synthetic held-out videos
    and of the DAVIS-2016 sequences found under ``davis_root`` (if given)."""
    from vosjax.jobs import heldout_videos

    out = []
    for v in heldout_videos(config)[:4]:
        out.append((f"synthetic/{v.name}", v.load_frames(range(v.num_frames)), v.labels))
    if davis_root:
        from vosjax.training.input_pipeline import build_videos
        data = config.data.copy_and_resolve_references()
        with data.unlocked():
            data.davis_root = davis_root
            data.davis_split = "val"
        for v in build_videos("davis2016", data):
            t = min(v.num_frames, max(REFS) + 1)
            out.append((f"davis2016/{v.name}", v.load_frames(range(t)),
                        v.load_labels(range(t))))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", required=True)
    p.add_argument("--davis", default="", help="DAVIS-2016 root (optional)")
    p.add_argument("--config", default="configs/experiments/stm_synthetic.py")
    p.add_argument("--out", required=True, help="figure PNG")
    p.add_argument("--json", required=True, help="per-model ERF statistics")
    p.add_argument("--n-iter", type=int, default=50)
    p.add_argument("--rate", type=float, default=common.SCALED_RATE,
                   help="alpha; 10.8 is the paper's 180 scaled to 64x96 (experiments.common)")
    args = p.parse_args(argv)

    from PIL import Image

    from vosjax.data.transforms import denormalize, resize_pad_frames, resize_pad_labels
    from vosjax.erf import heat_overlay
    from vosjax.families import load_model

    config = common.load_config(args.config)
    size = tuple(config.data.size)
    seeds = sorted({int(n.rsplit("-s", 1)[1]) for n in os.listdir(args.runs)
                    if n.startswith(("baseline-s", "cycle-s"))})
    data = clips(config, args.davis, size)
    stats, panels = {}, {}
    for seed in seeds:
        for variant in ("baseline", "cycle"):
            workdir = os.path.join(args.runs, f"{variant}-s{seed}")
            if not os.path.isfile(os.path.join(workdir, "eval.json")):
                continue
            model, variables = load_model(workdir)
            for name, frames, labels in data:
                x, info = resize_pad_frames(frames, size)
                lab, _ = resize_pad_labels(labels, size)
                ids = [int(i) for i in np.unique(lab[0]) if i != 0]
                first = np.stack([lab[0] == i for i in ids]).astype(np.float32)
                refs = [r for r in REFS if r < len(x)]
                erf = erf_maps(model, variables, x, first, refs, args.n_iter, args.rate)
                gt = np.stack([[lab[r] == i for i in ids] for r in refs])
                share = mass_on_object(erf, gt)
                stats.setdefault(f"{variant}-s{seed}", {})[name] = float(np.nanmean(share))
                if seed == seeds[0]:
                    shown = denormalize(x[refs])
                    panels[(name, variant)] = [heat_overlay(shown[i], erf[i].sum(0))
                                               for i in range(len(refs))]
                    panels[(name, "frame0")] = common.mask_overlay(denormalize(x[:1])[0],
                                                                   lab[0])
    rows = []
    for name, _, _ in data:
        if (name, "cycle") not in panels or (name, "baseline") not in panels:
            continue
        for variant in ("baseline", "cycle"):
            first = panels[(name, "frame0")] if variant == "baseline" else np.full_like(
                panels[(name, "frame0")], 255)
            rows.append(np.concatenate([first] + panels[(name, variant)], axis=1))
    if not rows:
        raise SystemExit(f"{args.runs}: no finished baseline/cycle pair")
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255)
            for r in rows]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(args.out)
    summary = {}
    for key, per_clip in stats.items():
        syn = [v for k, v in per_clip.items() if k.startswith("synthetic/")]
        dav = [v for k, v in per_clip.items() if k.startswith("davis2016/")]
        summary[key] = {"synthetic": float(np.mean(syn)) if syn else None,
                        "davis2016": float(np.mean(dav)) if dav else None}
    common.write_results(args.json, {
        **common.record(__file__, argv),
        "refs": list(REFS), "n_iter": args.n_iter, "rate": args.rate,
        "rows": [n for n, _, _ in data], "share_on_object": summary, "per_clip": stats})
    print(f"wrote {args.out} and {args.json}")


if __name__ == "__main__":
    main()
