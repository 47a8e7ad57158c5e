"""Import PyTorch STM weights into vosjax: STM-Training (lyxok1/STM-Training, branch
``cycle``, the STM-Cycle code) and the original STM (seoungwugoh/STM, ``STM_weights.pth``).

Library use::

    model, variables = load_stm_training("stm_cycle_r50.pth")     # arch inferred from shapes
    model, variables = load_stm_original("STM_weights.pth")       # -> STMOriginal
    keys, values = model.apply(variables, frame, masks, method=model.memorize)

Command line (writes an orbax checkpoint + ``model.json`` that :func:`vosjax.families.load_model`
and ``evaluate.py --checkpoint`` read; ``model.json`` records the family)::

    python -m vosjax.convert --from stm-training stm_cycle_r50.pth --out ckpt/stm_cycle_r50
    python -m vosjax.convert --from stm STM_weights.pth --out ckpt/stm_original

Sources: ``.pth``/``.pt`` (through ``torch.load(weights_only=True)``: nothing is unpickled but
tensors and plain containers; needs the ``torch`` extra), ``.npz`` (``allow_pickle=False``),
``.safetensors``, or a mapping from PyTorch state-dict names to arrays.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Mapping

import numpy as np
from absl import flags

from vosjax import cli

# Buffers of the official model that the forward pass never reads (normalisation happens in the
# data pipeline); accepted and dropped.
UNUSED_KEYS = ("Encoder_M.mean", "Encoder_M.std", "Encoder_Q.mean", "Encoder_Q.std")


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded: unreadable, unsafe, or not matching the model."""


