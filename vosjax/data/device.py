"""The training clips' last steps, on the device inside the jitted train step (pure JAX).

The input workers send what they decode and warp as it is: ``frames`` uint8
``[B, T, H, W, 3]`` and ``labels`` uint8 ``[B, T, H, W]`` (ids ``0..n``, :data:`VOID` outside
the warped source frame), about 4 bytes a pixel instead of the 12 + 4 (n + 1) of float32
normalised frames and one-hot masks. The step then makes, from its own random key:

* :func:`photometric`: per-frame contrast around the frame's mean and additive Gaussian noise
  (:class:`~vosjax.data.augment.AugmentConfig` ``contrast`` and ``noise_std``);
* :func:`clip_frames`: the ImageNet normalisation, 0 (the mean colour) on :data:`VOID` pixels;
* :func:`one_hot`: float32 ``[B, T, n + 1, H, W]`` masks (channel 0 = background, which
  :data:`VOID` pixels join).

The key is split from the train state's key (:func:`vosjax.training.step.train_step`), so a
resumed run draws exactly the noise an uninterrupted one would. Every draw has the shape of
the *global* batch, so the values do not depend on the number of devices or hosts
(``jax_threefry_partitionable``, the default, generates each shard where it lives).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from vosjax.data.augment import VOID
from vosjax.data.transforms import IMAGENET_MEAN, IMAGENET_STD


def photometric(rng, frames01, contrast: tuple[float, float], noise_std: float):
    """Contrast and noise on float32 ``[B, T, H, W, 3]`` in 0..1, clipped to 0..1.

    Per frame: a contrast factor ``c ~ U(contrast)`` around the frame's mean (over its pixels
    and channels) and additive noise ``std * N(0, 1)`` per pixel and channel with
    ``std ~ U(0, noise_std)``.
    """
    k_c, k_s, k_n = jax.random.split(rng, 3)
    per_frame = frames01.shape[:2] + (1, 1, 1)
    lo, hi = float(contrast[0]), float(contrast[1])
    c = jax.random.uniform(k_c, per_frame, jnp.float32, lo, hi)
    std = jax.random.uniform(k_s, per_frame, jnp.float32, 0.0, float(noise_std))
    mean = jnp.mean(frames01, axis=(2, 3, 4), keepdims=True)
    x = frames01 * c + (1 - c) * mean
    if noise_std > 0:
        x = x + std * jax.random.normal(k_n, frames01.shape, jnp.float32)
    return jnp.clip(x, 0.0, 1.0)


def clip_frames(rng, frames, labels, contrast: tuple[float, float] | None = None,
                noise_std: float = 0.0):
    """uint8 ``frames`` ``[B, T, H, W, 3]`` -> float32 normalised ``(x / 255 - mean) / std``,
    with :func:`photometric` first when ``contrast`` is given, and 0 where ``labels`` is
    :data:`VOID`."""
    x = frames.astype(jnp.float32) * jnp.float32(1 / 255)
    if contrast is not None:
        x = photometric(rng, x, contrast, noise_std)
    x = (x - jnp.asarray(IMAGENET_MEAN)) * jnp.asarray(1 / IMAGENET_STD)
    return jnp.where((labels == VOID)[..., None], 0.0, x)


def one_hot(labels, num_slots: int):
    """uint8 ``[B, T, H, W]`` ids -> float32 ``[B, T, num_slots + 1, H, W]`` (channel 0 =
    background; :data:`VOID` is background). The host checked that no id exceeds
    ``num_slots`` (:func:`vosjax.data.sampler.collate`)."""
    ids = jnp.where(labels == VOID, 0, labels).astype(jnp.int32)
    return jax.nn.one_hot(ids, num_slots + 1, axis=2, dtype=jnp.float32)


def augment_args(augment) -> dict:
    """``contrast`` / ``noise_std`` for :func:`clip_frames` from an
    :class:`~vosjax.data.augment.AugmentConfig` (None: no photometric augmentation)."""
    if augment is None:
        return {}
    return {"contrast": tuple(float(v) for v in augment.contrast),
            "noise_std": float(augment.noise_std)}


def clip_batch_fn(augment=None):
    """``prepare(raw, rng, num_slots) -> {"frames", "masks", "num_objects"}``: the STM batch
    (:func:`vosjax.training.step.clip_batch_loss`) from a raw clip batch."""
    kw = augment_args(augment)

    def prepare(raw, rng, num_slots: int):
        return {"frames": clip_frames(rng, raw["frames"], raw["labels"], **kw),
                "masks": one_hot(raw["labels"], num_slots),
                "num_objects": raw["num_objects"]}
    return prepare

