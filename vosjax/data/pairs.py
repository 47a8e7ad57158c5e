"""Training-sample construction for GCSeg (Sec. III-A.1 and III-B).

* :func:`sample_pairs`: one (reference, target) frame pair per clip, the temporal gap drawn
  from a short / middle / long range (numpy, deterministic from a seed);
* :func:`gather_pair_batch`: the model's training batch from clips and sampled indices;
* :func:`zero_previous_mask`: the random zeroing of ``M_{t-1}`` with p = 0.5 (pure JAX);
* :func:`pair_picker`: the frame choice of the trainer's clip stream
  (:class:`vosjax.data.sampler.ClipSampler`: deterministic per step, resumable, host-split),
  and :func:`gcseg_batch_fn`: the loss's batch from its raw clips, on the device.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

GAP_KINDS = ("short", "middle", "long")


@dataclasses.dataclass(frozen=True)
class GapRanges:
    """Inclusive gap ranges ``n`` (target ``t``, reference ``t - n``) and their probabilities.

    ``long = (lo, None)`` reaches up to the clip length. Defaults: short 1-2 frames, middle
    3-10, long 11+ (the paper names the three kinds but gives no numbers; see docs/gcseg.md).
    """
    short: tuple[int, int] = (1, 2)
    middle: tuple[int, int] = (3, 10)
    long: tuple[int, Optional[int]] = (11, None)
    probs: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)

    def __post_init__(self):
        for kind in GAP_KINDS:
            lo, hi = getattr(self, kind)
            if lo < 0 or (hi is not None and hi < lo):
                raise ValueError(f"GapRanges.{kind}={getattr(self, kind)}: need 0 <= lo <= hi")
        if len(self.probs) != 3 or min(self.probs) < 0 or sum(self.probs) <= 0:
            raise ValueError(f"GapRanges.probs={self.probs}: need 3 non-negative weights")


def sample_pairs(num_frames: Sequence[int], seed: int, gaps: GapRanges = GapRanges()):
    """Sample one pair per clip.

    Args:
      num_frames: frames per clip ``[B]`` (each >= 2: the target needs a previous frame).
      seed: numpy seed; the same arguments always give the same pairs.
      gaps: the gap ranges. A kind whose smallest gap does not fit a clip is not drawn for
        it (the other kinds' probabilities are renormalised).

    Returns:
      dict of int arrays ``[B]``: ``reference`` (``t - n``), ``target`` (``t``), ``previous``
      (``t - 1``), ``gap`` (``n``) and ``kind`` (index into :data:`GAP_KINDS`).
    """
    num_frames = np.asarray(num_frames, dtype=np.int64).reshape(-1)
    if np.any(num_frames < 2):
        raise ValueError(f"num_frames={num_frames.tolist()}: every clip needs >= 2 frames")
    rng = np.random.default_rng(seed)
    out = {k: np.zeros(len(num_frames), np.int64)
           for k in ("reference", "target", "previous", "gap", "kind")}
    for b, t_len in enumerate(num_frames):  # host-side numpy, one draw per clip
        max_gap = int(t_len) - 1
        ranges = [getattr(gaps, k) for k in GAP_KINDS]
        p = np.array([w if lo <= max_gap else 0.0 for w, (lo, _) in zip(gaps.probs, ranges)])
        if p.sum() == 0:
            raise ValueError(f"clip of {t_len} frames fits no gap range of {gaps}")
        kind = int(rng.choice(3, p=p / p.sum()))
        lo, hi = ranges[kind]
        hi = max_gap if hi is None else min(hi, max_gap)
        gap = int(rng.integers(lo, hi + 1))
        target = int(rng.integers(max(1, gap), max_gap + 1))
        for k, v in (("reference", target - gap), ("target", target),
                     ("previous", target - 1), ("gap", gap), ("kind", kind)):
            out[k][b] = v
    return out


def gather_pair_batch(frames, masks, pairs, object_ids=None):
    """Build the training batch of :func:`vosjax.training.gcseg_objective.make_loss_fn`.

    Args:
      frames: ``[B, T, H, W, 3]`` normalised clips; masks: ``[B, T, H, W]`` binary GT, or
        label ids when ``object_ids`` is given.
      pairs: output of :func:`sample_pairs` (indices into ``T``).
      object_ids: optional ``[B]`` ints; clip ``b``'s binary problem is ``masks == id_b``
        (GCSeg segments one object at a time).

    Returns:
      dict ``target_frame``, ``target_mask``, ``prev_mask``, ``ref_frame``, ``ref_mask``
      (numpy, float32).
    """
    frames, masks = np.asarray(frames), np.asarray(masks)
    if frames.ndim != 5 or masks.shape != frames.shape[:4]:
        raise ValueError(f"frames must be [B, T, H, W, 3] and masks [B, T, H, W]; got "
                         f"{frames.shape} and {masks.shape}")
    if object_ids is not None:
        ids = np.asarray(object_ids).reshape(-1)
        if ids.shape != frames.shape[:1]:
            raise ValueError(f"object_ids must be [B] = [{frames.shape[0]}], got {ids.shape}")
        masks = masks == ids[:, None, None, None]
    b = np.arange(frames.shape[0])
    for k in ("reference", "target", "previous"):
        if np.any(pairs[k] >= frames.shape[1]) or np.any(pairs[k] < 0):
            raise ValueError(f"pairs[{k!r}] out of range for clips of {frames.shape[1]} frames")
    f32 = np.float32
    return {"target_frame": frames[b, pairs["target"]].astype(f32),
            "target_mask": masks[b, pairs["target"]].astype(f32),
            "prev_mask": masks[b, pairs["previous"]].astype(f32),
            "ref_frame": frames[b, pairs["reference"]].astype(f32),
            "ref_mask": masks[b, pairs["reference"]].astype(f32)}


def zero_previous_mask(rng, prev_mask, p: float = 0.5):
    """Zero each sample's ``M_{t-1}`` with probability ``p`` (Sec. III-B: simulates an
    unreliable previous mask that the judgement module would discard).

    ``prev_mask`` ``[B, H, W]`` -> ``(masks [B, H, W], dropped [B] bool)``.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"zero_prev_prob={p}: expected a probability in [0, 1]")
    dropped = jax.random.bernoulli(rng, p, (prev_mask.shape[0],))
    return jnp.where(dropped[:, None, None], 0.0, prev_mask).astype(prev_mask.dtype), dropped


