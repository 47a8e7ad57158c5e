"""Train-state checkpoints with orbax ``CheckpointManager``: auto-resume, keep the last N.

``WORKDIR/checkpoints/<step>/state`` holds the :class:`TrainState` (params, optimizer state,
step, rng) and ``.../meta`` a JSON dict (the sampler's schedule position, the config). Orbax
writes each step to a temporary directory and renames it when complete, so a process killed
during a write leaves the previous checkpoint as the latest loadable one.
"""
from __future__ import annotations

import os

import jax


class Checkpointer:
    """Thin wrapper: ``save(step, state, meta)``, ``restore_latest(abstract_state, shardings)``."""

    def __init__(self, workdir: str, *, keep: int = 3, save_every: int = 1):
        import orbax.checkpoint as ocp  # noqa: PLC0415

        self._ocp = ocp
        self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
        opts = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                            save_interval_steps=max(1, save_every))
        self.manager = ocp.CheckpointManager(self.directory, options=opts,
                                             item_names=("state", "meta"))

    def latest_step(self):
        return self.manager.latest_step()

    def save(self, step: int, state, meta: dict, *, force: bool = False) -> bool:
        ocp = self._ocp
        return self.manager.save(
            int(step), args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                               meta=ocp.args.JsonSave(meta)), force=force)

    def restore(self, step: int, abstract_state, shardings=None):
        """``(state, meta)`` of ``step``; ``abstract_state`` gives shapes/dtypes (and
        ``shardings``, if given, where each leaf is placed)."""
        ocp = self._ocp
        if shardings is not None:
            abstract_state = jax.tree_util.tree_map(
                lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                abstract_state, shardings)
        out = self.manager.restore(
            int(step), args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                                               meta=ocp.args.JsonRestore()))
        return out.state, out.meta

    def restore_latest(self, abstract_state, shardings=None):
        step = self.latest_step()
        if step is None:
            return None
        return self.restore(step, abstract_state, shardings)

    def wait(self):
        self.manager.wait_until_finished()

    def close(self):
        self.manager.wait_until_finished()
        self.manager.close()
