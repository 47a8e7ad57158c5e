"""One-step GCSeg diagnosis (docs/gcseg.md): segment frame t of held-out synthetic videos from
frame 0 (reference, ground-truth mask) and the ground-truth mask of t-1 (or zeros), no
propagation; report the IoU and the predicted vs ground-truth foreground area.

    python -m experiments.gcseg_onestep --run runs/gcseg-demo --videos 6
"""
from __future__ import annotations

import argparse

import numpy as np

from experiments import common


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a GCSeg train.py workdir")
    p.add_argument("--config", default="configs/gcseg.py:demo")
    p.add_argument("--videos", type=int, default=6)
    args = p.parse_args(argv)

    import jax
    import jax.numpy as jnp

    from vosjax.data.transforms import resize_pad_frames
    from vosjax.families import load_model
    from vosjax.jobs import heldout_videos

    config = common.load_config(args.config)
    size = tuple(config.data.size)
    model, variables = load_model(args.run)
    fg = jax.jit(lambda v, tf, pm, rf, rm: jax.nn.softmax(
        model.apply(v, tf, pm, rf, rm).target, -1)[..., 1])
    stats = {"iou_prev_gt": [], "iou_prev_zero": [], "area_gt": [], "area_prev_gt": [],
             "area_prev_zero": []}
    for vid in heldout_videos(config)[:args.videos]:
        x, _ = resize_pad_frames(vid.load_frames(range(vid.num_frames)), size)
        lab = vid.labels
        for i in (i for i in np.unique(lab[0]) if i):
            m = (lab == i).astype(np.float32)
            tf = jnp.asarray(x[1:])
            rf = jnp.broadcast_to(jnp.asarray(x[0]), tf.shape)
            rm = jnp.broadcast_to(jnp.asarray(m[0]), m[1:].shape)
            gt = m[1:] > 0.5
            stats["area_gt"].append(gt.mean())
            for name, prev in (("prev_gt", m[:-1]), ("prev_zero", np.zeros_like(m[:-1]))):
                pred = np.asarray(fg(variables, tf, jnp.asarray(prev), rf, rm)) > 0.5
                inter, union = (pred & gt).sum((1, 2)), (pred | gt).sum((1, 2))
                stats[f"iou_{name}"].append(np.mean(np.where(union > 0, inter /
                                                             np.maximum(union, 1), 1.0)))
                stats[f"area_{name}"].append(pred.mean())
    for k, v in stats.items():
        print(f"{k}: {np.mean(v):.3f}")


if __name__ == "__main__":
    main()
