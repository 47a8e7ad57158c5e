"""What every benchmark result file records: the machine, library versions, the command, load,
and the measuring helpers shared by the benchmark scripts (compile counting, peak memory).
"""
from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import sys
import threading
import time


def cpu_name() -> str:
    """``model name`` from /proc/cpuinfo (falls back to ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def device_name(backend: str) -> str:
    """The accelerator's kind (e.g. ``NVIDIA H100 80GB HBM3``) or the CPU model name."""
    if backend == "cpu":
        return cpu_name()
    import jax  # noqa: PLC0415

    return jax.devices(backend)[0].device_kind


def versions() -> dict:
    """Versions of Python and of the numeric libraries already imported."""
    out = {"python": platform.python_version()}
    for name in ("jax", "jaxlib", "flax", "optax", "numpy", "torch"):
        mod = sys.modules.get(name)
        if mod is not None:
            out[name] = getattr(mod, "__version__", "?")
    return out


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def header(backend: str) -> dict:
    """The fields every result file starts with."""
    return {"device": device_name(backend), "backend": backend, "cpu": cpu_name(),
            "logical_cpus": os.cpu_count(),
            "command": " ".join(shlex.quote(a) for a in [os.path.basename(sys.executable)]
                                + sys.argv),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "load_average_start": load_average()}


def write_json(path: str, record: dict) -> None:
    """Write ``record`` to ``path`` atomically (temp file + rename)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def summary(seconds: list[float]) -> dict:
    """Median, min and all runs (seconds, rounded)."""
    return {"median_s": round(statistics.median(seconds), 6), "min_s": round(min(seconds), 6),
            "runs_s": [round(s, 6) for s in seconds]}


class CompileCounter:
    """Counts XLA backend compilations (and their seconds) while active::

        with CompileCounter() as cc:
            fn(x)
        cc.count, cc.seconds
    """
    EVENT = "/jax/core/compile/backend_compile_duration"
    _active: list["CompileCounter"] = []
    _registered = False

    def __init__(self):
        self.count, self.seconds = 0, 0.0

    @classmethod
    def _listener(cls, event, duration, **kwargs):
        if event == cls.EVENT:
            for c in cls._active:
                c.count += 1
                c.seconds += duration

    def __enter__(self):
        if not CompileCounter._registered:
            import jax  # noqa: PLC0415

            jax.monitoring.register_event_duration_secs_listener(CompileCounter._listener)
            CompileCounter._registered = True
        CompileCounter._active.append(self)
        return self

    def __exit__(self, *exc):
        CompileCounter._active.remove(self)
        return False


def rss_bytes() -> int:
    """Resident set size of this process (bytes) from /proc/self/statm."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Samples the RSS every ``interval`` seconds in a thread while active; ``peak`` (bytes)."""

    def __init__(self, interval: float = 0.002):
        self.interval, self.peak = interval, 0
        self._stop = threading.Event()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self):
        self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())
        return False
