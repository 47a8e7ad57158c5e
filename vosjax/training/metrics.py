"""Metric writers: ``WORKDIR/metrics.jsonl`` (one JSON object a line) and TensorBoard."""
from __future__ import annotations

import json
import math
import os


def repair_jsonl(path: str, *, max_step: int | None = None) -> int:
    """Cut ``path`` (a ``metrics.jsonl``) after its last complete row, dropping a half-written
    last line (a process killed mid-write) and, with ``max_step``, the rows logged after that
    step (a run killed after logging but before its checkpoint: the resumed run logs them
    again). Truncates in place (one ``truncate``; rows kept are untouched). Returns the number
    of rows kept; a missing file keeps 0."""
    if not os.path.exists(path):
        return 0
    keep_bytes, rows = 0, 0
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                row = json.loads(line)
            except ValueError:
                break
            if not isinstance(row, dict) or (max_step is not None
                                             and int(row.get("step", 0)) > max_step):
                break
            keep_bytes += len(line)
            rows += 1
    if keep_bytes != os.path.getsize(path):
        os.truncate(path, keep_bytes)
    return rows


class MetricWriter:
    """Writes scalars to ``metrics.jsonl`` (always) and to TensorBoard event files under
    ``WORKDIR/tensorboard`` when ``tensorboardX`` is importable. Only process 0 writes.

    ``resume_step``: the step training (re)starts from; an existing ``metrics.jsonl`` is first
    repaired with :func:`repair_jsonl` so its rows stay one per logged step, in order."""

    def __init__(self, workdir: str, *, enabled: bool = True, tensorboard: bool = True,
                 resume_step: int | None = None):
        self.enabled = enabled
        self._jsonl = None
        self._tb = None
        if not enabled:
            return
        os.makedirs(workdir, exist_ok=True)
        repair_jsonl(os.path.join(workdir, "metrics.jsonl"), max_step=resume_step)
        self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a", buffering=1)
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter
                self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
            except ImportError:
                self._tb = None

    def write(self, step: int, scalars: dict) -> None:
        if not self.enabled:
            return
        row = {"step": int(step)}
        for k, v in scalars.items():
            v = float(v)
            row[k] = v if math.isfinite(v) else str(v)
            if self._tb is not None:
                self._tb.add_scalar(k, v, int(step))
        self._jsonl.write(json.dumps(row) + "\n")

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
        if self._tb is not None:
            self._tb.close()
