"""Raw-video wrapper around the models' propagation loops.

uint8 frames at their original size and label maps (any object ids, objects may start at later
frames) in; label maps at the original size out. Resizing is the data pipeline's
(:mod:`vosjax.data.transforms`): keep-aspect resize + pad to the working size (240x427), and
back with nearest (the paper) or bilinear-probability upsampling. Both run on the device, one
compiled program each per original and working size (:mod:`vosjax.inference.resize`: the
numpy transform's numbers; the many-video path of :mod:`vosjax.inference.batch` runs the same
functions inside its step).

The options pick the loop: :class:`~vosjax.inference.options.STMOptions` (both STM families)
-> :func:`vosjax.inference.propagation.propagate`, :class:`~vosjax.inference.options.GCSegOptions`
-> :func:`vosjax.inference.gcseg.segment_video` (objects given in frame 0 only).

The original STM (``STMOriginal.memorizes_content_only``) memorizes each mask zeroed outside
the image content, as its official loop does (it crops every prediction and ``memorize`` pads
it with zeros): the propagation gets the content box of the padded canvas. STM-Training's loop
memorizes the prediction over the whole letterboxed canvas; ``STM`` keeps that.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple

import jax
import numpy as np

from vosjax.data.transforms import PadInfo, content_mask, fit_info, resize_pad_labels
from vosjax.inference.options import GCSegOptions, STMOptions
from vosjax.inference.resize import fit_frames, labels_at_original_size

IGNORE_LABEL = 255


class VideoResult(NamedTuple):
    """``labels`` ``[T, H, W]`` uint8 with the caller's object ids, original size;
    ``probs`` ``[T, N + 1, h, w]`` at the working size (host array; channel i <-> ``ids[i-1]``);
    ``ids`` the object ids in channel order; ``pad`` how frames were fitted."""
    labels: np.ndarray
    probs: np.ndarray
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


def _stm_probs(model, variables, frames, masks, starts, options: STMOptions, memory_masks,
               content):
    """:func:`~vosjax.inference.propagation.propagate` -> probs ``[T, K, h, w]``. The original
    STM's loop (``model.memorizes_content_only``) zeroes memorized masks outside ``content``;
    STM-Training's loop memorizes the whole (letterboxed) canvas."""
    from vosjax.inference.propagation import propagate

    return propagate(model, variables, frames, masks,
                     num_slots=len(starts) if options.num_slots is None else options.num_slots,
                     mem_every=options.mem_every, correction=options.correction,
                     reference=options.reference, memory_slots=options.memory_slots,
                     start_frames=starts, memory_masks=memory_masks,
                     content=content if memorizes_content_only(model) else None).probs


def _gcseg_probs(model, variables, frames, masks, starts, options: GCSegOptions, memory_masks):
    """GCSeg: :func:`vosjax.inference.gcseg.segment_video` -> probs ``[T, O + 1, h, w]``."""
    from vosjax.inference.gcseg import segment_video as gcseg_segment

    if memory_masks is not None:
        raise ValueError("memory_labels (replaced memory masks) is an STM feature")
    if np.any(starts != 0):
        raise ValueError(f"GCSeg segments the objects given in frame 0; objects starting at "
                         f"frames {sorted(set(starts.tolist()) - {0})} are not supported")
    frames = np.stack(jax.device_get(list(frames)))
    return gcseg_segment(model, variables, frames, masks, num_fragments=options.num_fragments,
                         seed=options.seed, adaptive_search=options.adaptive_search)


def memorizes_content_only(model) -> bool:
    """Whether the model's official loop zeroes memorized masks outside the image content
    (the original STM: its ``memorizes_content_only`` class attribute)."""
    return bool(getattr(type(model), "memorizes_content_only", False))


def check_options(model, options) -> None:
    """``options`` must be the model family's: :class:`GCSegOptions` for a GCSeg model,
    :class:`STMOptions` for the STM families."""
    from vosjax.models.gcseg import GCSeg

    want = GCSegOptions if isinstance(model, GCSeg) else STMOptions
    if not isinstance(options, want):
        raise TypeError(f"a {type(model).__name__} model segments with {want.__name__}, got "
                        f"{type(options).__name__}")


_fit_frame = jax.jit(fit_frames, static_argnames=("info", "size", "pad"))
_frame_labels = jax.jit(labels_at_original_size, static_argnames=("info", "mode"))


def segment_video(model, variables, frames, annotations: Mapping[int, np.ndarray],
                  options: STMOptions | GCSegOptions | None = None, *,
                  memory_labels=None) -> VideoResult:
    """Segment a raw video with an STM or a GCSeg model.

    Args:
      frames: uint8 ``[T, H, W, 3]`` RGB at the original size.
      annotations: ``{frame index: label map [H, W]}``; frame 0 normally, plus later frames
        where new objects appear (YouTube-VOS, STM only). Ids need not be contiguous.
      options: the model family's :class:`~vosjax.inference.options.STMOptions` (default) or
        :class:`~vosjax.inference.options.GCSegOptions`: working size, padding, upsampling
        and the family's propagation settings.
      memory_labels: optional ``[T, H, W]`` label maps (the caller's ids, original size)
        memorized on memory frames instead of the predictions (STM; Table 5's low-quality
        references, ``memory_masks`` of :func:`~vosjax.inference.propagation.propagate`).
    """
    options = STMOptions() if options is None else options
    check_options(model, options)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    ids, starts, masks = objects_from_annotations(annotations, frames.shape[0])
    if masks.shape[1:] != frames.shape[1:3]:
        raise ValueError(f"annotations are {masks.shape[1:]} but frames {frames.shape[1:3]}")
    size, pad = options.size, options.pad
    info = fit_info(frames.shape[1:3], size)
    x = [_fit_frame(f, info=info, size=size, pad=pad) for f in frames]   # device arrays
    small, _ = resize_pad_labels(masks.astype(np.uint8), size)
    memory_masks = None
    if memory_labels is not None:
        memory_labels = np.asarray(memory_labels)
        if memory_labels.shape != frames.shape[:3]:
            raise ValueError(f"memory_labels must be [T, H, W] = {frames.shape[:3]}, got "
                             f"shape {memory_labels.shape}")
        per_object = np.stack([memory_labels == i for i in ids], axis=1).astype(np.uint8)
        memory_masks = resize_pad_labels(per_object, size)[0].astype(np.float32)
    if isinstance(options, GCSegOptions):
        probs = _gcseg_probs(model, variables, x, small.astype(np.float32), starts, options,
                             memory_masks)
    else:
        probs = _stm_probs(model, variables, x, small.astype(np.float32), starts, options,
                           memory_masks, content_mask(info, size))
    probs = np.asarray(probs)
    channels = np.stack(jax.device_get([_frame_labels(p, info=info, mode=options.upsample)
                                        for p in probs]))
    k = probs.shape[1]
    lut = np.array((0,) + ids + (0,) * (k - 1 - len(ids)),
                   np.uint8 if max(ids) <= 255 else np.int32)
    return VideoResult(labels=lut[channels], probs=probs, ids=ids, pad=info)
