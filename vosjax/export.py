"""Export the per-frame propagation step of an STM checkpoint as serialized ``jax.export``
programs (StableHLO, weights included, fixed shapes) that run without vosjax.

Command::

    python -m vosjax.export --checkpoint DIR --size HxW --objects O [--correction] \
        --out stm.vjx [--memory_slots S] [--mem_every 5] [--platforms cpu,cuda]

``--out`` is a zip archive holding two programs, plus ``FILE.json`` next to it (the same JSON is
in the archive as ``export.json``) describing their inputs and outputs:

* ``init.jaxexport``: ``init(frame0 [H, W, 3], masks0 [O, H, W]) -> (state, probs0)``;
* ``step.jaxexport``: ``step(state, frame [H, W, 3]) -> (state, probs [K, H, W])``.

``state`` is a flat tuple of arrays (the propagation state: memory bank, previous frame and
mask, frame counter, the correction's reference); pass it back unchanged. Frames are
ImageNet-normalised RGB ``(x / 255 - mean) / std`` at exactly ``H x W``; ``probs`` has
``K = num_slots + 1`` channels, channel 0 the background. The programs are
:func:`vosjax.inference.propagation.init_state` and
:func:`~vosjax.inference.propagation.propagation_step` (plus, with ``--correction``,
:func:`~vosjax.inference.propagation.correction_step` under a ``lax.cond`` on the frames that
``propagate`` corrects), i.e. the functions :class:`~vosjax.inference.propagation.Propagator`
jits, with the variables closed over: ``propagate(..., memory_slots=S)`` gives the same numbers.
The memory bank has a fixed capacity of ``S`` permanent frames (the first frame plus a ring
buffer of the most recent, as ``memory_slots``); all objects are given on frame 0.

Running it needs only jax and numpy (see README, "Exported step")::

    import zipfile, jax
    z = zipfile.ZipFile("stm.vjx")
    init, step = (jax.export.deserialize(z.read(n)) for n in ("init.jaxexport", "step.jaxexport"))
    state, probs = init.call(frame0, masks0)
    for frame in frames[1:]:
        state, probs = step.call(state, frame)
"""
from __future__ import annotations

import json
import os
import sys
import zipfile

import numpy as np
from absl import flags

from vosjax import atomic, cli

FORMAT = "vosjax-export"
FORMAT_VERSION = 1
PROGRAMS = ("init", "step")


def build_programs(model, variables, *, size, objects: int, num_slots: int | None = None,
                   mem_every: int = 5, memory_slots: int = 16, correction=None):
    """The two functions to export, closed over ``model`` and ``variables``.

    Returns ``(init_fn, step_fn, cfg, state_names)``: ``init_fn(frame0, masks0) -> (leaves,
    probs0)`` and ``step_fn(leaves, frame) -> (leaves, probs)`` with ``leaves`` a flat tuple of
    the :class:`~vosjax.inference.propagation.PropagationState` arrays (names in
    ``state_names``).
    """
    import jax
    import jax.numpy as jnp

    from vosjax.inference.propagation import (
        StepConfig,
        correction_step,
        init_state,
        propagation_step,
    )

    h, w = (int(s) for s in size)
    if min(h, w) <= 0 or not isinstance(objects, int) or objects < 1:
        raise ValueError(f"size must be positive and objects >= 1, got size={size}, "
                         f"objects={objects!r}")
    if not isinstance(memory_slots, int) or memory_slots < 1:
        raise ValueError(f"memory_slots must be a positive int, got {memory_slots!r}")
    cfg = StepConfig(num_slots=objects if num_slots is None else num_slots,
                     mem_every=mem_every, correction=correction)
    active = jnp.ones((objects,), bool)

    def init_tree(frame0, masks0):
        return init_state(model, variables, frame0, masks0, active, cfg=cfg,
                          bank_slots=memory_slots)

    frame_spec = jax.ShapeDtypeStruct((h, w, 3), jnp.float32)
    masks_spec = jax.ShapeDtypeStruct((objects, h, w), jnp.float32)
    state_shape, _ = jax.eval_shape(init_tree, frame_spec, masks_spec)
    paths, treedef = jax.tree_util.tree_flatten_with_path(state_shape)
    state_names = [_leaf_name(p) for p, _ in paths]
    no_masks = jnp.zeros((objects, h, w), jnp.float32)
    no_new = jnp.zeros((objects,), bool)

    def init_fn(frame0, masks0):
        state, probs0 = init_tree(frame0, masks0)
        return tuple(jax.tree_util.tree_leaves(state)), probs0

    def step_fn(leaves, frame):
        state = jax.tree_util.tree_unflatten(treedef, list(leaves))
        state, out = propagation_step(model, variables, state, frame, no_masks, no_new, cfg=cfg)
        if cfg.correction is not None:       # Propagator.step: correct frame t when t % every == 0
            t = state.t - 1

            def correct(s):
                return correction_step(model, variables, s, cfg=cfg)[0]

            state = jax.lax.cond((t % cfg.correction.every == 0) & jnp.any(state.active),
                                 correct, lambda s: s, state)
        return tuple(jax.tree_util.tree_leaves(state)), out.probs

    return init_fn, step_fn, cfg, state_names


