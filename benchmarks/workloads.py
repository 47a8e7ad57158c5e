"""The inputs and the vosjax side of the benchmarks: synthetic videos and training clips, and
vosjax's propagation and training update driven like the official adapters
(:mod:`benchmarks.official.stm_training`), so that a benchmark times both the same way.
"""
from __future__ import annotations

import os
import time

import numpy as np

from benchmarks.official.stm_training import LEARNING_RATE, WEIGHT_DECAY


def synthetic_video(t_len: int, objects: int, h: int, w: int, seed: int = 0):
    """``frames [T, H, W, 3]`` float32 (standard normal, as normalised RGB) and one-hot
    ``masks0 [O + 1, H, W]`` of ``objects`` disjoint ellipses on frame 0."""
    rng = np.random.default_rng(seed)
    frames = rng.standard_normal((t_len, h, w, 3)).astype(np.float32)
    yy, xx = np.mgrid[:h, :w]
    labels = np.zeros((h, w), np.int64)
    for o in range(objects):
        cy, cx = (o + 1) * h / (objects + 1), w * (0.3 + 0.4 * rng.random())
        ry, rx = h / (2.5 * (objects + 1)), w / 6
        labels[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = o + 1
    masks0 = (labels[None] == np.arange(objects + 1)[:, None, None]).astype(np.float32)
    return frames, masks0


def synthetic_clips(batch: int, t_len: int, objects: int, num_slots: int, h: int, w: int,
                    seed: int = 0):
    """``frames [B, T, H, W, 3]`` float32, one-hot ``masks [B, T, K, H, W]`` (K = num_slots + 1)
    with ``objects`` moving ellipses present in every frame, ``num_objects [B]`` int32."""
    rng = np.random.default_rng(seed)
    frames = rng.standard_normal((batch, t_len, h, w, 3)).astype(np.float32)
    yy, xx = np.mgrid[:h, :w]
    labels = np.zeros((batch, t_len, h, w), np.int64)
    for b in range(batch):
        for t in range(t_len):
            for o in range(objects):
                cy = (o + 1) * h / (objects + 1) + rng.uniform(-2, 2)
                cx = w * (0.3 + 0.4 * rng.random())
                ry, rx = h / (2.5 * (objects + 1)), w / 6
                labels[b, t][((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = o + 1
    masks = (labels[:, :, None] == np.arange(num_slots + 1)[:, None, None]).astype(np.float32)
    return frames, masks, np.full((batch,), objects, np.int32)


def to_numpy(x):
    """A JAX array or a torch tensor as float32 numpy."""
    if hasattr(x, "detach"):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, np.float32)


class VosjaxInference:
    """vosjax propagation of one configuration (STM-Training weights loaded once): ``put``
    the inputs on the device, ``run`` one video."""

    def __init__(self, state_dict, arch, dtype, correction, mem_every, precision, unroll=None):
        import jax.numpy as jnp

        from vosjax.convert import load_stm_training
        from vosjax.correction import GradientCorrection

        model, self.variables = load_stm_training(state_dict, arch, precision=precision)
        self.model = model if dtype == "float32" else model.clone(dtype=jnp.bfloat16)
        self.correction = (GradientCorrection(n_iter=10, rate=180.0, every=mem_every,
                                              unroll=unroll) if correction else None)
        self.mem_every = mem_every

    def put(self, frames, masks0):
        import jax

        return jax.device_put(frames), jax.device_put(masks0[1:])

    def run(self, frames, masks):
        """One video; returns ``probs [T, K, H, W]`` (blocked until computed)."""
        import jax

        from vosjax.inference import propagate

        res = propagate(self.model, self.variables, frames, masks, mem_every=self.mem_every,
                        correction=self.correction)
        jax.block_until_ready((res.probs, res.corrected))
        return res.probs


class VosjaxTraining:
    """vosjax's jitted STM-cycle train step for one (arch, batch, dtype): Adam with the official
    learning rate and L2 weight decay, state donated; ``prepare`` a batch, ``update`` once."""

    def __init__(self, state_dict, arch, dtype, precision):
        import jax
        import jax.numpy as jnp

        from vosjax.convert import load_stm_training
        from vosjax.training.optim import make_optimizer
        from vosjax.training.sharding import make_mesh
        from vosjax.training.state import TrainState
        from vosjax.training.step import jit_train_step, stm_loss_fn

        model, variables = load_stm_training(state_dict, arch, precision=precision)
        if dtype != "float32":
            model = model.clone(dtype=jnp.bfloat16)
        tx = make_optimizer(LEARNING_RATE, weight_decay=WEIGHT_DECAY)
        self.mesh = make_mesh(devices=jax.devices()[:1])

        def make_state(v):
            return TrainState(step=jnp.zeros((), jnp.int32), params=v["params"],
                              batch_stats=v["batch_stats"], opt_state=tx.init(v["params"]),
                              rng=jax.random.PRNGKey(0))

        abstract = jax.eval_shape(make_state, variables)
        self.step, shardings = jit_train_step(stm_loss_fn(model, cycle=True), tx, self.mesh,
                                              abstract)
        self._make = jax.jit(make_state, out_shardings=shardings)
        self.model, self.variables = model, variables
        self.jax = jax

    def prepare(self, frames, masks, num_objects):
        from vosjax.training.sharding import batch_sharding

        sh = batch_sharding(self.mesh)
        batch = {"frames": frames, "masks": masks, "num_objects": num_objects}
        self.state = self._make(self.variables)
        return {k: self.jax.device_put(v, sh) for k, v in batch.items()}

    def cost(self, batch) -> dict:
        """XLA's cost analysis of the compiled step (``flops``, ``bytes accessed``)."""
        analysis = self.step.lower(self.state, batch).compile().cost_analysis()
        if isinstance(analysis, (list, tuple)):
            analysis = analysis[0]
        return {"flops": float(analysis.get("flops", 0.0)),
                "bytes_accessed": float(analysis.get("bytes accessed", 0.0))}

    def update(self, batch):
        self.state, metrics = self.step(self.state, batch)
        return float(metrics["loss"])      # waits for the update (as the official .item())


def count_then_clip(stream, g: int):
    """Clip ``g`` of a clip stream (:class:`vosjax.data.sampler.ClipSampler`) as a bucketed
    planner meets it: its object count from the reference annotation, then the clip itself.
    Returns ``(clip, count_s, clip_s)`` (the count is checked against the clip)."""
    t = time.perf_counter()
    n = stream.num_objects(g)
    count_s = time.perf_counter() - t
    t = time.perf_counter()
    clip = stream.clip(g)
    clip_s = time.perf_counter() - t
    if clip.num_objects != n:
        raise AssertionError(f"clip {g}: num_objects {n} before decoding, "
                             f"{clip.num_objects} after")
    return clip, count_s, clip_s


def davis_timing_split(root) -> tuple[str, str]:
    """``(year, split)`` of a DAVIS folder to time the input pipeline on: its latest year,
    ``train`` if listed, else ``val`` (any split will do for timing)."""
    from vosjax.data.davis import davis_splits

    year = sorted(os.listdir(os.path.join(root, "ImageSets")))[-1]
    return year, ("train" if "train" in davis_splits(root, year) else "val")
