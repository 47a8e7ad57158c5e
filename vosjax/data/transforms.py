"""Frame normalisation and the keep-aspect resize + pad to the working size (host side, numpy).

The paper trains and tests at 240x427 (DAVIS 480p halved). Frames of any size are resized to
fit inside the working size keeping their aspect ratio, then padded (centred) to exactly the
working size; predictions are cropped and resized back to the original size.

Padding choice: by default we pad the *normalised* frame with 0, i.e. with the dataset mean
colour. The official code letterboxes the uint8 frame with 0 (black) *before* normalising, so its
padding becomes ``-mean/std``. Mean-colour padding carries no spurious dark border into the
features; at 480p -> 240x427 there is no padding at all, so both agree on DAVIS. ``pad="black"``
reproduces the official letterbox (the original STM pads 480p frames to a multiple of 16).

Label maps are always resized with NEAREST. (The official pipeline resizes masks bilinearly and
truncates to uint8 by accident; we do not reproduce that.)

Conventions: sizes are ``(height, width)``; interpolation uses half-pixel centres
(``align_corners=False``, as cv2 ``INTER_LINEAR`` / ``torch`` ``interpolate``).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
#: The paper's working size (height, width).
WORK_SIZE = (240, 427)


class PadInfo(NamedTuple):
    """How a frame was fitted into the working size.

    orig_hw: original (H, W); resized_hw: (h, w) after the keep-aspect resize;
    offsets: (top, left) of the resized content inside the padded working-size canvas.
    """
    orig_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    offsets: tuple[int, int]


def normalize(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB ``[..., H, W, 3]`` -> float32 ``(x / 255 - mean) / std`` (ImageNet statistics),
    exactly the official normalisation."""
    frames = np.asarray(frames)
    if frames.shape[-1:] != (3,):
        raise ValueError(f"frames must end in 3 RGB channels, got shape {frames.shape}")
    return (frames.astype(np.float32) / np.float32(255) - IMAGENET_MEAN) / IMAGENET_STD


def denormalize(frames: np.ndarray) -> np.ndarray:
    """Inverse of :func:`normalize`: float32 ``[..., 3]`` -> uint8 (rounded, clipped)."""
    x = (np.asarray(frames, np.float32) * IMAGENET_STD + IMAGENET_MEAN) * 255
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def fit_size(orig_hw: tuple[int, int], target_hw: tuple[int, int] = WORK_SIZE):
    """Keep-aspect size that fits inside ``target_hw`` plus the padding to reach it exactly.

    Returns ``(new_h, new_w, pad)`` with ``pad = ((top, bottom), (left, right))`` (np.pad
    order); the content is centred (``top = (target_h - new_h) // 2``).
    """
    h, w = (int(v) for v in orig_hw)
    th, tw = (int(v) for v in target_hw)
    if min(h, w, th, tw) <= 0:
        raise ValueError(f"sizes must be positive, got orig_hw={orig_hw}, target_hw={target_hw}")
    scale = min(th / h, tw / w)
    new_h = min(th, max(1, int(round(h * scale))))
    new_w = min(tw, max(1, int(round(w * scale))))
    top, left = (th - new_h) // 2, (tw - new_w) // 2
    return new_h, new_w, ((top, th - new_h - top), (left, tw - new_w - left))


