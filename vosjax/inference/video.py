"""Raw-video wrapper around :func:`~vosjax.inference.propagation.propagate`.

uint8 frames at their original size and label maps (any object ids, objects may start at later
frames) in; label maps at the original size out. Resizing is the data pipeline's
(:mod:`vosjax.data.transforms`): keep-aspect resize + pad to the working size (240x427), and
back with nearest (the paper) or bilinear-probability upsampling.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple

import jax
import numpy as np

from vosjax.correction import GradientCorrection
from vosjax.data.transforms import (WORK_SIZE, PadInfo, resize_pad_frames, resize_pad_labels,
                                    unpad_resize_probs)
from vosjax.inference.propagation import propagate

IGNORE_LABEL = 255


class VideoResult(NamedTuple):
    """``labels`` ``[T, H, W]`` uint8 with the caller's object ids, original size;
    ``probs`` ``[T, N + 1, h, w]`` at the working size (device array; channel i <-> ``ids[i-1]``);
    ``ids`` the object ids in channel order; ``pad`` how frames were fitted."""
    labels: np.ndarray
    probs: jax.Array
    ids: tuple[int, ...]
    pad: PadInfo


def objects_from_annotations(annotations: Mapping[int, np.ndarray], num_frames: int):
    """Object ids, start frames and first masks from ``{frame: label map [H, W]}``.

    Ids (0 = background and 255 = ignore excluded) are sorted and become objects 1..N; each
    object's start frame is the first annotated frame containing it. Returns
    ``(ids, start_frames [N], masks [N, H, W] float32)`` (each object's mask at its start).
    """
    if not annotations:
        raise ValueError("annotations is empty: give at least the first frame's label map")
    shapes = {np.asarray(a).shape for a in annotations.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"annotations must be [H, W] label maps of one size, got {sorted(shapes)}")
    starts: dict[int, int] = {}
    for f in sorted(annotations):
        if not 0 <= int(f) < num_frames:
            raise ValueError(f"annotation for frame {f} is outside the video's {num_frames} frames")
        for i in np.unique(np.asarray(annotations[f])):
            if i not in (0, IGNORE_LABEL):
                starts.setdefault(int(i), int(f))
    if not starts:
        raise ValueError("the annotations contain no object (only background/ignore labels)")
    ids = tuple(sorted(starts))
    masks = np.stack([np.asarray(annotations[starts[i]]) == i for i in ids]).astype(np.float32)
    return ids, np.array([starts[i] for i in ids], np.int64), masks


def segment_video(model, variables, frames, annotations: Mapping[int, np.ndarray], *,
                  size: tuple[int, int] = WORK_SIZE, upsample: str = "nearest",
                  num_slots: int | None = None, mem_every: int = 5,
                  correction: GradientCorrection | None = None, reference: str = "mem",
                  memory_slots: int | None = None) -> VideoResult:
    """Segment a raw video.

    Args:
      frames: uint8 ``[T, H, W, 3]`` RGB at the original size.
      annotations: ``{frame index: label map [H, W]}``; frame 0 normally, plus later frames
        where new objects appear (YouTube-VOS). Ids need not be contiguous.
      size: working size (h, w); upsample: ``"nearest"`` (argmax, then nearest) or
        ``"bilinear"`` (bilinear probabilities, then argmax).
      The rest as :func:`~vosjax.inference.propagation.propagate`.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    if upsample not in ("nearest", "bilinear"):
        raise ValueError(f"upsample must be 'nearest' or 'bilinear', got {upsample!r}")
    ids, starts, masks = objects_from_annotations(annotations, frames.shape[0])
    if masks.shape[1:] != frames.shape[1:3]:
        raise ValueError(f"annotations are {masks.shape[1:]} but frames {frames.shape[1:3]}")
    x, info = resize_pad_frames(frames, size)
    small, _ = resize_pad_labels(masks.astype(np.uint8), size)
    result = propagate(model, variables, x, small.astype(np.float32),
                       num_slots=len(ids) if num_slots is None else num_slots,
                       mem_every=mem_every, correction=correction, reference=reference,
                       memory_slots=memory_slots, start_frames=starts)
    channels = unpad_resize_probs(np.asarray(result.probs), info, mode=upsample)
    k = result.probs.shape[1]
    lut = np.array((0,) + ids + (0,) * (k - 1 - len(ids)),
                   np.uint8 if max(ids) <= 255 else np.int32)
    return VideoResult(labels=lut[channels], probs=result.probs, ids=ids, pad=info)
