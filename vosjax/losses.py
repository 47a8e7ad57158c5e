"""Segmentation losses of the official STM-Cycle code (and the paper's eq. 3-4 cycle loss).

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