def pair_picker(gaps: GapRanges = GapRanges()):
    """A ``pick(rng, n, max_gap)`` for :class:`~vosjax.data.sampler.ClipSampler`: the
    positions ``[t - n, t - 1, t]`` (reference, previous, target) of one :func:`sample_pairs`
    draw over ``n`` annotated frames, seeded from the clip's ``rng``. The sampler's gap
    schedule (``max_gap``) is not used: ``gaps`` decides the reference gap."""
    def pick(rng: np.random.Generator, n: int, max_gap: int) -> np.ndarray:
        del max_gap
        p = sample_pairs([n], int(rng.integers(2 ** 63)), gaps)
        return np.array([p["reference"][0], p["previous"][0], p["target"][0]])
    return pick


def gcseg_batch_fn(objective: str = "pairs", augment=None):
    """``prepare(raw, rng, num_slots) -> batch`` (see :func:`vosjax.training.step.train_step`):
    the GCSeg loss's batch from raw one-object clips (``num_slots = 1``; ``raw`` as
    :class:`vosjax.data.sampler.HostBatch`), on the device.

    Frames get the clip augmentation's photometric part and the normalisation
    (:func:`vosjax.data.device.clip_frames`); the binary masks are ``labels == 1``.
    ``objective="pairs"`` (3-frame clips from :func:`pair_picker`: reference, t - 1, t): the
    pair batch of :func:`vosjax.training.gcseg_objective.make_loss_fn`; ``"recurrent"``:
    ``frames`` and
    ``masks [B, T, H, W]`` for :func:`~vosjax.training.gcseg_objective.make_recurrent_loss_fn`.
    """
    from vosjax.data import device

    if objective not in ("pairs", "recurrent"):
        raise ValueError(f"objective={objective!r}: expected 'pairs' or 'recurrent'")
    kw = device.augment_args(augment)

    def prepare(raw, rng, num_slots: int):
        if num_slots != 1:
            raise ValueError(f"GCSeg trains on one-object clips (num_slots=1), got "
                             f"num_slots={num_slots}")
        frames = device.clip_frames(rng, raw["frames"], raw["labels"], **kw)
        fg = (raw["labels"] == 1).astype(jnp.float32)
        if objective == "recurrent":
            return {"frames": frames, "masks": fg}
        if frames.shape[1] != 3:
            raise ValueError(f"pair clips must have 3 frames (reference, t-1, t), got "
                             f"{frames.shape[1]}")
        return {"target_frame": frames[:, 2], "target_mask": fg[:, 2], "prev_mask": fg[:, 1],
                "ref_frame": frames[:, 0], "ref_mask": fg[:, 0]}
    return prepare


__all__ = ["GapRanges", "GAP_KINDS", "sample_pairs", "gather_pair_batch", "zero_previous_mask",
           "pair_picker", "gcseg_batch_fn"]
