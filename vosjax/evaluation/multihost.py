"""Evaluation over several processes (one per host, ``jax.distributed``): each process takes a
disjoint share of the video list and process 0 merges the results.

No collective carries data: the processes meet once at the start
(``multihost_utils.sync_global_devices``, after process 0 has cleared the previous run's
files) and then talk through small files in ``OUTPUT/.vosjax-eval/`` (the output folder must
be one that every host sees, as it must anyway for the submission zip): each process writes
its progress (read by process 0's progress bar) and, when done, its per-video results
(scores, frames/s, peak memory; a pickle of this package's own objects). Process 0 waits for
every process's results, or stops with the error a failed process reported.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import time
from typing import Sequence

from vosjax import atomic

STATE_DIR = ".vosjax-eval"


def share_videos(num_frames: Sequence[int], count: int) -> list[list[int]]:
    """Split video indices into ``count`` disjoint shares of about equal frame totals (longest
    video first to the least loaded share; ties to the lower share). Every process computes the
    same split from the same list. Each share keeps the list order."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    loads = [0] * count
    shares: list[list[int]] = [[] for _ in range(count)]
    for i in sorted(range(len(num_frames)), key=lambda i: (-num_frames[i], i)):
        p = min(range(count), key=lambda p: (loads[p], p))
        shares[p].append(i)
        loads[p] += num_frames[i]
    return [sorted(s) for s in shares]


class ProcessGroup:
    """This process's place among ``count`` evaluation processes sharing ``output_dir``.

    ``start`` clears the previous run's files (process 0) and waits for every process;
    ``barrier`` defaults to ``multihost_utils.sync_global_devices``."""

    def __init__(self, output_dir: str, rank: int, count: int, *, barrier=None):
        if not 0 <= rank < count:
            raise ValueError(f"process {rank} is not in 0..{count - 1}")
        self.rank, self.count = rank, count
        self.dir = os.path.join(os.fspath(output_dir), STATE_DIR)
        if barrier is None:
            from jax.experimental import multihost_utils
            barrier = multihost_utils.sync_global_devices
        self._barrier = barrier

    @classmethod
    def current(cls, output_dir: str) -> ProcessGroup | None:
        """The group of this ``jax.distributed`` run, or None with a single process."""
        import jax

        if jax.process_count() == 1:
            return None
        return cls(output_dir, jax.process_index(), jax.process_count())

    def start(self) -> None:
        if self.rank == 0:
            shutil.rmtree(self.dir, ignore_errors=True)
            os.makedirs(self.dir)
        self._barrier("vosjax-evaluation-start")
        if not os.path.isdir(self.dir):
            raise FileNotFoundError(
                f"{self.dir}: process 0 created it but process {self.rank} does not see it; "
                "--output must be a folder every host shares")

    def _path(self, what: str, rank: int) -> str:
        return os.path.join(self.dir, f"{what}-{rank}")

    def write_progress(self, **fields) -> None:
        atomic.write_bytes(self._path("progress", self.rank) + ".json",
                           json.dumps(fields).encode())

    def read_progress(self) -> list[dict | None]:
        out = []
        for r in range(self.count):
            try:
                with open(self._path("progress", r) + ".json") as f:
                    out.append(json.load(f))
            except (OSError, ValueError):    # not written yet (or being replaced)
                out.append(None)
        return out

    def put_results(self, results) -> None:
        atomic.write_bytes(self._path("results", self.rank) + ".pkl", pickle.dumps(results))

    def wait_results(self, poll: float = 0.5, on_poll=None) -> list:
        """Process 0: every process's results (in rank order), once all are written. Raises
        RuntimeError when a process reports a failure."""
        while True:
            progress = self.read_progress()
            for r, p in enumerate(progress):
                if p and p.get("error"):
                    raise RuntimeError(f"evaluation process {r} failed: {p['error']}")
            paths = [self._path("results", r) + ".pkl" for r in range(self.count)]
            if all(os.path.exists(p) for p in paths):
                out = []
                for p in paths:
                    with open(p, "rb") as f:
                        out.append(pickle.load(f))
                return out
            if on_poll is not None:
                on_poll()
            time.sleep(poll)
