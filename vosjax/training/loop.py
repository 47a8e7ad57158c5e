"""The training loop behind ``train.py``: sharded steps, auto-resume, metrics, NaN guard.

Sections: setup (mesh, model, optimizer), state (restore or init), data, the loop, export.
"""
from __future__ import annotations

import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vosjax.training import sharding as shd
from vosjax.training.checkpointing import Checkpointer
from vosjax.training.input_pipeline import host_batches, slot_policy, trim_slots
from vosjax.training.metrics import MetricWriter
from vosjax.training.optim import learning_rate_schedule, make_optimizer
from vosjax.training.step import jit_init_state, jit_train_step


class NonFiniteLossError(FloatingPointError):
    """Raised by the NaN guard; names the step and the last good checkpoint."""


def build_optimizer(train_cfg):
    lr = learning_rate_schedule(train_cfg.learning_rate, train_cfg.schedule,
                                total_steps=train_cfg.num_train_steps,
                                warmup_steps=train_cfg.warmup_steps,
                                milestones=tuple(train_cfg.milestones), gamma=train_cfg.gamma)
    return make_optimizer(lr, optimizer=train_cfg.optimizer, b1=train_cfg.b1, b2=train_cfg.b2,
                          weight_decay=train_cfg.weight_decay, grad_clip=train_cfg.grad_clip,
                          accumulate_steps=train_cfg.accumulate_steps)


def _check_config(config) -> None:
    t = config.train
    for field in ("batch_size", "num_train_steps", "checkpoint_every", "log_every"):
        if int(t[field]) < 1:
            raise ValueError(f"config.train.{field}={t[field]}: must be >= 1")
    n = jax.device_count()
    if t.batch_size % n:
        raise ValueError(f"config.train.batch_size={t.batch_size} must be divisible by the "
                         f"number of devices ({n})")
    if config.data.clip_len < 2:
        raise ValueError(f"config.data.clip_len={config.data.clip_len}: must be >= 2")
    slot_policy(t)


def _load_init(state, init_from: str):
    """Replace params/batch_stats by a converted or exported model directory's variables
    (any model whose variable tree has the same structure and shapes, e.g. a GCSeg
    pre-training workdir for fine-tuning with ``freeze_backbone=True``)."""
    from vosjax.checkpoint import read_model

    _, variables = read_model(init_from)
    for col in ("params", "batch_stats"):
        new, old = variables.get(col, {}), getattr(state, col)
        new_paths = {jax.tree_util.keystr(p): np.shape(x)
                     for p, x in jax.tree_util.tree_leaves_with_path(new)}
        old_paths = {jax.tree_util.keystr(p): tuple(x.shape)
                     for p, x in jax.tree_util.tree_leaves_with_path(old)}
        if new_paths != old_paths:
            diff = sorted(set(new_paths.items()) ^ set(old_paths.items()))[:3]
            raise ValueError(f"config.train.init_from={init_from!r}: its {col} do not match "
                             f"the configured model (first differences: {diff})")
    cast = lambda new, old: jnp.asarray(new, old.dtype)  # noqa: E731
    return state.replace(
        params=jax.tree_util.tree_map(cast, variables["params"], state.params),
        batch_stats=jax.tree_util.tree_map(cast, variables.get("batch_stats", {}),
                                           state.batch_stats))


