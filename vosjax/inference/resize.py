"""The working-size fit of :mod:`vosjax.data.transforms` as jax functions, for the compiled
inference programs.

:func:`fit_frames` (uint8 frames -> normalised frames at the working size) and
:func:`labels_at_original_size` (working-size probabilities -> uint8 ids at the original size)
compute what :func:`~vosjax.data.transforms.resize_pad_frames` and
:func:`~vosjax.data.transforms.unpad_resize_probs` compute with numpy: the same float32
operations in the same order, the same interpolation indices and weights (computed on the host
when tracing, so they are constants of the program). Results are bit-identical to numpy's
when no interpolation is needed (frames already at their fitted size, ``"nearest"`` ids) or
its weights are exact (DAVIS 480p halved to 240x427); other bilinear resizes differ from numpy
in the last bits (up to 1e-6 here on normalised frames), because XLA fuses
``a * w0 + b * w1`` into a multiply-add with one rounding (``tests/test_inference_resize.py``),
which can flip a ``"bilinear"`` argmax at an exact tie. Every inference path fits frames and
takes ids with these functions, so the paths agree with each other.

Both take the :class:`~vosjax.data.transforms.PadInfo` as a static argument: one program per
original size and working size. They work on any leading axes (frames ``[..., H, W, 3]``,
probabilities ``[..., K, h, w]``), so they vmap and shard like any array function.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from vosjax.data.transforms import IMAGENET_MEAN, IMAGENET_STD, PADS, PadInfo, _axis_weights

# XLA rewrites a division by a constant or a broadcast into a multiplication by the reciprocal
# (not the same float32 rounding as numpy's division). uint8 / 255 and the normalisation of
# unresized frames are exact tables; the normalisation of resized frames divides by a full-size
# array that XLA cannot see through.
_UNIT = np.arange(256, dtype=np.float32) / np.float32(255)
_NORMALIZED = (_UNIT[:, None] - IMAGENET_MEAN) / IMAGENET_STD     # [256, 3]


def _exact_divisor(values, shape):
    return jax.lax.optimization_barrier(jnp.broadcast_to(jnp.asarray(values), shape))


def _resize_axis(x, axis: int, n_out: int):
    """Bilinear resize of float32 ``x`` along ``axis`` (half-pixel centres), as
    :func:`~vosjax.data.transforms.resize_bilinear` does for one axis."""
    n_in = x.shape[axis]
    if n_in == n_out:
        return x
    i0, i1, wt = _axis_weights(n_in, n_out)
    shape = [1] * x.ndim
    shape[axis] = n_out
    wt = wt.reshape(shape)
    return (jnp.take(x, i0, axis=axis) * (np.float32(1) - wt)
            + jnp.take(x, i1, axis=axis) * wt)


def _nearest_axis(x, axis: int, n_out: int):
    n_in = x.shape[axis]
    if n_in == n_out:
        return x
    idx = np.minimum(((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(np.int64), n_in - 1)
    return jnp.take(x, idx, axis=axis)


def resize_bilinear(x, out_hw, axes=(-2, -1)):
    """jax twin of :func:`vosjax.data.transforms.resize_bilinear` (float32 out)."""
    x = jnp.asarray(x, jnp.float32)
    for axis, n_out in zip(axes, out_hw):
        x = _resize_axis(x, axis % x.ndim, int(n_out))
    return x


def resize_nearest(x, out_hw, axes=(-2, -1)):
    """jax twin of :func:`vosjax.data.transforms.resize_nearest` (any dtype)."""
    for axis, n_out in zip(axes, out_hw):
        x = _nearest_axis(x, axis % x.ndim, int(n_out))
    return x


def fit_frames(frames, info: PadInfo, size: tuple[int, int], pad: str = "mean"):
    """uint8 ``[..., H, W, 3]`` at ``info.orig_hw`` -> float32 normalised ``[..., h, w, 3]`` at
    ``size``: bilinear keep-aspect resize to ``info.resized_hw``, normalisation, padding with
    the mean colour (``"mean"``) or black (``"black"``), exactly as
    :func:`~vosjax.data.transforms.resize_pad_frames`."""
    if pad not in PADS:
        raise ValueError(f"pad must be one of {PADS}, got {pad!r}")
    frames = jnp.asarray(frames)
    if frames.shape[-3:-1] != tuple(info.orig_hw) or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [..., {info.orig_hw[0]}, {info.orig_hw[1]}, 3], got "
                         f"shape {frames.shape}")
    if tuple(info.resized_hw) != tuple(info.orig_hw):
        x = jnp.take(_UNIT, frames.astype(jnp.int32))          # uint8 / 255, exactly
        x = resize_bilinear(x, info.resized_hw, axes=(-3, -2))
        x = (x - IMAGENET_MEAN) / _exact_divisor(IMAGENET_STD, x.shape)
    else:                                                      # one table per channel
        x = jnp.take_along_axis(_NORMALIZED, frames.astype(jnp.int32).reshape(-1, 3), axis=0,
                                mode="clip").reshape(frames.shape)
    fill = -IMAGENET_MEAN / IMAGENET_STD if pad == "black" else np.zeros(3, np.float32)
    (top, left), (h, w) = info.offsets, info.resized_hw
    widths = [(0, 0)] * (x.ndim - 3) + [(top, size[0] - h - top), (left, size[1] - w - left),
                                        (0, 0)]
    return jnp.pad(x - fill, widths) + fill


def labels_at_original_size(probs, info: PadInfo, mode: str = "nearest"):
    """Working-size probabilities ``[..., K, h, w]`` -> uint8 channel ids ``[..., H, W]`` at
    ``info.orig_hw``, exactly as :func:`~vosjax.data.transforms.unpad_resize_probs`:
    ``"nearest"`` takes the argmax at the working size and upsamples it with nearest,
    ``"bilinear"`` upsamples the probabilities bilinearly, then takes the argmax."""
    (top, left), (h, w) = info.offsets, info.resized_hw
    probs = jnp.asarray(probs)[..., top:top + h, left:left + w]
    if mode == "nearest":
        ids = jnp.argmax(probs, axis=-3).astype(jnp.uint8)
        return resize_nearest(ids, info.orig_hw)
    if mode == "bilinear":
        up = resize_bilinear(probs, info.orig_hw)
        return jnp.argmax(up, axis=-3).astype(jnp.uint8)
    raise ValueError(f"mode must be 'nearest' or 'bilinear', got {mode!r}")
