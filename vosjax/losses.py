"""Segmentation losses of both model families.

STM: the losses of the official STM-Cycle code (and the paper's eq. 3-4 cycle loss).

Layouts follow the official code: ``pred`` and ``mask`` are ``[N, K, H, W]`` with channel 0 the
background and channels 1..num_objects the objects (K = num_slots + 1); ``ref`` is
``[N, num_objects + 1, H, W]`` (or more channels), whose empty channels mark objects absent from
the reference frame. ``num_objects`` may be a Python int or a traced scalar (a batch of clips
with different object counts under ``vmap``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def _channel_valid(ref, k):
    """``[N, k]`` bool: channel c of ``ref`` holds any pixel (channels past ``ref`` are False)."""
    n, kr = ref.shape[:2]
    valid = jnp.sum(ref.reshape(n, kr, -1), axis=-1) > 0
    if kr >= k:
        return valid[:, :k]
    return jnp.concatenate([valid, jnp.zeros((n, k - kr), bool)], axis=1)


def cross_entropy_loss(pred, mask, num_objects, bootstrap: float = 0.4, ref=None):
    """Bootstrapped cross-entropy: ``-log p`` of the true channel, mean of the top 40% pixels.

    Exactly the official ``cross_entropy_loss``: no epsilon in the log; channels
    0..num_objects only; with ``ref``, channels empty in ``ref`` (background included) are
    zeroed; per pixel the sum over channels; per sample the ``int(H*W*bootstrap)`` largest;
    the mean over all samples' kept pixels.
    """
    n, k, h, w = mask.shape
    num = int(h * w * bootstrap)
    chan = (jnp.arange(k) <= num_objects).astype(pred.dtype)[None, :, None, None]
    ce = -jnp.log(pred) * mask * chan
    if ref is not None:
        ce = ce * _channel_valid(ref, k).astype(ce.dtype)[:, :, None, None]
    per_pixel = jnp.sum(ce, axis=1).reshape(n, h * w)
    top, _ = jax.lax.top_k(per_pixel, num)
    return jnp.mean(top)


def iou_loss(pred, mask, num_objects, ref=None):
    """Soft IoU loss ``1 - sum(min(p, m)) / sum(max(p, m))`` per object, as the official
    ``mask_iou_loss``: objects 1..num_objects (0..num_objects-1 when ``mask`` has exactly
    ``num_objects`` channels), averaged over the sample's objects (only those present in
    ``ref``), then over samples. Returns shape ``(1,)`` like the official code.
    """
    n, k, h, w = mask.shape
    start = 0 if (isinstance(num_objects, int) and k == num_objects) else 1
    inter = jnp.sum(jnp.minimum(pred, mask), axis=(2, 3))
    union = jnp.sum(jnp.maximum(pred, mask), axis=(2, 3))
    obj_loss = (1.0 - inter / union)[:, start:]                       # [N, k - start]
    idx = jnp.arange(k - start)
    use = jnp.broadcast_to(idx[None] < num_objects, obj_loss.shape)
    if ref is not None:
        use = use & _channel_valid(ref, k)[:, start:]
    count = jnp.sum(use.astype(obj_loss.dtype), axis=1)
    # Channels outside the objects may have union 0 (0/0): keep them out of the sum entirely.
    # A sample with no valid object is NaN in the official code (it never happens there); here
    # it contributes 0 so that a masked-out term (the cycle skip rule) has finite gradients.
    per_sample = jnp.sum(jnp.where(use, obj_loss, 0.0), axis=1) / jnp.maximum(count, 1.0)
    return (jnp.sum(per_sample) / n).reshape(1)


def segmentation_loss(pred, mask, num_objects, ref=None, bootstrap: float = 0.4):
    """The official training criterion ``CE + IoU`` (a scalar)."""
    return (cross_entropy_loss(pred, mask, num_objects, bootstrap, ref)
            + iou_loss(pred, mask, num_objects, ref)[0])


# -- GCSeg: the segmentation loss, eq. (3) of the GCSeg paper ------------------------------

#: GCSeg eq. (3) pixel reductions.
REDUCTIONS = ("sum", "mean", "balanced")


def bce_two_way(logits, target, reduction: str = "sum"):
    """``L_bce``: pixel-wise binary cross entropy of a 2-way softmax prediction.

    Args:
      logits: ``[N, H, W, 2]`` (channel 1 = foreground); ``p = softmax(logits)[..., 1]``.
      target: ``[N, H, W]`` ground truth in [0, 1].
      reduction: ``"sum"`` over pixels (the paper: "sum of pixel-wise BCE"), ``"mean"``, or
        ``"balanced"``: ``(mean over y > 0.5 + mean over y <= 0.5) / 2`` (class-balanced, as
        OSVOS; a set with no pixel drops out and the other gets weight 1). Not in the paper:
        an option against small objects collapsing to background.

    Returns:
      ``[N]``: ``-sum_px [y log p + (1 - y) log(1 - p)]`` (or its mean / balanced mean),
      computed with ``log_softmax`` so it never takes ``log(0)``.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r}: expected one of {REDUCTIONS}")
    if logits.shape[:-1] != target.shape or logits.shape[-1] != 2:
        raise ValueError(f"logits {logits.shape} must be target {target.shape} + (2,)")
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    y = target.astype(jnp.float32)
    px = -(y * logp[..., 1] + (1.0 - y) * logp[..., 0])
    if reduction == "sum":
        return px.sum(axis=(1, 2))
    if reduction == "mean":
        return px.mean(axis=(1, 2))
    return balanced_mean(px, y > 0.5)


def balanced_mean(px, fg):
    """``[N, H, W]`` per-pixel values -> ``[N]``: the mean of the foreground (``fg``) and
    background means; when one class has no pixel, the other's mean alone."""
    fg = fg.astype(px.dtype)
    n_fg, n_bg = fg.sum(axis=(1, 2)), (1.0 - fg).sum(axis=(1, 2))
    m_fg = (px * fg).sum(axis=(1, 2)) / jnp.maximum(n_fg, 1.0)
    m_bg = (px * (1.0 - fg)).sum(axis=(1, 2)) / jnp.maximum(n_bg, 1.0)
    w_fg, w_bg = (n_fg > 0).astype(px.dtype), (n_bg > 0).astype(px.dtype)
    return (w_fg * m_fg + w_bg * m_bg) / jnp.maximum(w_fg + w_bg, 1.0)


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


