"""The GCSeg segmentation loss, eq. (3) of the paper."""
from __future__ import annotations

import jax
import jax.numpy as jnp

REDUCTIONS = ("sum", "mean")


def bce_two_way(logits, target, reduction: str = "sum"):
    """``L_bce``: pixel-wise binary cross entropy of a 2-way softmax prediction.

    Args:
      logits: ``[N, H, W, 2]`` (channel 1 = foreground); ``p = softmax(logits)[..., 1]``.
      target: ``[N, H, W]`` ground truth in [0, 1].
      reduction: ``"sum"`` over pixels (the paper: "sum of pixel-wise BCE") or ``"mean"``.

    Returns:
      ``[N]``: ``-sum_px [y log p + (1 - y) log(1 - p)]`` (or its mean), computed with
      ``log_softmax`` so it never takes ``log(0)``.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r}: expected one of {REDUCTIONS}")
    if logits.shape[:-1] != target.shape or logits.shape[-1] != 2:
        raise ValueError(f"logits {logits.shape} must be target {target.shape} + (2,)")
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    y = target.astype(jnp.float32)
    px = -(y * logp[..., 1] + (1.0 - y) * logp[..., 0])
    return px.sum(axis=(1, 2)) if reduction == "sum" else px.mean(axis=(1, 2))


def gcseg_loss(outputs, gt_target, gt_reference, reduction: str = "sum"):
    """Eq. (3): ``L = Lbce(M_t, GT_t) + Lbce(M_{t-n}, GT_{t-n}) + Lbce(M'_t, GT_t)
    + Lbce(M'_{t-n}, GT_{t-n})``.

    Args:
      outputs: :class:`vosjax.models.gcseg.GCSegOutput` (logits ``[N, H, W, 2]``); the
        ``M'`` terms are dropped when the model has no co-segmentation-only heads (ablation
        modes other than ``"both"``).
      gt_target, gt_reference: ``[N, H, W]`` in [0, 1].

    Returns:
      ``(loss [N], terms)`` with ``terms`` a dict of the per-term ``[N]`` values
      (``target``, ``reference``, ``aux_target``, ``aux_reference``).
    """
    pairs = {"target": (outputs.target, gt_target),
             "reference": (outputs.reference, gt_reference),
             "aux_target": (outputs.aux_target, gt_target),
             "aux_reference": (outputs.aux_reference, gt_reference)}
    terms = {k: bce_two_way(p, y, reduction) for k, (p, y) in pairs.items() if p is not None}
    return sum(terms.values()), terms


__all__ = ["bce_two_way", "gcseg_loss", "REDUCTIONS"]
