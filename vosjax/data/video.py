"""The common video container every reader returns, and writing predictions back out.

A :class:`Video` keeps its frames and ground-truth label maps as *sources*, each an in-memory
array, a file path or encoded bytes, and decodes only what is asked for (the clip sampler
decodes 3 frames of a 100-frame video). Object ids are remapped: the annotation's original ids
(e.g. YouTube-VOS ``1, 3, 4``) become ``1..N`` in everything the container returns, and
:meth:`Video.to_original_ids` / :func:`write_predictions` map them back.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vosjax import atomic
from vosjax.data import images, masks


def source_name(src: Any, fallback: str) -> str:
    """A file path source names itself; arrays/bytes use ``fallback`` (e.g. 'video/frame')."""
    return os.fspath(src) if isinstance(src, (str, os.PathLike)) else fallback


@dataclasses.dataclass(frozen=True, eq=False)
class Video:
    """One video with (possibly sparse) ground truth.

    Attributes:
      name: video name (output sub-folder).
      frame_names: ``T`` frame stems (output PNG names), e.g. ``"00000"``.
      frame_sources: ``T`` frames, each ``uint8 [H, W, 3]`` array, file path or encoded bytes.
      label_sources: ``{frame index: source}`` of annotation maps holding *original* ids
        (array ``[H, W]``, PNG path or PNG bytes). Dense for DAVIS train/val, sparse for
        YouTube-VOS, only the first-mask frames for a user's video.
      object_ids: original id of object ``k + 1`` (``N`` entries, sorted).
      object_first: index of the frame where object ``k + 1`` is first annotated.
      hw: ``(H, W)`` of every frame and annotation.
      binary: decode annotations as single-object masks (DAVIS-2016: any non-zero pixel is the
        object); None decides per file (see :func:`masks.decode_label_png`).
    """
    name: str
    frame_names: tuple[str, ...]
    frame_sources: Sequence[Any]
    label_sources: Mapping[int, Any]
    object_ids: tuple[int, ...]
    object_first: tuple[int, ...]
    hw: tuple[int, int]
    binary: bool | None = None

    def __post_init__(self):
        if len(self.frame_names) != len(self.frame_sources):
            raise ValueError(f"{self.name}: {len(self.frame_names)} frame names for "
                             f"{len(self.frame_sources)} frames")
        if len(self.object_ids) != len(self.object_first):
            raise ValueError(f"{self.name}: object_ids and object_first differ in length")
        if any(not 0 < i < 256 for i in self.object_ids):
            raise ValueError(f"{self.name}: object ids must be in 1..255, got {self.object_ids}")
        lut = np.zeros(256, np.uint8)
        lut[list(self.object_ids)] = np.arange(1, len(self.object_ids) + 1)
        object.__setattr__(self, "_lut", lut)
        object.__setattr__(self, "_inv", np.array((0,) + tuple(self.object_ids), np.uint8))

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return len(self.frame_sources)

    @property
    def num_objects(self) -> int:
        return len(self.object_ids)

    @property
    def annotated_frames(self) -> tuple[int, ...]:
        """Sorted indices of the frames that have ground truth."""
        return tuple(sorted(self.label_sources))

    # -- decoding ------------------------------------------------------------------------------
    def _frame_name(self, t: int) -> str:
        return source_name(self.frame_sources[t], f"{self.name}/frame {self.frame_names[t]}")

    def _label_name(self, t: int) -> str:
        return source_name(self.label_sources[t],
                           f"{self.name}/annotation {self.frame_names[t]}")

    def load_frames(self, indices: Sequence[int] | None = None) -> np.ndarray:
        """Decode frames -> ``uint8 [n, H, W, 3]`` (all frames when ``indices`` is None)."""
        indices = range(self.num_frames) if indices is None else indices
        out = np.empty((len(indices), *self.hw, 3), np.uint8)
        for j, t in enumerate(indices):
            src = self.frame_sources[t]
            if isinstance(src, np.ndarray):
                arr = src
            else:
                arr = images.decode_rgb(src, self._frame_name(t))
            if arr.shape != (*self.hw, 3):
                raise ValueError(f"{self._frame_name(t)}: frame shape {arr.shape} differs from "
                                 f"the video's {(*self.hw, 3)}")
            out[j] = arr
        return out

    def load_frame_images(self, indices: Sequence[int]) -> list:
        """Decode frames -> RGB ``PIL.Image`` s (what :meth:`load_frames` holds as arrays),
        without the copies into numpy: for consumers that continue in PIL (the training
        clips' warps)."""
        from PIL import Image

        out = []
        for t in indices:
            src = self.frame_sources[t]
            im = (Image.fromarray(np.ascontiguousarray(src, dtype=np.uint8))
                  if isinstance(src, np.ndarray) else images.open_rgb(src, self._frame_name(t)))
            if (im.height, im.width) != self.hw or im.mode != "RGB":
                raise ValueError(f"{self._frame_name(t)}: frame {im.mode} {im.height}x"
                                 f"{im.width} differs from the video's RGB {self.hw}")
            out.append(im)
        return out

    def load_labels(self, indices: Sequence[int] | None = None) -> np.ndarray:
        """Decode ground truth -> ``uint8 [n, H, W]`` with ids ``0..N`` (all annotated frames
        when ``indices`` is None). A frame without ground truth raises ValueError."""
        indices = self.annotated_frames if indices is None else indices
        out = np.empty((len(indices), *self.hw), np.uint8)
        for j, t in enumerate(indices):
            if t not in self.label_sources:
                raise ValueError(f"{self.name}: frame {t} ({self.frame_names[t]}) has no "
                                 "ground-truth annotation")
            src = self.label_sources[t]
            if isinstance(src, np.ndarray):
                arr = src.astype(np.uint8) if self.binary is None else (src > 0).astype(np.uint8)
            else:
                arr = masks.decode_label_png(src, binary=self.binary, name=self._label_name(t))
            if arr.shape != self.hw:
                raise ValueError(f"{self._label_name(t)}: annotation size {arr.shape} differs "
                                 f"from the frame size {self.hw}")
            out[j] = masks.apply_lut(self._lut, arr)
        return out

    @property
    def labels(self) -> np.ndarray | None:
        """Dense ground truth ``uint8 [T, H, W]`` (ids 0..N), or None when some frame lacks it."""
        if len(self.label_sources) != self.num_frames:
            return None
        return self.load_labels(range(self.num_frames))

    @property
    def first_masks(self) -> dict[int, np.ndarray]:
        """``{frame index: uint8 [H, W]}`` holding, per frame, only the objects first annotated
        there (ids 1..N). Raises ValueError naming the file if such an object has no pixel."""
        out = {}
        first = np.asarray(self.object_first)
        for t in sorted(set(self.object_first)):
            lab = self.load_labels([t])[0]
            new = np.flatnonzero(first == t) + 1
            keep = np.zeros(self.num_objects + 1, bool)
            keep[new] = True
            m = np.where(keep[lab], lab, 0).astype(np.uint8)
            present = np.bincount(m.reshape(-1), minlength=self.num_objects + 1)[new] > 0
            if not present.all():
                missing = [int(self.object_ids[k - 1]) for k in new[~present]]
                raise ValueError(f"{self._label_name(t)}: empty first mask for object id(s) "
                                 f"{missing}")
            out[t] = m
        return out

    def to_original_ids(self, labels: np.ndarray) -> np.ndarray:
        """Map ids ``0..N`` back to the annotation's original ids (vectorised lookup)."""
        labels = np.asarray(labels)
        if labels.size and labels.max() > self.num_objects:
            raise ValueError(f"{self.name}: label id {int(labels.max())} > {self.num_objects} "
                             "objects")
        return self._inv[labels]

    def from_original_ids(self, labels: np.ndarray) -> np.ndarray:
        """Map original ids to ``0..N`` (the inverse of :meth:`to_original_ids`; ids that are
        not this video's objects become 0), e.g. for predictions read back from PNGs."""
        return np.take(self._lut, np.asarray(labels, np.uint8))

    def validate(self) -> None:
        """Check every frame/annotation file exists, is readable and has size ``hw``, reading
        image headers only."""
        for t, src in enumerate(self.frame_sources):
            self._check_size(src, self._frame_name(t), "frame")
        for t, src in self.label_sources.items():
            self._check_size(src, self._label_name(t), "annotation")

    def _check_size(self, src, name: str, what: str) -> None:
        hw = src.shape[:2] if isinstance(src, np.ndarray) else images.image_size(src, name)
        if tuple(hw) != self.hw:
            raise ValueError(f"{name}: {what} size {tuple(hw)} differs from the frame size "
                             f"{self.hw}")

    def with_objects_limit(self, max_objects: int | None) -> Video:
        """Raise ValueError naming the first annotation if there are more than ``max_objects``
        objects (the model's slots); returns ``self``."""
        if max_objects is not None and self.num_objects > max_objects:
            t = min(self.object_first)
            raise ValueError(f"{self._label_name(t)}: {self.num_objects} objects exceed the "
                             f"configured {max_objects} object slots")
        return self


def objects_in(labels: np.ndarray, binary: bool | None = None) -> tuple[int, ...]:
    """Sorted non-zero ids present in an id map (after the binary merge when asked)."""
    labels = np.asarray(labels)
    if binary:
        return (1,) if labels.any() else ()
    present = np.bincount(labels.reshape(-1).astype(np.int64), minlength=256)
    return tuple(int(i) for i in np.flatnonzero(present[1:]) + 1)


def video_from_arrays(name: str, frames: np.ndarray, labels: np.ndarray | Mapping[int, Any],
                      frame_names: Sequence[str] | None = None,
                      max_objects: int | None = None) -> Video:
    """A :class:`Video` from in-memory ``uint8 [T, H, W, 3]`` frames and label maps, either dense
    ``[T, H, W]`` or ``{frame index: [H, W]}``. Objects are found by scanning all given labels;
    each object's first frame is where it first has pixels."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{name}: frames must be uint8 [T, H, W, 3], got {frames.dtype} "
                         f"{frames.shape}")
    if not isinstance(labels, Mapping):
        labels = {t: lab for t, lab in enumerate(np.asarray(labels))}
    first: dict[int, int] = {}
    for t in sorted(labels):
        for i in objects_in(labels[t]):
            first.setdefault(i, t)
    ids = tuple(sorted(first))
    names = tuple(frame_names) if frame_names is not None else tuple(
        f"{t:05d}" for t in range(len(frames)))
    return Video(name, names, frames, dict(labels), ids, tuple(first[i] for i in ids),
                 tuple(frames.shape[1:3])).with_objects_limit(max_objects)


def write_predictions(out_dir: str | os.PathLike, video: Video, labels: np.ndarray,
                      frames: Sequence[int] | None = None) -> str:
    """Write predicted ids ``uint8 [n, H, W]`` (0..N) as DAVIS-palette PNGs with the original
    object ids to ``out_dir/<video.name>/<frame name>.png``; returns that folder.

    ``frames`` selects the frame indices the ``n`` maps belong to (default: all ``T``). The
    folder is written under a temporary name and renamed, so it is never half-written.
    """
    labels = np.asarray(labels)
    frames = range(video.num_frames) if frames is None else frames
    if labels.ndim != 3 or len(labels) != len(frames):
        raise ValueError(f"{video.name}: expected [{len(frames)}, H, W] labels, got "
                         f"{labels.shape}")
    final = os.path.join(os.fspath(out_dir), video.name)
    with atomic.replacing_dir(final, overwrite=True) as tmp:
        orig = video.to_original_ids(labels)
        for t, lab in zip(frames, orig):
            masks.write_palette_png(os.path.join(tmp, f"{video.frame_names[t]}.png"), lab)
    return final
