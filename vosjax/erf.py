"""Cycle-ERF heatmaps (eq. 6) for a video: ``python -m vosjax.erf``.

For each chosen reference frame ``l`` the cycle-ERF of every object of the first-frame mask is
computed (an empty mask on frame ``l`` updated toward reconstructing the first frame's mask), all
reference frames in one ``jax.vmap``. Writes, at the working size with the padding cropped:

* ``erf_<l>_obj<id>.png``: the heatmap (normalised per map) blended over frame ``l``;
* ``erf.npz``: ``erf`` ``[L, O, h, w]`` float32, ``ref_frames`` ``[L]``, ``ids`` ``[O]``.

Example::

    python -m vosjax.erf --frames JPEGImages/480p/blackswan \\
        --mask Annotations/480p/blackswan/00000.png --checkpoint ckpt/stm_cycle_r50 --out erf/ \\
        [--ref_frames 5,10] [--size 240x427]

The output directory is written next to its final place and renamed at the end, so a failed run
leaves nothing half-written.
"""
from __future__ import annotations

import os
import sys

import numpy as np
from absl import flags

from vosjax import atomic, cli
from vosjax.data.folder import list_frames
from vosjax.data.images import decode_rgb


def read_frames(directory: str, max_frames: int | None = None) -> tuple[np.ndarray, list[str]]:
    """uint8 ``[T, H, W, 3]`` RGB frames of a folder (:func:`vosjax.data.folder.list_frames`)
    and their file names."""
    _, paths = list_frames(directory)
    paths = paths[:max_frames] if max_frames else paths
    frames = []
    for path in paths:
        frames.append(decode_rgb(path))
        if frames[-1].shape != frames[0].shape:
            raise ValueError(f"{path}: size {frames[-1].shape[:2]} differs from the first "
                             f"frame's {frames[0].shape[:2]}")
    return np.stack(frames), [os.path.basename(p) for p in paths]


