"""Test-time gradient correction (eq. 5) and cycle-ERF (eq. 6, appendix A.3) of STM-Cycle.

Both run ``n_iter`` gradient steps on a *mask* (not on the weights): the mask is memorized with
its frame, the memory segments another frame, and the official segmentation loss (bootstrapped
CE + soft IoU, :mod:`vosjax.losses`) against that frame's known mask is differentiated w.r.t.
the mask with ``jax.grad``. The loop is a ``lax.fori_loop``; the mask-independent parts (the
other frame's query features, ``conv1`` of the memorized frame) are computed once outside it.

Layouts: frames ``[H, W, 3]`` (normalised RGB); per-object masks ``[O, H, W]``; probability
maps ``[K, H, W]`` with ``K = num_slots + 1`` and channel 0 the background.

Everything here is a pure function of arrays (``model`` and the static settings aside), so it
can be ``jax.jit``-ed and ``jax.vmap``-ed.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from vosjax.losses import segmentation_loss
from vosjax.models.stm import QueryFeatures, soft_aggregate


@dataclasses.dataclass(frozen=True)
class GradientCorrection:
    """Settings of the test-time gradient correction (eq. 5); defaults as the official code.

    Attributes:
      n_iter: gradient steps per corrected frame (the paper's N, 10).
      rate: correction rate alpha (180).
      every: correct frames with ``t % every == 0`` (the paper's K, 5).
      record_corrected: False (official): the prediction recorded for a corrected frame is the
        uncorrected one, and only the memory receives the corrected mask; True: record the
        corrected mask as the frame's prediction too.
      unroll: ``lax.fori_loop`` unroll factor; None picks per backend (see
        :func:`default_unroll`).
    """
    n_iter: int = 10
    rate: float = 180.0
    every: int = 5
    record_corrected: bool = False
    unroll: int | None = None

    def __post_init__(self):
        for name in ("n_iter", "every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GradientCorrection.{name} must be a positive int, "
                                 f"got {value!r}")
        if not (isinstance(self.rate, (int, float)) and self.rate > 0):
            raise ValueError(f"GradientCorrection.rate must be a positive number, "
                             f"got {self.rate!r}")
        if self.unroll is not None and (not isinstance(self.unroll, int) or self.unroll < 1):
            raise ValueError(f"GradientCorrection.unroll must be None or a positive int, "
                             f"got {self.unroll!r}")

    def resolved_unroll(self) -> int:
        return default_unroll(self.n_iter) if self.unroll is None else self.unroll


def default_unroll(n_iter: int, backend: str | None = None) -> int:
    """Unroll factor of the correction loop: on CPU up to 10 steps unrolled, rolled elsewhere.

    Measured on CPU (``python -m benchmarks.correction_speed --unroll-only --arch resnet18
    --size 96x160``, 2 shared cores, results in
    ``benchmarks/results/correction_unroll_cpu.json``): one
    10-step correction took 11.8 s rolled and 4.3 s fully unrolled (median of 3); XLA:CPU does
    not optimise across the ``while`` boundary. Longer loops (cycle-ERF's 50 steps) are
    unrolled by 10 to bound the compile time. On accelerators the rolled loop is the usual
    choice (faster compiles; not measured here: this task had no GPU).
    """
    backend = backend or jax.default_backend()
    return min(n_iter, 10) if backend == "cpu" else 1


def masks_to_probs(masks, num_slots: int):
    """Per-object masks ``[O, H, W]`` -> ``[num_slots + 1, H, W]`` with channel 0 the
    background ``clip(1 - sum_o m_o, 0, 1)`` (the one-hot map for binary, disjoint masks)."""
    o = masks.shape[0]
    if o > num_slots:
        raise ValueError(f"{o} objects do not fit in num_slots={num_slots}")
    masks = masks.astype(jnp.float32)
    bg = jnp.clip(1.0 - jnp.sum(masks, axis=0, keepdims=True), 0.0, 1.0)
    pad = jnp.zeros((num_slots - o,) + masks.shape[1:], masks.dtype)
    return jnp.concatenate([bg, masks, pad], axis=0)


def segment_probs(model, variables, query: QueryFeatures, keys, values, num_slots: int,
                  out_hw, valid=None, active=None):
    """Soft-aggregated softmax ``[num_slots + 1, H, W]`` of a query frame given a memory.

    ``active`` ``[O]`` bool (optional): objects not yet present get probability 0 before the
    aggregation (their channel ends at the 1e-7 clamp, like an unused slot).
    """
    ps = model.apply(variables, query, keys, values, tuple(out_hw), valid,
                     method=model.segment_query)
    if active is not None:
        ps = jnp.where(active[:, None, None], ps, 0.0)
    return jax.nn.softmax(soft_aggregate(ps, num_slots), axis=0)


def reconstruction_loss(model, variables, frame, masks, target_query: QueryFeatures,
                        target_probs, frame_conv=None):
    """The loss inside eq. 5/6: memorize ``frame`` with ``masks`` ``[O, H, W]`` alone, segment
    the target frame (its :class:`QueryFeatures`) and score against ``target_probs``
    ``[K, H, W]`` with the official CE (top-40% bootstrap) + IoU, ``num_objects = O``."""
    keys, values = model.apply(variables, frame, masks, frame_conv, method=model.memorize)
    k = target_probs.shape[0]
    pred = segment_probs(model, variables, target_query, keys, values, k - 1, frame.shape[:2])
    return segmentation_loss(pred[None], target_probs[None], masks.shape[0])


def _descend(model, variables, frame, masks, target_query, target_probs, n_iter: int,
             rate: float, unroll: int):
    """``n_iter`` steps ``m <- m - rate * dL/dm`` on ``masks`` ``[O, H, W]``.

    Returns ``(masks, losses [n_iter])``, ``losses[i]`` the loss before update i.
    """
    frame_conv = model.apply(variables, frame, method=model.memory_stem)
    loss_grad = jax.value_and_grad(
        lambda m: reconstruction_loss(model, variables, frame, m, target_query, target_probs,
                                      frame_conv))

    def body(i, carry):
        m, losses = carry
        loss, g = loss_grad(m)
        return m - rate * g, losses.at[i].set(loss)

    losses = jnp.zeros((n_iter,), jnp.float32)
    return jax.lax.fori_loop(0, n_iter, body, (masks, losses), unroll=unroll)


def correct_mask(model, variables, frame, probs, ref_query: QueryFeatures, ref_probs, *,
                 n_iter: int = 10, rate: float = 180.0, unroll: int | None = None,
                 num_objects: int | None = None):
    """Gradient correction, eq. 5: ``Y^{l+1} = Y^l - alpha * dL(S({X_t}, {Y^l}, X_1), Y_1) / dY^l``.

    Args:
      frame: the frame ``X_t`` ``[H, W, 3]`` whose prediction is corrected.
      probs: its prediction ``[K, H, W]`` (softmax over the K = num_slots + 1 channels).
      ref_query: :func:`STM.encode_query` of the reference frame ``X_1`` (computed once per video).
      ref_probs: the reference mask ``Y_1`` ``[K, H, W]`` (one-hot).
      n_iter, rate: N and alpha.  unroll: ``fori_loop`` unroll (None: :func:`default_unroll`).
      num_objects: O (default ``K - 1``); only channels 1..O are memorized, so only they change.

    Returns:
      ``(corrected [K, H, W], losses [n_iter])`` with ``losses[i]`` the loss before update i.
      No renormalisation or clipping, as the official code.
    """
    k = probs.shape[0]
    o = k - 1 if num_objects is None else int(num_objects)
    unroll = default_unroll(n_iter) if unroll is None else unroll
    masks, losses = _descend(model, variables, frame, probs[1:o + 1], ref_query, ref_probs,
                             n_iter, rate, unroll)
    return probs.at[1:o + 1].set(masks), losses


def cycle_erf(model, variables, ref_frame, target_frame, target_masks, n_iter: int = 50,
              rate: float = 180.0, unroll: int | None = None):
    """Cycle-ERF, eq. 6: ``ReLU(Y_l^M)``, where ``Y_l^0 = 0`` is an empty mask on the reference
    frame ``X_l`` and each of the M = ``n_iter`` steps is an eq. 5 update toward segmenting
    ``target_frame`` with ``target_masks``.

    Args:
      ref_frame: ``X_l`` ``[H, W, 3]``; target_frame: ``[H, W, 3]`` (the paper: the first frame).
      target_masks: ``[O, H, W]`` the target frame's object masks.
      rate: alpha; the default is the correction rate (eq. 6 reuses the eq. 5 update).

    Returns:
      ``[O, H, W]`` the non-negative support map of each object on ``ref_frame``.
    Pure and batch-free: ``jax.vmap`` it over (frame, object) pairs.
    """
    o = target_masks.shape[0]
    target_probs = masks_to_probs(target_masks, o)
    target_query = model.apply(variables, target_frame, method=model.encode_query)
    unroll = default_unroll(n_iter) if unroll is None else unroll
    empty = jnp.zeros((o,) + ref_frame.shape[:2], jnp.float32)
    masks, _ = _descend(model, variables, ref_frame, empty, target_query, target_probs, n_iter,
                        rate, unroll)
    return jax.nn.relu(masks)


def erf_reconstruction(model, variables, ref_frame, ref_masks, erf, target_frame):
    """Appendix A.3: segment ``target_frame`` from ``ref_frame`` memorized with only part of
    its cycle-ERF, ``Y_in = ReLU(Y^M) * Y_l`` (inside the objects) or
    ``Y_ex = ReLU(Y^M) * (1 - Y_l)`` (outside).

    Args:
      ref_masks: ``Y_l`` ``[O, H, W]`` the ground truth on ``ref_frame``; erf: ``[O, H, W]``
        from :func:`cycle_erf` (already non-negative).

    Returns:
      ``{"inside": probs, "outside": probs}``, each ``[O + 1, H, W]``.
    """
    o = ref_masks.shape[0]
    query = model.apply(variables, target_frame, method=model.encode_query)
    frame_conv = model.apply(variables, ref_frame, method=model.memory_stem)
    out = {}
    for name, part in (("inside", erf * ref_masks), ("outside", erf * (1.0 - ref_masks))):
        keys, values = model.apply(variables, ref_frame, part, frame_conv, method=model.memorize)
        out[name] = segment_probs(model, variables, query, keys, values, o, ref_frame.shape[:2])
    return out


__all__ = ["GradientCorrection", "correct_mask", "cycle_erf", "erf_reconstruction",
           "reconstruction_loss", "masks_to_probs", "segment_probs", "default_unroll"]
