"""The STM-cycle training objective (paper Section 3.2, eq. 3-4; official "recurrent" mode).

One clip (no batch axis): ``frames`` ``[T, H, W, 3]`` normalised, ``masks`` ``[T, K, H, W]``
one-hot (K = num_slots + 1, channel 0 background), ``num_objects`` a scalar (may be traced, so
clips with different object counts share one compiled program: every slot is computed and the
slots past ``num_objects`` are zeroed, which leaves the official numbers unchanged).

Batches are handled by ``jax.vmap`` over clips (see :mod:`vosjax.training.step`).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from vosjax.losses import segmentation_loss
from vosjax.models.stm import soft_aggregate


class ClipLosses(NamedTuple):
    """Per-clip loss terms: ``total`` (eq. 3 summed and divided by T-1), ``step`` ``[T-1]``
    (``L(Y_t^, Y_t)`` for t = 1..T-1), ``cycle`` ``[T-1]`` (``L(Y_1^, Y_1)`` from frame t's
    memory, in the official loop order t = T-1 .. 1; 0 where skipped) and ``cycle_used``."""
    total: jax.Array
    step: jax.Array
    cycle: jax.Array
    cycle_used: jax.Array


def object_slots(num_objects, num_slots: int):
    """``[num_slots]`` float mask of the slots that hold an object."""
    return (jnp.arange(1, num_slots + 1) <= num_objects).astype(jnp.float32)


def aggregate(probs, num_objects):
    """Per-slot foreground ``[S, H, W]`` -> soft-aggregated softmax ``[S + 1, H, W]`` with
    the empty slots zeroed first (as the official code, which only fills 1..num_objects)."""
    s = probs.shape[0]
    probs = probs * object_slots(num_objects, s)[:, None, None]
    return jax.nn.softmax(soft_aggregate(probs, s), axis=0)


def largest_label(mask_onehot):
    """Largest channel index with any pixel in a one-hot ``[K, H, W]`` (0 when only bg)."""
    present = jnp.sum(mask_onehot, axis=(1, 2)) > 0
    idx = jnp.arange(mask_onehot.shape[0])
    return jnp.max(jnp.where(present, idx, 0))


def cycle_loss(model, variables, frames, masks, num_objects, *, cycle: bool = True,
               bootstrap: float = 0.4) -> ClipLosses:
    """Eq. 3: ``L_cycle,t = L(Y_t^, Y_t) + L(Y_1^, Y_1)`` with ``L`` of eq. 4 (CE + IoU).

    Forward: for t = 1..T-1 the memory holds frames 0..t-1, frame 0 with its ground truth and
    later frames with their *predicted* masks, gradients flowing through them (no stop
    gradient). Cycle: frame 0 is re-segmented from frame t's memory alone (for t = T-1 .. 1),
    supervised by Y_1 with objects absent from frame t masked out (``ref = Y_t``); as in the
    official code a term is used only when the largest label present in ``Y_t`` equals
    ``num_objects``. ``cycle=False`` gives the plain baseline (no backward term).

    Returns :class:`ClipLosses`; ``total`` is the sum of all used terms / (T - 1).
    """
    t_len = frames.shape[0]

    def memorize(frame, soft_mask):
        return model.apply(variables, frame, soft_mask[1:], method=model.memorize)

    def segment(frame, keys, values):
        probs = model.apply(variables, frame, keys, values, method=model.segment)
        return aggregate(probs, num_objects)

    def crit(pred, gt, ref):
        return segmentation_loss(pred[None], gt[None], num_objects, ref=ref[None],
                                 bootstrap=bootstrap)

    bank_k, bank_v, step_losses = [], [], []
    mask = masks[0]
    out = None
    for t in range(1, t_len):
        k, v = memorize(frames[t - 1], mask)
        bank_k.append(k)
        bank_v.append(v)
        out = segment(frames[t], jnp.concatenate(bank_k, 1), jnp.concatenate(bank_v, 1))
        step_losses.append(crit(out, masks[t], masks[0]))
        mask = out
    step = jnp.stack(step_losses)
    total = jnp.sum(step)

    cyc, used = [], []
    if cycle:
        k, v = memorize(frames[t_len - 1], out)
        bank_k.append(k)
        bank_v.append(v)
        for t in range(t_len - 1, 0, -1):
            use = largest_label(masks[t]) == num_objects
            f = segment(frames[0], bank_k[t], bank_v[t])
            term = crit(f, masks[0], masks[t])
            cyc.append(jnp.where(use, term, 0.0))
            used.append(use)
        cyc = jnp.stack(cyc)
        used = jnp.stack(used)
        total = total + jnp.sum(cyc)
    else:
        cyc = jnp.zeros((t_len - 1,), step.dtype)
        used = jnp.zeros((t_len - 1,), bool)
    return ClipLosses(total / (t_len - 1), step, cyc, used)
