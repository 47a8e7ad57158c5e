"""Test helpers for the training-loop tests (test_training_loop, test_training_paths, test_gpu,
test_speedups' donation test).

* :func:`tiny_config`: the small STM (R10 trunk, keydim 16, valdim 32) on 32x48 clips, 8 clips
  a batch (one per fake CPU device); :func:`loop_config`: the same with 2-frame clips and no
  cycle term (a smaller program to compile, the same loop); :func:`run_config`: that with the
  paper's learning rate after a warm-up and an on-device augmentation, the config of the tests'
  ``train()`` runs and sharded steps (one compiled program for all of them).
* :class:`RandomClips`: a deterministic stand-in stream of raw uint8 blob clips.
* :func:`jitted`: the task's jitted init and train step over a mesh of given devices;
  :func:`train_steps`: that step run over batches, the parameters after every step;
  :func:`run_steps`: the last parameters and metrics of ``n`` steps.
"""
from typing import NamedTuple

import jax
import numpy as np

from configs import base
from vosjax.data.sampler import HostBatch
from vosjax.families import FAMILIES, build_model
from vosjax.families import get as get_family
from vosjax.training import sharding as shd
from vosjax.training.loop import build_optimizer
from vosjax.training.step import jit_init_state, jit_train_step

STM = FAMILIES["stm"]

H, W, SLOTS, T = 32, 48, 2, 3


def tiny_config(clip_len=T, **train_overrides):
    """The schema (configs/base.py) with a tiny STM and a fast loop."""
    c = base.get_config("stm")
    c.model.update(dict(arch="resnet10", keydim=16, valdim=32, compute="float32-highest"))
    c.data.update(dict(size=(H, W), num_slots=SLOTS, clip_len=clip_len, num_workers=0))
    c.data.augment = None       # the raw batches as given: no photometric noise
    c.train.update(dict(batch_size=8, num_train_steps=3, checkpoint_every=1, keep_checkpoints=10,
                        log_every=1, learning_rate=1e-3, weight_decay=5e-4, cycle=True,
                        bootstrap=0.4, slot_policy="pad"))
    c.train.update(train_overrides)
    return c


def loop_config(**kw):
    """2-frame clips without the cycle term: a smaller program to compile, the same loop."""
    return tiny_config(clip_len=2, cycle=False, **kw)


RUN_TRAIN = dict(warmup_steps=3, learning_rate=1e-5)
RUN_AUGMENT = dict(contrast=(0.8, 1.2), noise_std=0.03)


def run_config(**kw):
    """:func:`loop_config` with the paper's Adam learning rate (1e-5) after a 3-step linear
    warm-up (``RUN_TRAIN``; the first step's learning rate is 0: test_training_paths'
    ``init_from`` test relies on it) and a photometric augmentation drawn on the devices
    (``RUN_AUGMENT``). The sharding test's 8-device run, the resume, checkpoint-safety,
    ``init_from`` and data-source runs of test_training_loop and test_training_paths, the
    2-object step of the bucketed run and the donated one-device step of test_speedups use it,
    so they share compiled programs (the persistent compilation cache), whatever their step
    counts."""
    c = loop_config(**{**RUN_TRAIN, **kw})
    c.data.augment = dict(RUN_AUGMENT)
    return c


class RandomClips:
    """Deterministic per-step raw batches of blob clips (a stand-in stream): uint8 frames and
    label maps with objects 1 and 2, a border of void pixels on odd steps. ``poison_step``
    adds a ``poison`` flag, set on that step (test_training_loop.poisoned_prepare)."""

    def __init__(self, batch_size, poison_step=None, clip_len=T):
        self.batch_size, self.poison_step, self.clip_len = batch_size, poison_step, clip_len

    def batch(self, step):
        rng = np.random.default_rng([7, step])
        frames = rng.integers(0, 256, (self.batch_size, self.clip_len, H, W, 3), np.uint8)
        labels = np.zeros((self.batch_size, self.clip_len, H, W), np.uint8)
        for b in range(self.batch_size):
            for t in range(self.clip_len):
                y, x = rng.integers(0, H - 12), rng.integers(0, W - 12)
                labels[b, t, y:y + 12, x:x + 12] = 1
                labels[b, t, :6, :6] = 2
        if step % 2:
            labels[:, :, :, -3:] = 255                     # VOID: outside the warped frame
        arrays = {"frames": frames, "labels": labels,
                  "num_objects": np.full((self.batch_size,), SLOTS, np.int32)}
        if self.poison_step is not None:
            arrays["poison"] = np.full((self.batch_size,), step == self.poison_step)
        return HostBatch(step, arrays, SLOTS, {"step": int(step) + 1})


def flat(tree):
    return np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(tree)])


class Steps(NamedTuple):
    params: list      # flat parameters: initial, after step 1, after step 2, ...
    metrics: list     # each step's metrics (host values)
    last: dict        # the last parameters as a tree


class Jitted(NamedTuple):
    init_fn: object        # rng -> sharded TrainState
    step_fn: object        # (state, raw batch, num_slots) -> (state, metrics)
    shardings: object      # the state's shardings
    init_variables: object  # rng -> variables (the task's, bound to the model and config)
    tx: object             # the optimizer
    mesh: object


def jitted(config, devices, fsdp=1, donate=True) -> Jitted:
    """The task's jitted init and train step of ``config`` on a mesh of ``devices``
    (``fsdp``-way parameter sharding), as the loop builds them (nothing compiled yet)."""
    mesh = shd.make_mesh(fsdp, devices)
    model, tx = build_model(config.model), build_optimizer(config.train)
    task = get_family(config.model.name)
    init = task.init_variables(model, config)
    init_fn, shardings, abstract = jit_init_state(init, tx, mesh)
    step_fn, _ = jit_train_step(task.loss(model, config), tx, mesh, abstract,
                                prepare=task.prepare(config), donate=donate)
    return Jitted(init_fn, step_fn, shardings, init, tx, mesh)


def train_steps(config, devices, batches, fsdp=1) -> Steps:
    """The task's jitted train step of ``config`` on a mesh of ``devices`` (``fsdp``-way
    parameter sharding), over ``batches`` (raw arrays, ``SLOTS`` slots, or
    :class:`HostBatch` es), from the state seeded with ``PRNGKey(0)``."""
    init_fn, step_fn, _, _, _, mesh = jitted(config, devices, fsdp)
    state = init_fn(jax.random.PRNGKey(0))
    params, metrics = [flat(jax.device_get(state.params))], []
    for b in batches:
        arrays, slots = (b.arrays, b.num_slots) if isinstance(b, HostBatch) else (b, SLOTS)
        state, m = step_fn(state, shd.global_batch(arrays, shd.batch_sharding(mesh)), slots)
        metrics.append(jax.device_get(m))
        params.append(flat(jax.device_get(state.params)))
    return Steps(params, metrics, jax.device_get(state.params))


def run_steps(config, devices, n, fsdp=1):
    """``n`` steps on :class:`RandomClips`: the last parameters (a tree) and metrics."""
    src = RandomClips(config.train.batch_size, clip_len=config.data.clip_len)
    out = train_steps(config, devices, [src.batch(s) for s in range(n)], fsdp=fsdp)
    return out.last, out.metrics[-1]


def assert_same_variables(a, b):
    """Two variable trees are bit-identical, leaf by leaf."""
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