def _leaf_name(path) -> str:
    """``bank.keys``, ``ref_query.s3`` ... for a state leaf's pytree path."""
    parts = []
    for k in path:
        for attr in ("name", "key", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
    return ".".join(parts)


def _compute_mode(model) -> str:
    from vosjax import compute

    return compute.mode_of(model)


def _spec(name, x, doc=""):
    d = {"name": name, "shape": [int(s) for s in x.shape], "dtype": str(np.dtype(x.dtype))}
    if doc:
        d["doc"] = doc
    return d


def export_model(model, variables, out: str | os.PathLike, *, size, objects: int,
                 num_slots: int | None = None, mem_every: int = 5, memory_slots: int = 16,
                 correction=None, platforms=None, model_spec: dict | None = None) -> dict:
    """Export and write ``out`` (zip) and ``out + ".json"``; returns the JSON description."""
    import jax
    import jax.numpy as jnp
    from jax import export as jax_export

    from vosjax.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    init_fn, step_fn, cfg, names = build_programs(
        model, variables, size=size, objects=objects, num_slots=num_slots, mem_every=mem_every,
        memory_slots=memory_slots, correction=correction)
    h, w = (int(s) for s in size)
    platforms = tuple(platforms) if platforms else (jax.default_backend(),)
    frame = jax.ShapeDtypeStruct((h, w, 3), jnp.float32)
    masks = jax.ShapeDtypeStruct((objects, h, w), jnp.float32)
    init_exp = jax_export.export(jax.jit(init_fn), platforms=platforms)(frame, masks)
    state_avals, probs_aval = init_exp.out_avals[:-1], init_exp.out_avals[-1]
    state_specs = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in state_avals)
    step_exp = jax_export.export(jax.jit(step_fn), platforms=platforms)(state_specs, frame)

    frame_doc = ("ImageNet-normalised RGB (x / 255 - mean) / std, float32, exactly this size "
                 "(resize / pad before)")
    state = [_spec(n, a) for n, a in zip(names, state_avals)]
    probs = _spec("probs", probs_aval, "softmax over K = num_slots + 1 channels, channel 0 the "
                  "background, channel o object o; labels = argmax over axis 0")
    desc = {
        "format": FORMAT, "version": FORMAT_VERSION,
        "model": model_spec, "compute": _compute_mode(model), "size": [h, w],
        "objects": objects, "num_slots": cfg.num_slots,
        "mem_every": cfg.mem_every, "memory_slots": memory_slots,
        "correction": None if correction is None else {
            "n_iter": correction.n_iter, "rate": correction.rate, "every": correction.every},
        "platforms": list(platforms), "jax_version": jax.__version__,
        "normalization": {"mean": IMAGENET_MEAN.tolist(), "std": IMAGENET_STD.tolist()},
        "programs": {
            "init": {"file": "init.jaxexport",
                     "call": "state, probs0 = init.call(frame0, masks0)",
                     "inputs": [_spec("frame0", frame, frame_doc),
                                _spec("masks0", masks, "each object's mask on frame 0, in [0, 1]")],
                     "outputs": [{"name": "state", "tuple": state}, probs]},
            "step": {"file": "step.jaxexport",
                     "call": "state, probs = step.call(state, frame)",
                     "inputs": [{"name": "state", "tuple": state},
                                _spec("frame", frame, frame_doc + "; frames 1, 2, ... in order")],
                     "outputs": [{"name": "state", "tuple": state}, probs]},
        },
    }
    out = os.fspath(out)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    text = json.dumps(desc, indent=2)
    with atomic.replacing(out) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr("init.jaxexport", bytes(init_exp.serialize()))
            z.writestr("step.jaxexport", bytes(step_exp.serialize()))
            z.writestr("export.json", text)
    atomic.write_text(out + ".json", text)
    return desc