def _axis_weights(n_in: int, n_out: int):
    """Half-pixel linear interpolation along one axis: indices i0, i1 and weight of i1."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0, n_in - 1)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0).astype(np.float32)


def resize_bilinear(x: np.ndarray, out_hw: tuple[int, int], axes: tuple[int, int] = (-2, -1)):
    """Bilinear resize (half-pixel centres, no antialias) of float array ``x`` along ``axes``
    (the H and W axes), vectorised over all other axes. Returns float32."""
    x = np.asarray(x, np.float32)
    for axis, n_out in zip(axes, out_hw):
        n_in = x.shape[axis]
        if n_in == n_out:
            continue
        i0, i1, wt = _axis_weights(n_in, int(n_out))
        shape = [1] * x.ndim
        shape[axis] = n_out
        wt = wt.reshape(shape)
        x = np.take(x, i0, axis=axis) * (1 - wt) + np.take(x, i1, axis=axis) * wt
    return x


def resize_nearest(x: np.ndarray, out_hw: tuple[int, int], axes: tuple[int, int] = (-2, -1)):
    """Nearest-neighbour resize (pixel-centre sampling) of any-dtype ``x`` along ``axes``."""
    x = np.asarray(x)
    for axis, n_out in zip(axes, out_hw):
        n_in = x.shape[axis]
        if n_in == n_out:
            continue
        idx = np.minimum(((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(np.int64), n_in - 1)
        x = np.take(x, idx, axis=axis)
    return x


def _pad_info(orig_hw, size) -> tuple[PadInfo, tuple]:
    new_h, new_w, pad = fit_size(orig_hw, size)
    info = PadInfo((int(orig_hw[0]), int(orig_hw[1])), (new_h, new_w), (pad[0][0], pad[1][0]))
    return info, pad


def fit_info(orig_hw: tuple[int, int], size: tuple[int, int] = WORK_SIZE) -> PadInfo:
    """The :class:`PadInfo` of fitting frames of ``orig_hw`` into ``size`` (what
    :func:`resize_pad_frames` returns with the frames)."""
    return _pad_info(orig_hw, size)[0]


PADS = ("mean", "black")


def resize_pad_frames(frames: np.ndarray, size: tuple[int, int] = WORK_SIZE,
                      pad: str = "mean"):
    """uint8 ``[T, H, W, 3]`` -> (float32 normalised ``[T, h, w, 3]`` at ``size``, PadInfo).

    Bilinear keep-aspect resize, then normalisation, then padding with the mean colour
    (``pad="mean"``: normalised 0) or with black (``pad="black"``: uint8 0, as the official
    codes letterbox before normalising).
    """
    if pad not in PADS:
        raise ValueError(f"pad must be one of {PADS}, got {pad!r}")
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [T, H, W, 3], got shape {frames.shape}")
    info, widths = _pad_info(frames.shape[1:3], size)
    if info.resized_hw == info.orig_hw:
        x = normalize(frames)
    else:
        x = resize_bilinear(frames.astype(np.float32) / np.float32(255), info.resized_hw,
                            axes=(1, 2))
        x = (x - IMAGENET_MEAN) / IMAGENET_STD
    fill = -IMAGENET_MEAN / IMAGENET_STD if pad == "black" else np.zeros(3, np.float32)
    widths = ((0, 0), widths[0], widths[1], (0, 0))
    return np.pad(x - fill, widths) + fill, info


def resize_pad_labels(labels: np.ndarray, size: tuple[int, int] = WORK_SIZE):
    """Label maps ``[..., H, W]`` (any integer dtype) -> (``[..., h, w]`` at ``size``, PadInfo)
    with NEAREST resizing and 0 (background) padding."""
    labels = np.asarray(labels)
    if labels.ndim < 2:
        raise ValueError(f"labels must be [..., H, W], got shape {labels.shape}")
    info, pad = _pad_info(labels.shape[-2:], size)
    x = resize_nearest(labels, info.resized_hw)
    return np.pad(x, [(0, 0)] * (labels.ndim - 2) + [pad[0], pad[1]]), info


def content_mask(info: PadInfo, size: tuple[int, int]) -> np.ndarray:
    """float32 ``[h, w]`` map of the working-size canvas ``size``: 1 on the resized content
    (``info``'s box), 0 on the padding."""
    (top, left), (h, w) = info.offsets, info.resized_hw
    out = np.zeros(tuple(int(s) for s in size), np.float32)
    out[top:top + h, left:left + w] = 1.0
    return out


def _crop(x: np.ndarray, info: PadInfo) -> np.ndarray:
    (top, left), (h, w) = info.offsets, info.resized_hw
    return x[..., top:top + h, left:left + w]


def unpad_resize_labels(labels: np.ndarray, info: PadInfo) -> np.ndarray:
    """Working-size label maps ``[..., h, w]`` -> ``[..., H, W]`` at the original size (crop the
    padding, NEAREST upsample)."""
    return resize_nearest(_crop(np.asarray(labels), info), info.orig_hw)


def unpad_resize_probs(probs: np.ndarray, info: PadInfo, mode: str = "nearest") -> np.ndarray:
    """Working-size probabilities ``[..., K, h, w]`` (channel 0 = background) -> uint8 label
    map ``[..., H, W]`` at the original size.

    mode "nearest" (the paper): argmax at the working size, then nearest upsampling.
    mode "bilinear": bilinear upsampling of the probabilities, then argmax (smoother edges).
    """
    probs = _crop(np.asarray(probs), info)
    if mode == "nearest":
        return unpad_resize_labels(np.argmax(probs, axis=-3).astype(np.uint8),
                                   info._replace(offsets=(0, 0)))
    if mode == "bilinear":
        up = resize_bilinear(probs, info.orig_hw)
        return np.argmax(up, axis=-3).astype(np.uint8)
    raise ValueError(f"mode must be 'nearest' or 'bilinear', got {mode!r}")
