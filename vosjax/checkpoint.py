"""Model checkpoints on disk: an orbax checkpoint of the variables plus ``model.json``.

Layout of a model directory (written by ``python -m vosjax.convert``)::

    DIR/model.json      {"model": "stm", "fields": {"arch": "resnet50", "keydim": 128, ...}}

``"model"`` names the family (``"stm"`` STM-Training / STM-Cycle, ``"stm_original"`` the
original STM, ``"gcseg"``): :mod:`vosjax.families` turns it back into the module
(``families.load_model``); this module only reads and writes the files.
    DIR/variables/      orbax StandardCheckpointer tree {"params": ..., "batch_stats": ...}

A ``train.py`` workdir loads too: its ``model.json`` plus the latest step under
``checkpoints/``.

Writes go to a temporary sibling directory that is renamed into place at the end, so an
interrupted write never leaves a half-written ``DIR``.
"""
from __future__ import annotations

import json
import os
from typing import Any

from vosjax import atomic

FORMAT_VERSION = 1


def spec(family: str, fields: dict) -> dict:
    """The ``model.json`` content of a model of ``family`` with architecture ``fields``."""
    return {"model": family, "fields": dict(fields), "format": FORMAT_VERSION}


def save_model(directory: str | os.PathLike, model_spec: dict, variables) -> None:
    """Write ``variables`` and ``model_spec`` (:func:`spec`; ``vosjax.families.save_model``
    makes it from a model) to ``directory``, which must not exist or be empty."""
    import orbax.checkpoint as ocp

    directory = os.path.abspath(os.fspath(directory))
    if os.path.exists(directory) and os.listdir(directory):
        raise FileExistsError(f"{directory}: exists and is not empty; choose a new --out")
    with atomic.replacing_dir(directory) as tmp:
        ckptr = ocp.StandardCheckpointer()
        ckptr.save(os.path.join(tmp, "variables"), variables)
        ckptr.wait_until_finished()
        atomic.write_json(os.path.join(tmp, "model.json"), model_spec)


def load_train_state(ckpt_dir: str | os.PathLike, step: int | None = None) -> dict:
    """``{"params", "batch_stats"}`` of checkpoint ``step`` (default: the latest complete one)
    in a ``train.py`` workdir's ``checkpoints`` folder, on this process's first device,
    whatever the devices and processes that wrote it (e.g. a multi-host run)."""
    import jax
    import orbax.checkpoint as ocp

    ckpt_dir = os.path.abspath(os.fspath(ckpt_dir))
    handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
    with ocp.CheckpointManager(ckpt_dir, item_names=("state", "meta"),
                               item_handlers=handlers) as mngr:
        step = mngr.latest_step() if step is None else int(step)
        if step is None:
            raise FileNotFoundError(f"{ckpt_dir}: no complete checkpoint yet")
        here = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        target = jax.tree_util.tree_map(
            lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=here),
            mngr.item_metadata(step)["state"])
        state = mngr.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(target))).state
    return {"params": state["params"], "batch_stats": state["batch_stats"]}


def read_model(directory: str | os.PathLike) -> tuple[dict, Any]:
    """Read a model directory written by :func:`save_model`, or a ``train.py`` workdir (its
    latest complete step) -> ``(model.json spec, variables)``; the model itself is built by
    ``vosjax.families.load_model``."""
    import orbax.checkpoint as ocp

    directory = os.path.abspath(os.fspath(directory))
    spec_path = os.path.join(directory, "model.json")
    if not os.path.isfile(spec_path):
        raise FileNotFoundError(f"{spec_path}: not found; --checkpoint must be a directory "
                                "written by `python -m vosjax.convert` or by train.py")
    with open(spec_path) as f:
        try:
            spec = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{spec_path}: not valid JSON ({e})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("fields", {}), dict):
        raise ValueError(f"{spec_path}: expected an object with \"model\" and \"fields\"")
    var_dir = os.path.join(directory, "variables")
    if os.path.isdir(var_dir):
        return spec, ocp.StandardCheckpointer().restore(var_dir)
    ckpt_dir = os.path.join(directory, "checkpoints")
    if os.path.isdir(ckpt_dir):  # a train.py workdir: the latest complete step
        return spec, load_train_state(ckpt_dir)
    raise FileNotFoundError(f"{directory}: neither variables/ (converted or exported model) "
                            "nor checkpoints/ (train.py workdir) found")
