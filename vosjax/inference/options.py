"""Inference options: one frozen dataclass per model family, every setting in one place.

:class:`STMOptions` (the ``stm`` and ``stm_original`` families) and :class:`GCSegOptions`
(``gcseg``) are what :func:`vosjax.inference.video.segment_video` and
:func:`vosjax.evaluation.runner.run_videos` take; the family registry
(:mod:`vosjax.families`) builds one from ``config.eval`` once. Both share how a raw video is
fitted to the working size and mapped back (:class:`VideoFit`). The options are checked when
built, so a wrong value fails before any video is read.
"""
from __future__ import annotations

import dataclasses

from vosjax.correction import GradientCorrection
from vosjax.data.transforms import PADS, WORK_SIZE
from vosjax.inference.propagation import REFERENCES

UPSAMPLES = ("nearest", "bilinear")


@dataclasses.dataclass(frozen=True)
class VideoFit:
    """How frames are fitted to the working size and labels mapped back.

    ``size``: working size (h, w); ``pad``: ``"mean"`` or ``"black"`` letterbox colour
    (:func:`~vosjax.data.transforms.resize_pad_frames`); ``upsample``: ``"nearest"`` (argmax,
    then nearest) or ``"bilinear"`` (bilinear probabilities, then argmax).
    """
    size: tuple[int, int] = WORK_SIZE
    pad: str = "mean"
    upsample: str = "nearest"

    def __post_init__(self):
        size = tuple(int(s) for s in self.size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"size must be (height, width) > 0, got {self.size!r}")
        object.__setattr__(self, "size", size)
        if self.pad not in PADS:
            raise ValueError(f"pad must be one of {PADS}, got {self.pad!r}")
        if self.upsample not in UPSAMPLES:
            raise ValueError(f"upsample must be one of {UPSAMPLES}, got {self.upsample!r}")


@dataclasses.dataclass(frozen=True)
class STMOptions(VideoFit):
    """STM (both families): :func:`~vosjax.inference.propagation.propagate`'s settings.

    ``num_slots``: output channels minus one (None: the video's object count);
    ``mem_every``, ``reference``, ``memory_slots``, ``correction``: as
    :func:`~vosjax.inference.propagation.propagate`; ``videos_per_device``: videos segmented
    together on each device by :func:`vosjax.inference.batch.segment_videos` (one compiled
    step; more use a large device better and need that many times the memory).
    """
    num_slots: int | None = None
    mem_every: int = 5
    reference: str = "mem"
    memory_slots: int | None = None
    correction: GradientCorrection | None = None
    videos_per_device: int = 1

    def __post_init__(self):
        super().__post_init__()
        if self.reference not in REFERENCES:
            raise ValueError(f"reference={self.reference!r}: expected one of {REFERENCES}")
        for name in ("mem_every", "videos_per_device"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        for name in ("num_slots", "memory_slots"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be None or a positive int, got {value!r}")
        if self.correction is not None and not isinstance(self.correction, GradientCorrection):
            raise TypeError(f"correction must be a GradientCorrection or None, got "
                            f"{type(self.correction).__name__}")


@dataclasses.dataclass(frozen=True)
class GCSegOptions(VideoFit):
    """GCSeg: :func:`vosjax.inference.gcseg.segment_video`'s settings.

    ``num_fragments``: ``n`` temporal fragments (``n + 1`` references per frame);
    ``adaptive_search``: the judgement module (Table VI on/off); ``seed``: the reference
    draws' numpy seed.
    """
    num_fragments: int = 3
    adaptive_search: bool = True
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.num_fragments, int) or self.num_fragments < 0:
            raise ValueError(f"num_fragments must be an int >= 0, got {self.num_fragments!r}")
