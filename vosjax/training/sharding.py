"""Device mesh and shardings (the modern form of pjit: ``jax.jit`` + ``NamedSharding``).

The mesh has two axes: ``data`` (clips are split over it) and ``fsdp`` (parameters and optimizer
state are split over it, FSDP style; clips are split over both axes). ``fsdp=1`` is plain data
parallelism with replicated parameters.
"""
from __future__ import annotations

import math

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

BATCH_AXES = ("data", "fsdp")


def make_mesh(fsdp: int = 1, devices=None) -> Mesh:
    """A ``(data, fsdp)`` mesh over ``devices`` (default: all devices of all hosts)."""
    devices = list(jax.devices() if devices is None else devices)
    if fsdp < 1 or len(devices) % fsdp:
        raise ValueError(f"fsdp={fsdp}: must divide the number of devices ({len(devices)})")
    grid = np.asarray(devices, dtype=object).reshape(len(devices) // fsdp, fsdp)
    return Mesh(grid, BATCH_AXES)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (clip) axis split over every device of the mesh."""
    return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def fsdp_spec(shape, fsdp_size: int, min_size: int = 2 ** 14) -> P:
    """Split the largest dimension divisible by ``fsdp_size`` over ``fsdp``; small arrays and
    arrays with no such dimension stay replicated."""
    if fsdp_size <= 1 or math.prod(shape) < min_size:
        return P()
    for d in sorted(range(len(shape)), key=lambda i: -shape[i]):
        if shape[d] % fsdp_size == 0:
            spec = [None] * len(shape)
            spec[d] = "fsdp"
            return P(*spec)
    return P()


def tree_shardings(tree, mesh: Mesh):
    """Shardings for a pytree of arrays (params, optimizer state) by the :func:`fsdp_spec` rule."""
    n = mesh.shape["fsdp"]
    return jax.tree_util.tree_map(
        lambda x: NamedSharding(mesh, fsdp_spec(tuple(np.shape(x)), n)), tree)


def global_batch(local: dict, sharding: NamedSharding) -> dict:
    """Assemble this host's numpy batch shard into global ``jax.Array`` s (multi-host safe)."""
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
            for k, v in local.items()}
