"""Pure GCSeg training objectives for a generic trainer (``jax.value_and_grad``, ``jit``,
sharding over the batch axis).

Pair batch (:func:`make_loss_fn`; build it with
:func:`vosjax.data.pairs.gather_pair_batch`), every array with a leading clip axis ``B``:

=================  ==================  ==================================================
key                shape               meaning
=================  ==================  ==================================================
``target_frame``   ``[B, H, W, 3]``    ``I_t``, ImageNet-normalised RGB, float32
``target_mask``    ``[B, H, W]``       ``GT_t`` in [0, 1]
``prev_mask``      ``[B, H, W]``       ``M_{t-1}`` (GT of t-1 or a simulated one)
``ref_frame``      ``[B, H, W, 3]``    ``I_{t-n}``
``ref_mask``       ``[B, H, W]``       ``M_{t-n}`` (= ``GT_{t-n}``)
``weight``         ``[B]`` (optional)  per-clip weight; 0 marks padding clips
=================  ==================  ==================================================

Recurrent batch (:func:`make_recurrent_loss_fn`): ``frames [B, L, H, W, 3]``,
``masks [B, L, H, W]`` and the optional ``weight [B]``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from vosjax.data.pairs import zero_previous_mask
from vosjax.losses import gcseg_loss

PAIR_KEYS = ("target_frame", "target_mask", "prev_mask", "ref_frame", "ref_mask")


def _check_pair_batch(batch):
    missing = [k for k in PAIR_KEYS if k not in batch]
    if missing:
        raise KeyError(f"GCSeg batch lacks {missing} (needs {PAIR_KEYS}, optional 'weight')")
    f = batch["target_frame"]
    if f.ndim != 4 or f.shape[-1] != 3 or batch["ref_frame"].shape != f.shape:
        raise ValueError(f"target_frame/ref_frame must both be [B, H, W, 3]; got {f.shape} "
                         f"and {batch['ref_frame'].shape}")
    for k in ("target_mask", "prev_mask", "ref_mask"):
        if batch[k].shape != f.shape[:3]:
            raise ValueError(f"batch[{k!r}] must be [B, H, W] = {f.shape[:3]}, got "
                             f"{batch[k].shape}")


def _weights(batch, n):
    w = batch.get("weight")
    return jnp.ones((n,), jnp.float32) if w is None else w.astype(jnp.float32)


def _weighted_mean(x, w):
    return jnp.sum(x * w) / jnp.maximum(jnp.sum(w), 1e-12)


def soft_iou(logits, target):
    """Per-sample IoU ``[N]`` of ``softmax(logits)[..., 1] > 0.5`` with ``target > 0.5``
    (1 when both are empty) -- a training metric."""
    pred = jax.nn.softmax(logits, axis=-1)[..., 1] > 0.5
    gt = target > 0.5
    inter = jnp.sum(pred & gt, axis=(1, 2))
    union = jnp.sum(pred | gt, axis=(1, 2))
    return jnp.where(union > 0, inter / jnp.maximum(union, 1), 1.0)


def _pair_step(model, variables, target_frame, target_mask, prev_mask, ref_frame, ref_mask,
               rng, zero_prev_prob, reduction):
    prev, dropped = zero_previous_mask(rng, prev_mask, zero_prev_prob)
    out = model.apply(variables, target_frame, prev, ref_frame, ref_mask)
    loss, terms = gcseg_loss(out, target_mask, ref_mask, reduction)
    return out, loss, terms, dropped


def _metrics(loss, terms, iou, dropped, w):
    m = {"loss": _weighted_mean(loss, w), "iou": _weighted_mean(iou, w),
         "prev_dropped": _weighted_mean(dropped.astype(jnp.float32), w)}
    m.update({f"loss_{k}": _weighted_mean(v, w) for k, v in terms.items()})
    return m


def make_loss_fn(model, batch_stats=None, *, zero_prev_prob: float = 0.5,
                 reduction: str = "sum"):
    """``gcseg_loss_fn(params, batch, rng) -> (loss, metrics)`` for pair batches.

    ``loss`` is eq. (3) per clip (:func:`vosjax.losses.gcseg_loss`), averaged over the
    clips with ``batch['weight']``; ``M_{t-1}`` is zeroed per clip with ``zero_prev_prob``.
    ``batch_stats`` (the frozen-BN statistics, not trained) is closed over. ``metrics``: the
    loss, each eq. (3) term, the target IoU and the fraction of zeroed previous masks.
    """
    def gcseg_loss_fn(params, batch, rng):
        _check_pair_batch(batch)
        variables = {"params": params}
        if batch_stats is not None:
            variables["batch_stats"] = batch_stats
        out, loss, terms, dropped = _pair_step(
            model, variables, batch["target_frame"], batch["target_mask"], batch["prev_mask"],
            batch["ref_frame"], batch["ref_mask"], rng, zero_prev_prob, reduction)
        w = _weights(batch, loss.shape[0])
        iou = soft_iou(out.target, batch["target_mask"])
        return _weighted_mean(loss, w), _metrics(loss, terms, iou, dropped, w)

    return gcseg_loss_fn


def make_recurrent_loss_fn(model, batch_stats=None, *, zero_prev_prob: float = 0.5,
                           reduction: str = "sum"):
    """``loss_fn(params, batch, rng) -> (loss, metrics)`` for recurrent fine-tuning (Sec. IV-A,
    "similar to MaskRNN"): frame 0 with its ground truth is the reference; for
    ``t = 1 .. L-1`` the previous mask is the *prediction* for ``t - 1`` (the ground truth for
    ``t = 1``), kept differentiable, randomly zeroed with ``zero_prev_prob``. The loss is
    eq. (3) summed over the steps (``lax.scan``), then averaged over clips.
    """
    def loss_fn(params, batch, rng):
        frames, masks = batch["frames"], batch["masks"]
        if frames.ndim != 5 or masks.shape != frames.shape[:4] or frames.shape[1] < 2:
            raise ValueError(f"frames must be [B, L>=2, H, W, 3] and masks [B, L, H, W]; got "
                             f"{frames.shape} and {masks.shape}")
        variables = {"params": params}
        if batch_stats is not None:
            variables["batch_stats"] = batch_stats
        ref_frame, ref_mask = frames[:, 0], masks[:, 0]

        def step(prev, xs):
            frame, gt, key = xs
            out, loss, terms, dropped = _pair_step(model, variables, frame, gt, prev, ref_frame,
                                                   ref_mask, key, zero_prev_prob, reduction)
            iou = soft_iou(out.target, gt)
            pred = jax.nn.softmax(out.target, axis=-1)[..., 1]
            return pred, (loss, terms, iou, dropped)

        steps = frames.shape[1] - 1
        xs = (jnp.moveaxis(frames[:, 1:], 1, 0), jnp.moveaxis(masks[:, 1:], 1, 0),
              jax.random.split(rng, steps))
        _, (loss, terms, iou, dropped) = jax.lax.scan(step, masks[:, 0].astype(jnp.float32), xs)
        w = _weights(batch, frames.shape[0])
        per_clip = loss.sum(0)
        metrics = _metrics(per_clip, {k: v.sum(0) for k, v in terms.items()}, iou.mean(0),
                           dropped.mean(0), w)
        return _weighted_mean(per_clip, w), metrics

    return loss_fn


__all__ = ["make_loss_fn", "make_recurrent_loss_fn", "soft_iou", "PAIR_KEYS"]
