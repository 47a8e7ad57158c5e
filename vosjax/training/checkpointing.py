"""Train-state checkpoints with orbax ``CheckpointManager``: auto-resume, keep the last N.

``WORKDIR/checkpoints/<step>/state`` holds the :class:`TrainState` (params, optimizer state,
step, rng) and ``.../meta`` a JSON dict (the sampler's schedule position, the config). Orbax
writes each step to a temporary directory and renames it when complete, so a process killed
during a write leaves the previous checkpoint as the latest loadable one.

A complete-looking step that cannot be read (files truncated by a full disk or a copy cut
short) is not fatal: :meth:`Checkpointer.restore_latest` sets it aside (renamed to
``WORKDIR/checkpoints-unreadable/<step>-<time>``, never deleted), warns with its path and the
reason, and resumes from the newest readable step. When no step is readable it raises
:class:`UnreadableCheckpointError` naming the folder and moves nothing.
"""
from __future__ import annotations

import os
import time
import warnings

import jax


class UnreadableCheckpointError(RuntimeError):
    """No checkpoint in the folder could be read (the message names it and each reason)."""


class Checkpointer:
    """Thin wrapper: ``save(step, state, meta)``, ``restore_latest(abstract_state, shardings)``."""

    def __init__(self, workdir: str, *, keep: int = 3, save_every: int = 1):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
        self.aside_directory = os.path.join(os.path.abspath(workdir), "checkpoints-unreadable")
        opts = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                            save_interval_steps=max(1, save_every))
        self.manager = ocp.CheckpointManager(self.directory, options=opts,
                                             item_names=("state", "meta"))

    def latest_step(self):
        return self.manager.latest_step()

    def step_path(self, step: int) -> str:
        return os.path.join(self.directory, str(int(step)))

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

    def restore_latest(self, abstract_state, shardings=None, *, log=print):
        """``(state, meta, step)`` of the newest readable step, or None when there is none.

        Steps newer than it that fail to read are set aside (see the module docstring) with a
        warning each; ``log`` receives the one-line resume message (step and path). Raises
        :class:`UnreadableCheckpointError` when steps exist but none can be read.
        """
        steps = sorted(self.manager.all_steps(), reverse=True)
        if not steps:
            return None
        failures = []
        for step in steps:
            try:
                state, meta = self.restore(step, abstract_state, shardings)
                jax.block_until_ready(state)
            except Exception as e:  # noqa: BLE001  (any failure to read means "unreadable")
                failures.append((step, f"{type(e).__name__}: {_first_line(e)}"))
                continue
            if failures:
                self._set_aside(failures)
            if log is not None:
                log(f"resuming from step {step}: {self.step_path(step)}")
            return state, meta, step
        reasons = "; ".join(f"step {s} ({self.step_path(s)}): {r}" for s, r in failures)
        raise UnreadableCheckpointError(
            f"{self.directory}: no checkpoint can be read ({reasons}). Nothing was moved; fix "
            "or remove them, or train in a new workdir")

    def _set_aside(self, failures) -> None:
        os.makedirs(self.aside_directory, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for step, reason in failures:
            src = self.step_path(step)
            dst = os.path.join(self.aside_directory, f"{step}-{stamp}")
            n = 1
            while os.path.exists(dst):
                dst = os.path.join(self.aside_directory, f"{step}-{stamp}-{n}")
                n += 1
            os.replace(src, dst)
            warnings.warn(f"checkpoint {src} cannot be read ({reason}); moved it to {dst} and "
                          "resuming from an older step", RuntimeWarning, stacklevel=3)
        self.manager.reload()

    def wait(self):
        self.manager.wait_until_finished()

    def close(self):
        self.manager.wait_until_finished()
        self.manager.close()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else repr(e))[:300]