def heat_overlay(frame_rgb: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a ``[h, w]`` map (scaled by its max) as a blue-green-red ramp over uint8 RGB."""
    x = heat / heat.max() if heat.max() > 0 else np.zeros_like(heat)
    ramp = np.stack([np.clip(1.5 - np.abs(4 * x - c), 0, 1) for c in (3, 2, 1)], axis=-1)
    out = (1 - alpha) * frame_rgb.astype(np.float32) + alpha * 255 * ramp
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


PROG = "python -m vosjax.erf"


def define_flags() -> flags.FlagValues:
    """The command line's flags, on a fresh ``FlagValues`` (nothing global)."""
    from vosjax.compute import MODES

    fv = flags.FlagValues()
    flags.DEFINE_string("frames", None, "folder of video frames (jpg/png, sorted)", required=True,
                        flag_values=fv)
    flags.DEFINE_string("mask", None, "label PNG of the first (target) frame", required=True,
                        flag_values=fv)
    flags.DEFINE_string("out", None, "output folder (must not exist unless --overwrite)",
                        required=True, flag_values=fv)
    flags.DEFINE_string("checkpoint", None, "model directory (vosjax.families.load_model); "
                        "exactly one of --checkpoint and --random_weights", flag_values=fv)
    flags.DEFINE_boolean("random_weights", False, "random STM weights (a demo)", flag_values=fv)
    flags.register_multi_flags_validator(
        ["checkpoint", "random_weights"],
        lambda d: (d["checkpoint"] is not None) != bool(d["random_weights"]),
        "exactly one of --checkpoint and --random_weights is required", flag_values=fv)
    flags.DEFINE_string("arch", "resnet50", "backbone with --random_weights", flag_values=fv)
    flags.DEFINE_integer("seed", 0, "seed of --random_weights", flag_values=fv)
    flags.DEFINE_string("ref_frames", None, "comma-separated reference frame indices (default: "
                        "those of 5, 10, 15, 20 that exist)", flag_values=fv)
    flags.DEFINE_integer("n_iter", 50, "correction iterations", flag_values=fv)
    flags.DEFINE_float("rate", 180.0, "correction rate", flag_values=fv)
    cli.define_size("size", "240x427", "working size HxW", min_side=16, flag_values=fv)
    flags.DEFINE_boolean("overwrite", False, "replace an existing --out", flag_values=fv)
    flags.DEFINE_enum("compute", "auto", list(MODES), "numerics mode (vosjax.compute): auto = "
                      "bfloat16 on GPU, float32-highest on CPU", flag_values=fv)
    return fv


def main(argv=None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); 0 on success."""
    args = define_flags()
    cli.parse(args, argv, prog=PROG, description="Cycle-ERF heatmap overlays (STM-Cycle eq. 6).")
    import jax
    import jax.numpy as jnp
    from PIL import Image

    from vosjax.correction import cycle_erf
    from vosjax.data.masks import read_label_png
    from vosjax.data.transforms import denormalize, resize_pad_frames, resize_pad_labels

    out = os.path.abspath(args.out)
    if os.path.exists(out) and os.listdir(out) and not args.overwrite:
        raise SystemExit(f"{out}: exists and is not empty (pass --overwrite)")
    if args.n_iter < 1:
        raise SystemExit(f"--n_iter must be >= 1, got {args.n_iter}")
    frames, _ = read_frames(args.frames)
    labels = read_label_png(args.mask)
    if labels.shape != frames.shape[1:3]:
        raise SystemExit(f"{args.mask}: size {labels.shape} differs from the frames' "
                         f"{frames.shape[1:3]}")
    ids = [int(i) for i in np.unique(labels) if i not in (0, 255)]
    if not ids:
        raise SystemExit(f"{args.mask}: no object in the mask")
    t = frames.shape[0]
    if args.ref_frames:
        try:
            refs = [int(v) for v in args.ref_frames.split(",")]
        except ValueError:
            raise SystemExit(f"--ref_frames must be comma-separated ints, got {args.ref_frames!r}")
        bad = [r for r in refs if not 0 <= r < t]
        if bad:
            raise SystemExit(f"--ref_frames {bad} outside the video's {t} frames")
    else:
        refs = [r for r in (5, 10, 15, 20) if r < t] or [t - 1]

    from vosjax.compute import resolve
    numerics = resolve(args.compute).model_kwargs()
    if args.checkpoint:
        from vosjax.families import load_model
        model, variables = load_model(args.checkpoint, **numerics)
    else:
        from vosjax.models.stm import STM, init_stm
        model = STM(args.arch, **numerics)
        variables = jax.jit(lambda r: init_stm(model, r))(jax.random.PRNGKey(args.seed))

    x, info = resize_pad_frames(frames, args.size)
    masks, _ = resize_pad_labels(np.stack([labels == i for i in ids]).astype(np.uint8), args.size)
    # Variables as an argument: closed over, jit would constant-fold them (slow compiles).
    erf_fn = jax.jit(jax.vmap(lambda v, ref, target, m: cycle_erf(
        model, v, ref, target, m, n_iter=args.n_iter, rate=args.rate),
        in_axes=(None, 0, None, None)))
    erf = np.asarray(erf_fn(variables, jnp.asarray(x[refs]), jnp.asarray(x[0]),
                            jnp.asarray(masks, jnp.float32)))          # [L, O, H, W]
    (top, left), (h, w) = info.offsets, info.resized_hw
    erf = erf[..., top:top + h, left:left + w]
    shown = denormalize(x[refs][:, top:top + h, left:left + w])

    with atomic.replacing_dir(out, overwrite=True) as tmp:
        for i, r in enumerate(refs):
            for j, obj in enumerate(ids):
                Image.fromarray(heat_overlay(shown[i], erf[i, j])).save(
                    os.path.join(tmp, f"erf_{r:05d}_obj{obj}.png"))
        np.savez(os.path.join(tmp, "erf.npz"), erf=erf.astype(np.float32),
                 ref_frames=np.array(refs), ids=np.array(ids))
    print(f"wrote {len(refs) * len(ids)} overlays to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
