"""The train state: everything a bit-exact resume needs (the sampler position is the step)."""
from __future__ import annotations

from typing import Any

import flax.struct
import jax


class TrainState(flax.struct.PyTreeNode):
    """``params`` (trainable), ``batch_stats`` (frozen BN statistics, never updated),
    ``opt_state``, ``step`` (int32 scalar; the clip stream is a function of it) and ``rng``."""
    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array

    @property
    def variables(self):
        return {"params": self.params, "batch_stats": self.batch_stats}
