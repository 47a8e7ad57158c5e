"""Optimizers: PyTorch-style Adam (L2 weight decay added to the gradient), AdamW, schedules."""
from __future__ import annotations

import optax


def learning_rate_schedule(base_lr: float, kind: str = "constant", *, total_steps: int = 0,
                           warmup_steps: int = 0, milestones=(), gamma: float = 0.1):
    """``constant`` | ``cosine`` | ``step`` (multiply by ``gamma`` at each milestone step, as
    the official ``adjust_learning_rate``), with an optional linear warm-up."""
    if base_lr <= 0:
        raise ValueError(f"learning_rate={base_lr}: must be > 0")
    if kind == "constant":
        sched = optax.constant_schedule(base_lr)
    elif kind == "cosine":
        if total_steps <= warmup_steps:
            raise ValueError(f"schedule=cosine needs more steps ({total_steps}) than warm-up "
                             f"steps ({warmup_steps}): check config.train.num_train_steps "
                             "and config.train.warmup_steps")
        sched = optax.cosine_decay_schedule(base_lr, total_steps - warmup_steps)
    elif kind == "step":
        sched = optax.piecewise_constant_schedule(
            base_lr, {int(m) - warmup_steps: gamma for m in milestones})
    else:
        raise ValueError(f"schedule={kind!r}: expected constant, cosine or step")
    if warmup_steps > 0:
        sched = optax.join_schedules(
            [optax.linear_schedule(0.0, base_lr, warmup_steps), sched], [warmup_steps])
    return sched


def make_optimizer(learning_rate, *, optimizer: str = "adam", b1: float = 0.9,
                   b2: float = 0.999, eps: float = 1e-8, weight_decay: float = 5e-4,
                   grad_clip: float = 0.0, accumulate_steps: int = 1):
    """The official optimizer by default: ``torch.optim.Adam(lr, betas, weight_decay)``, whose
    weight decay is an L2 term added to the gradient *before* the moments. ``adamw`` decouples
    it. ``accumulate_steps > 1`` averages gradients over that many steps before an update (the
    official ``iter_size``)."""
    if optimizer == "adam":
        parts = [optax.add_decayed_weights(weight_decay)] if weight_decay else []
        parts += [optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
                  optax.scale_by_learning_rate(learning_rate)]
    elif optimizer == "adamw":
        parts = [optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
                 optax.add_decayed_weights(weight_decay),
                 optax.scale_by_learning_rate(learning_rate)]
    else:
        raise ValueError(f"optimizer={optimizer!r}: expected adam or adamw")
    if grad_clip > 0:
        parts.insert(0, optax.clip_by_global_norm(grad_clip))
    tx = optax.chain(*parts)
    if accumulate_steps < 1:
        raise ValueError(f"accumulate_steps={accumulate_steps}: must be >= 1")
    if accumulate_steps > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=accumulate_steps)
    return tx