def train(config, workdir: str, family, *, sampler=None,
          progress: bool = True) -> dict[str, Any]:
    """Train per ``config`` in ``workdir`` (resuming from its latest checkpoint).

    ``family``: the model family (a :class:`vosjax.families.Family`: its hooks build the
    model, the initial variables, the loss, the device-side batch and the stream from
    ``config``). ``sampler``: the stream, an object with ``batch(step) ->``
    :class:`~vosjax.data.sampler.HostBatch` (raw uint8 clips, the family's ``prepare`` makes the
    loss's batch on the device) and picklable for the input workers (default: the family's
    stream built from ``config``); a ``restore(state)`` method, if it has one, gets the
    checkpointed state on resume (e.g. :class:`~vosjax.data.sampler.BucketSampler`).
    The batches come from :func:`~vosjax.training.input_pipeline.host_batches` with
    ``config.data.num_workers`` worker processes and ``config.data.prefetch`` batches ahead.
    ``config.train.slot_policy``: ``"bucket"`` is the family's sampler, ``"trim"`` is applied
    here (one process only), ``"pad"`` does nothing.
    Returns a summary dict (final step, last metrics, steps/s).
    """
    # -- setup ----------------------------------------------------------------------------------
    _check_config(config)
    if sampler is None:     # first: a bad data source fails before any compile or file write
        sampler = family.batches(config)
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    mesh = shd.make_mesh(config.train.fsdp)
    model = family.build_model(config.model)
    tx = build_optimizer(config.train)
    init_fn, st_sh, abstract = jit_init_state(family.init_variables(model, config), tx, mesh)
    step_fn, _ = jit_train_step(family.loss(model, config), tx, mesh, abstract,
                                prepare=family.prepare(config))
    ckpt = Checkpointer(workdir, keep=config.train.keep_checkpoints,
                        save_every=config.train.checkpoint_every)
    _write_model_spec(workdir, family.model_spec(model))

    # -- state ----------------------------------------------------------------------------------
    # An unreadable newest step is set aside with a warning; one line says where we resume.
    restored = ckpt.restore_latest(abstract, st_sh,
                                   log=print if jax.process_index() == 0 else None)
    meta = {}
    if restored is not None:
        state, meta, _ = restored
    else:
        state = init_fn(jax.random.PRNGKey(config.seed))
        if config.train.init_from:
            state = _load_init(state, config.train.init_from)
    start = int(state.step)
    total = int(config.train.num_train_steps)

    # -- data -----------------------------------------------------------------------------------
    if hasattr(sampler, "restore") and (meta or {}).get("sampler") is not None:
        sampler.restore(meta["sampler"])   # e.g. the bucket state: no replay of the stream
    batch_sh = shd.batch_sharding(mesh)
    # "bucket" lives in the family's sampler; per-host trimming would give hosts different
    # shapes: single-process runs only.
    trim = slot_policy(config.train) == "trim" and jax.process_count() == 1

    # -- loop -----------------------------------------------------------------------------------
    writer = MetricWriter(workdir, enabled=jax.process_index() == 0, resume_step=start)
    last_good = ckpt.latest_step()
    bar = _progress(start, total, progress)
    metrics, pending, batches = None, None, None
    t0 = time.perf_counter()
    try:
        if start < total:   # a finished run starts no workers
            batches = host_batches(sampler, start, total,
                                   num_workers=config.data.num_workers,
                                   prefetch=config.data.prefetch)
        for step in range(start, total):
            hb = next(batches)
            if hb.step != step:
                raise RuntimeError(f"input pipeline out of order: batch of step {hb.step} "
                                   f"for step {step}")
            if trim:
                hb = trim_slots(hb)
            batch = shd.global_batch(hb.arrays, batch_sh)
            state, metrics = step_fn(state, batch, hb.num_slots)
            # Check the previous step's guard after dispatching this one (keeps the device busy);
            # a non-finite step left the state unchanged, so nothing bad is ever saved.
            if pending is not None:
                _guard(*pending, ckpt, last_good)
            pending = (step + 1, metrics)
            if (step + 1) % config.train.log_every == 0 or step + 1 == total:
                _guard(*pending, ckpt, last_good)
                host = jax.device_get(metrics)
                writer.write(step + 1, {k: v for k, v in host.items() if k != "finite"})
                if bar is not None:
                    bar.set_postfix(loss=f"{float(host['loss']):.4f}")
            # The stream's state after this step came with its batch (computed in a worker).
            if ckpt.save(step + 1, state, {"sampler": hb.state}, force=step + 1 == total):
                last_good = step + 1
            if bar is not None:
                bar.update(1)
        if pending is not None:
            _guard(*pending, ckpt, last_good)
    finally:
        if batches is not None:
            batches.close()
        ckpt.close()
        writer.close()
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t0
    done = total - start
    return {"step": total, "model": model, "variables": state.variables,
            "metrics": None if metrics is None else jax.device_get(metrics),
            "steps_per_s": done / elapsed if done else 0.0}


def _guard(step, metrics, ckpt, last_good):
    if not bool(metrics["finite"]):
        where = (f"step {last_good} in {ckpt.directory}" if last_good is not None
                 else "none (no checkpoint was written yet)")
        raise NonFiniteLossError(
            f"non-finite loss or gradient at step {step} (the update was skipped); "
            f"last good checkpoint: {where}")


def _progress(start, total, enabled):
    if not enabled or jax.process_index() != 0:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=start, desc="train", unit="step", dynamic_ncols=True)


def _write_model_spec(workdir, spec):
    """``WORKDIR/model.json`` so the workdir itself loads as a model directory (latest
    step)."""
    from vosjax.atomic import write_json

    if jax.process_index() == 0:
        write_json(os.path.join(workdir, "model.json"), spec)