PROG = "python -m vosjax.export"


def define_flags() -> flags.FlagValues:
    """The command line's flags, on a fresh ``FlagValues`` (nothing global)."""
    fv = flags.FlagValues()
    flags.DEFINE_string("checkpoint", None, "model directory (vosjax.convert output or a "
                        "train.py workdir)", required=True, flag_values=fv)
    cli.define_size("size", None, "frame height and width the programs accept, HxW",
                    required=True, flag_values=fv)
    flags.DEFINE_integer("objects", None, "number of objects O", required=True, flag_values=fv)
    flags.DEFINE_integer("num_slots", None, "output channels minus one (default O; the original "
                         "STM uses 10)", flag_values=fv)
    flags.DEFINE_boolean("correction", False, "include gradient correction (eq. 5) on every "
                         "--correction_every-th frame", flag_values=fv)
    flags.DEFINE_integer("correction_iters", 10, "correction iterations", flag_values=fv)
    flags.DEFINE_float("correction_rate", 180.0, "correction rate", flag_values=fv)
    flags.DEFINE_integer("correction_every", 5, "correction period in frames", flag_values=fv)
    flags.DEFINE_integer("mem_every", 5, "memory write period (5)", flag_values=fv)
    flags.DEFINE_integer("memory_slots", 16, "permanent memory frames (first + most recent); "
                         "fixed capacity", flag_values=fv)
    flags.DEFINE_string("compute", "float32-highest", "numerics mode (vosjax.compute: "
                        "float32-highest | float32 | bfloat16 | auto); the default matches "
                        "propagate's parity mode", flag_values=fv)
    flags.DEFINE_list("platforms", None, "comma-separated jax platforms to lower for, e.g. "
                      "cpu,cuda (default: this machine's backend)", flag_values=fv)
    flags.DEFINE_string("out", None, "output file (a zip); FILE.json is written too",
                        required=True, flag_values=fv)
    return fv


def main(argv=None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``): 0 on success, 2 on bad input."""
    args = define_flags()
    cli.parse(args, argv, prog=PROG, description=__doc__.split("\n")[0].rstrip(","))

    from vosjax import compute
    from vosjax.correction import GradientCorrection
    from vosjax.families import load_model, model_spec

    try:
        numerics = compute.resolve(args.compute).model_kwargs()
        model, variables = load_model(args.checkpoint, **numerics)
        if not hasattr(model, "memorize"):
            raise ValueError(f"{args.checkpoint}: {type(model).__name__} has no STM propagation "
                             "step to export (STM families only)")
        corr = None
        if args.correction:
            corr = GradientCorrection(n_iter=args.correction_iters, rate=args.correction_rate,
                                      every=args.correction_every)
        desc = export_model(model, variables, args.out, size=args.size, objects=args.objects,
                            num_slots=args.num_slots, mem_every=args.mem_every,
                            memory_slots=args.memory_slots, correction=corr,
                            platforms=args.platforms, model_spec=model_spec(model))
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({os.path.getsize(args.out):,} bytes) and {args.out}.json: "
          f"{desc['model']['model']} at {args.size[0]}x{args.size[1]}, {args.objects} objects, "
          f"{len(desc['programs']['step']['inputs'][0]['tuple'])} state arrays, "
          f"platforms {desc['platforms']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