# ---------------------------------------------------------------------------------------------
# Reading a state dict from disk
# ---------------------------------------------------------------------------------------------
def read_state_dict(source: str | os.PathLike | Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Read a PyTorch-named state dict as ``{name: float/int numpy array}``.

    Accepts the official training checkpoints (``{"state_dict": ..., "epoch": ...}``) and
    ``DataParallel`` names (``module.`` prefix).
    """
    if isinstance(source, Mapping):
        sd, where = dict(source), "the given mapping"
    else:
        path = os.fspath(source)
        where = path
        if not os.path.isfile(path):
            raise CheckpointError(f"{path}: no such checkpoint file")
        ext = os.path.splitext(path)[1].lower()
        if ext in (".pth", ".pt", ".pkl", ".tar"):
            sd = _read_torch(path)
        elif ext == ".npz":
            sd = _read_npz(path)
        elif ext == ".safetensors":
            sd = _read_safetensors(path)
        else:
            raise CheckpointError(f"{path}: unknown checkpoint type {ext!r} "
                                  "(expected .pth, .pt, .npz or .safetensors)")
    if "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        sd = dict(sd["state_dict"])
    out = {}
    for k, v in sd.items():
        if not isinstance(k, str):
            raise CheckpointError(f"{where}: state-dict key {k!r} is not a string")
        name = k[len("module."):] if k.startswith("module.") else k
        out[name] = _to_numpy(v, name, where)
    return out


def _to_numpy(v, name, where):
    if hasattr(v, "detach"):  # torch.Tensor
        v = v.detach().cpu()
        if str(v.dtype) == "torch.bfloat16":
            v = v.float()
        v = v.numpy()
    arr = np.asarray(v)
    if arr.dtype == object:
        raise CheckpointError(f"{where}: entry {name!r} is not a numeric array")
    return arr


def _read_torch(path):
    try:
        import torch  # (optional dependency)
    except ImportError:
        raise CheckpointError(
            f"{path}: reading PyTorch checkpoints needs torch; install the 'torch' extra "
            "(pip install 'vosjax[torch]') or convert the file to .npz/.safetensors") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle.UnpicklingError, RuntimeError, zip errors...
        raise CheckpointError(
            f"{path}: not loadable as plain tensors with torch.load(weights_only=True) "
            f"(it may hold code or custom objects, which are never unpickled): {e}") from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a state dict, found {type(obj).__name__}")
    return obj


def _read_npz(path):
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as e:  # object arrays need pickle: refused
        raise CheckpointError(f"{path}: refusing pickled content in .npz ({e})") from None
    except Exception as e:
        raise CheckpointError(f"{path}: unreadable .npz: {e}") from None


def _read_safetensors(path):
    from safetensors.numpy import load_file
    try:
        return load_file(path)
    except Exception as e:
        raise CheckpointError(f"{path}: unreadable .safetensors: {e}") from None


# ---------------------------------------------------------------------------------------------
# Name mapping PyTorch <-> Flax
# ---------------------------------------------------------------------------------------------
def torch_to_flax_path(name: str, state_dict_keys=()) -> tuple[str, tuple[str, ...]] | None:
    """Map ``Encoder_Q.res3.0.downsample.1.running_var`` -> ``("batch_stats", (Encoder_Q,
    res3_0, downsample_1, var))``. Returns None for entries that carry nothing
    (``num_batches_tracked``). ``layerN`` (plain torchvision) is renamed ``res{N+1}``.
    """
    parts = name.split(".")
    leaf, mods = parts[-1], []
    for p in parts[:-1]:
        if p.isdigit() and mods:
            mods[-1] = f"{mods[-1]}_{p}"
        elif p.startswith("layer") and p[5:].isdigit():
            mods.append(f"res{int(p[5:]) + 1}")
        else:
            mods.append(p)
    prefix = ".".join(parts[:-1])
    key = f"{prefix}.running_mean" if prefix else "running_mean"
    is_bn = key in state_dict_keys
    if leaf == "num_batches_tracked":
        return None
    if leaf == "running_mean":
        return "batch_stats", tuple(mods) + ("mean",)
    if leaf == "running_var":
        return "batch_stats", tuple(mods) + ("var",)
    if leaf == "weight":
        return "params", tuple(mods) + (("scale",) if is_bn else ("kernel",))
    if leaf == "bias":
        return "params", tuple(mods) + ("bias",)
    return "params", tuple(mods) + (leaf,)


def torch_to_flax_array(arr: np.ndarray, flax_leaf: str) -> np.ndarray:
    """Conv ``OIHW`` -> ``HWIO``, Linear ``[out, in]`` -> ``[in, out]``; the rest unchanged."""
    if flax_leaf == "kernel" and arr.ndim == 4:
        return np.transpose(arr, (2, 3, 1, 0))
    if flax_leaf == "kernel" and arr.ndim == 2:
        return arr.T
    return arr


def _flax_to_torch_shape(shape, leaf):
    if leaf == "kernel" and len(shape) == 4:
        return (shape[3], shape[2], shape[0], shape[1])
    if leaf == "kernel" and len(shape) == 2:
        return (shape[1], shape[0])
    return tuple(shape)


def state_dict_to_variables(state_dict: Mapping[str, np.ndarray], expected, *, where: str,
                            ignore=UNUSED_KEYS, dtype=np.float32):
    """Build a Flax variable tree matching ``expected`` (a tree of shapes, e.g. from
    ``jax.eval_shape(model.init, ...)``) from a PyTorch state dict.

    Raises :class:`CheckpointError` naming every missing, unexpected or mis-shaped key.
    """
    import flax

    want = {("/".join(k)): v for k, v in flax.traverse_util.flatten_dict(expected).items()}
    keys = set(state_dict)
    got, torch_name_of, problems = {}, {}, []
    for name, arr in state_dict.items():
        if name in ignore:
            continue
        mapped = torch_to_flax_path(name, keys)
        if mapped is None:
            continue
        col, path = mapped
        flat = "/".join((col,) + path)
        if flat not in want:
            problems.append(f"unexpected key {name!r}")
            continue
        target = want[flat]
        value = torch_to_flax_array(np.asarray(arr), path[-1])
        if tuple(value.shape) != tuple(target.shape):
            problems.append(f"key {name!r} has shape {tuple(np.shape(arr))}, the model needs "
                            f"{_flax_to_torch_shape(target.shape, path[-1])}")
            continue
        if not np.issubdtype(value.dtype, np.number):
            problems.append(f"key {name!r} has non-numeric dtype {value.dtype}")
            continue
        got[flat] = value.astype(dtype)
        torch_name_of[flat] = name
    for flat in sorted(set(want) - set(got)):
        if any(p.startswith(f"key {_torch_name(flat)!r}") for p in problems):
            continue
        problems.append(f"missing key {_torch_name(flat)!r}")
    if problems:
        shown = "; ".join(problems[:12]) + (f"; ... ({len(problems)} problems)"
                                            if len(problems) > 12 else "")
        raise CheckpointError(f"{where}: state dict does not match the model: {shown}")
    return flax.traverse_util.unflatten_dict({tuple(k.split("/")): v for k, v in got.items()})


def _torch_name(flat: str) -> str:
    col, *path = flat.split("/")
    leaf = {"kernel": "weight", "scale": "weight", "mean": "running_mean",
            "var": "running_var"}.get(path[-1], path[-1])
    mods = []
    for p in path[:-1]:
        head, _, tail = p.rpartition("_")
        mods.append(f"{head}.{tail}" if tail.isdigit() and head else p)
    return ".".join(mods + [leaf])


# ---------------------------------------------------------------------------------------------
# STM-Training
# ---------------------------------------------------------------------------------------------
def infer_stm_config(state_dict: Mapping[str, np.ndarray], where: str = "state dict") -> dict:
    """``{"arch", "keydim", "valdim", "mdim"}`` from the shapes of an STM state dict (either
    family: STM-Training and the original STM share these entries)."""
    try:
        bottleneck = "Encoder_Q.res2.0.conv3.weight" in state_dict
        n4 = len({k.split(".")[2] for k in state_dict if k.startswith("Encoder_Q.res4.")})
        keydim = int(state_dict["KV_M_r4.Key.weight"].shape[0])
        valdim = int(state_dict["KV_M_r4.Value.weight"].shape[0])
        mdim = int(state_dict["Decoder.convFM.weight"].shape[0])
    except KeyError as e:
        raise CheckpointError(f"{where}: not an STM-Training state dict "
                              f"(missing key {e})") from None
    table = {(False, 1): "resnet10", (False, 2): "resnet18", (False, 6): "resnet34",
             (True, 6): "resnet50", (True, 23): "resnet101"}
    arch = table.get((bottleneck, n4))
    if arch is None:
        raise CheckpointError(f"{where}: cannot infer the ResNet from {n4} blocks in "
                              f"Encoder_Q.res4 ({'bottleneck' if bottleneck else 'basic'})")
    return {"arch": arch, "keydim": keydim, "valdim": valdim, "mdim": mdim}


# The memory encoder's stem convolution that tells the two families apart.
FAMILY_KEYS = {"stm-training": "Encoder_M.conv1_bg.weight", "stm": "Encoder_M.conv1_o.weight"}


def _load_stm(source, family: str, arch: str | None, precision: Any):
    import jax

    from vosjax.models.stm import STM, init_stm
    from vosjax.models.stm_original import STMOriginal

    where = source if isinstance(source, (str, os.PathLike)) else "the given mapping"
    where = os.fspath(where) if not isinstance(where, str) else where
    sd = read_state_dict(source)
    cfg = infer_stm_config(sd, where)
    if FAMILY_KEYS[family] not in sd:
        other = [f for f, k in FAMILY_KEYS.items() if k in sd]
        hint = (f"; it looks like a {other[0]!r} checkpoint (has {FAMILY_KEYS[other[0]]!r}): "
                f"use --from {other[0]}" if other else "")
        raise CheckpointError(f"{where}: not a {family!r} checkpoint (missing key "
                              f"{FAMILY_KEYS[family]!r}){hint}")
    if arch is not None:
        if arch != cfg["arch"]:
            raise CheckpointError(f"{where}: arch={arch!r} requested but the weights are "
                                  f"{cfg['arch']!r}")
    cls = STMOriginal if family == "stm" else STM
    model = cls(precision=precision, **cfg)
    expected = jax.eval_shape(lambda: init_stm(model, jax.random.PRNGKey(0), 32, 32))
    variables = state_dict_to_variables(sd, expected, where=where)
    return model, jax.tree_util.tree_map(jax.numpy.asarray, variables)


def load_stm_training(source, arch: str | None = None, *, precision: Any = "highest"):
    """Load official STM-Training weights as ``(model, variables)``.

    Args:
      source: a path (``.pth``/``.pt``/``.npz``/``.safetensors``) or a mapping from PyTorch
        state-dict names to arrays.
      arch: ``resnet18|34|50|101``; inferred from the shapes when None (a given arch that does
        not match the shapes raises).
      precision: the model's conv/matmul precision (default full float32).
    """
    return _load_stm(source, "stm-training", arch, precision)


def load_stm_original(source, arch: str | None = None, *, precision: Any = "highest"):
    """Load original STM weights (seoungwugoh/STM ``STM_weights.pth``, a ``DataParallel``
    state dict: the ``module.`` prefix is dropped) as ``(STMOriginal, variables)``.

    Arguments as :func:`load_stm_training`; the released model is ResNet-50.
    """
    return _load_stm(source, "stm", arch, precision)


LOADERS = {"stm-training": load_stm_training, "stm": load_stm_original}


PROG = "python -m vosjax.convert"


def define_flags() -> flags.FlagValues:
    """The command line's flags, on a fresh ``FlagValues`` (nothing global); the source file is
    the one positional argument."""
    fv = flags.FlagValues()
    flags.DEFINE_enum("from", None, sorted(LOADERS), "format of the source checkpoint: "
                      "stm-training (lyxok1/STM-Training, STM-Cycle) or stm (seoungwugoh/STM, "
                      "the original STM_weights.pth)", required=True, flag_values=fv)
    flags.DEFINE_string("out", None, "output directory (must not exist, or be empty)",
                        required=True, flag_values=fv)
    flags.DEFINE_string("arch", None, "expected backbone (default: inferred)", flag_values=fv)
    return fv


def main(argv=None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``): 0 on success, 2 on bad input."""
    args = define_flags()
    (source,) = cli.parse(args, argv, prog=PROG, description=__doc__.split("\n")[0],
                          positional=["SOURCE"])
    src_format = args["from"].value

    from vosjax.families import save_model

    try:
        model, variables = LOADERS[src_format](source, args.arch)
        save_model(args.out, model, variables)
    except (CheckpointError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n = sum(int(np.prod(x.shape)) for x in __import__("jax").tree_util.tree_leaves(variables))
    print(f"wrote {args.out}: {type(model).__name__} {model.arch} keydim={model.keydim} "
          f"valdim={model.valdim}, "
          f"{n:,} values")
    return 0


if __name__ == "__main__":
    sys.exit(main())
