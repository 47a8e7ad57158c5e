"""What every benchmark shares: command-line pieces, one timing loop, the machine / load record
and the one result schema of ``benchmarks/results/*.json``.

Result schema (``"schema": 1``), one JSON object per file::

    {"schema": 1,
     "benchmark": "inference",                 # which table of make_table renders the file
     "command": "python -m benchmarks.inference_speed ...",   # null: not recorded
     "date": "2026-11-22T08:54:44+0000",       # when the run started; null: not recorded
     "machine": {"device": ..., "backend": "cpu" | "gpu", "cpu": ..., "logical_cpus": 2,
                 "versions": {"python": ..., "jax": ..., "torch": ...},
                 "load_average": {"start": 1.2, "end": 1.8}},    # 1-minute load averages
     "settings": {...},                        # the run's configuration
     "rows": [{...}, ...],                     # the measurements, one per table row
     ...}                                      # further fields of that benchmark

:func:`write_result` checks that shape and writes atomically; :func:`read_result` checks it
again, so :mod:`benchmarks.make_table` picks each file's table by ``benchmark`` alone. Rows
may carry their own ``load_average`` (``{"start", "end"}``, either may be missing) when the
load was sampled per row.

Before/after speed-ups (``speedups``, ``compile_count``, ``slot_trim``, ``correction_caching``)
have rows of one shape (:func:`speedup_row`)::

    {"setting": ..., "before_label": ..., "after_label": ...,
     "metric": "median_s",          # the field of before / after that the speed-up compares
     "before": {"median_s": ..., ...}, "after": {...},
     "speedup": 1.05,               # > 1: "after" is faster
     "max_abs_diff": 0.0,           # after vs before outputs (null: not comparable)
     "load_average": {...}}

Timing (:func:`time_calls`, :func:`alternate`): a warm-up call, then timed calls of a function
that blocks until its work is done (``jax.block_until_ready``, ``torch.cuda.synchronize``);
each timed result holds ``warmup_s``, ``median_s``, ``min_s``, ``runs_s`` and ``repeats``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import statistics
import sys
import threading
import time
from typing import Any, Callable

from vosjax import atomic

SCHEMA = 1
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
ARCHS = ("resnet10", "resnet18", "resnet34", "resnet50", "resnet101")


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------
def parse_size(text: str) -> tuple[int, int]:
    """``"240x427"`` -> ``(240, 427)`` (height x width)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HxW, e.g. 240x427") from None
    if h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: sizes must be positive")
    return h, w


def add_size(p: argparse.ArgumentParser, default: str = "240x427", **kwargs) -> None:
    """``--size HxW`` (the working size of frames); the parsed value is ``(H, W)``."""
    p.add_argument("--size", type=parse_size, default=parse_size(default), metavar="HxW",
                   help=kwargs.pop("help", f"frame size (default {default})"), **kwargs)


def add_arch(p: argparse.ArgumentParser, default, *, multiple: bool = False) -> None:
    """``--arch`` (one ResNet trunk, or several with ``multiple``)."""
    if multiple:
        p.add_argument("--arch", nargs="+", choices=ARCHS, default=list(default))
    else:
        p.add_argument("--arch", choices=ARCHS, default=default)


def add_repeats(p: argparse.ArgumentParser, default: int, what: str = "timed calls") -> None:
    p.add_argument("--repeats", type=int, default=default,
                   help=f"{what} after the warm-up (default {default})")


def add_out(p: argparse.ArgumentParser, default_name: str) -> None:
    """``--out PATH`` (default ``benchmarks/results/<default_name>``; ``{backend}`` in it is
    replaced by the backend that ran): see :func:`out_path`."""
    p.add_argument("--out", default=None,
                   help=f"result JSON (default benchmarks/results/{default_name})")
    p.set_defaults(default_out=default_name)


def out_path(args, backend: str = "cpu") -> str:
    return args.out or os.path.join(RESULTS, args.default_out.format(backend=backend))


def add_device(p: argparse.ArgumentParser) -> None:
    """``--device cpu|gpu`` and ``--threads`` (CPU threads of torch and XLA)."""
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="CPU threads of torch (and XLA: 1 disables its thread pool)")


def add_official(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--official", required=required, default=None,
                   help="checkout of lyxok1/STM-Training, branch cycle (never vendored)")


def setup_backends(device: str, threads: int) -> str:
    """Pick the JAX platform and both libraries' CPU thread counts before anything runs
    (``threads == 1``: XLA:CPU without its Eigen thread pool, torch with one thread); returns
    JAX's backend."""
    if threads == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                                   + " --xla_cpu_multi_thread_eigen=false"
                                   " intra_op_parallelism_threads=1")
    import jax

    if device == "cpu":
        jax.config.update("jax_platforms", "cpu")
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    return jax.default_backend()


def command_line(file: str, argv=None) -> str:
    """``python -m benchmarks.NAME ARGS`` of the module at ``file`` (``argv``: its arguments,
    default the process's)."""
    rel = os.path.relpath(os.path.abspath(file), REPO)
    module = os.path.splitext(rel)[0].replace(os.sep, ".")
    args = sys.argv[1:] if argv is None else list(argv)
    return " ".join(shlex.quote(a) for a in ["python", "-m", module, *args])


# ---------------------------------------------------------------------------------------------
# machine and load
# ---------------------------------------------------------------------------------------------
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
    import jax

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
    """The 1-minute load average (rounded)."""
    return round(os.getloadavg()[0], 2)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def machine(backend: str) -> dict:
    """The result's ``machine`` record at the start of a run (versions and the end load are
    filled in by :meth:`Run.finish`)."""
    return {"device": device_name(backend), "backend": backend, "cpu": cpu_name(),
            "logical_cpus": os.cpu_count(), "versions": versions(),
            "load_average": {"start": load_average(), "end": None}}


class Run:
    """One benchmark run and its result file::

        run = Run("inference", backend, __file__, argv, settings={...})
        run.add_row({...})                       # printed as it is measured
        run.write(path, memory=[...])            # extra top-level fields of this benchmark
    """

    def __init__(self, benchmark: str, backend: str, file: str, argv=None, settings=None):
        self.result = {"schema": SCHEMA, "benchmark": benchmark,
                       "command": command_line(file, argv), "date": now(),
                       "machine": machine(backend), "settings": dict(settings or {}),
                       "rows": []}

    @property
    def rows(self) -> list:
        return self.result["rows"]

    def add_row(self, row: dict, show: bool = True) -> dict:
        self.rows.append(row)
        if show:
            print(json.dumps(row), flush=True)
        return row

    def finish(self, **fields) -> dict:
        m = self.result["machine"]
        m["versions"] = versions()       # now that every library of the run is imported
        m["load_average"]["end"] = load_average()
        self.result.update(fields)
        return self.result

    def write(self, path: str, **fields) -> str:
        write_result(path, self.finish(**fields))
        print(f"wrote {path}", flush=True)
        return path


# ---------------------------------------------------------------------------------------------
# the result schema
# ---------------------------------------------------------------------------------------------
REQUIRED = {"schema": int, "benchmark": str, "command": (str, type(None)),
            "date": (str, type(None)), "machine": dict, "settings": dict, "rows": list}
MACHINE = ("device", "backend", "cpu", "logical_cpus", "versions", "load_average")


def validate(result: dict, where: str = "result") -> dict:
    """Raise ``ValueError`` unless ``result`` follows the schema (see the module docstring)."""
    if not isinstance(result, dict):
        raise ValueError(f"{where}: not a JSON object")
    if result.get("schema") != SCHEMA:
        raise ValueError(f"{where}: schema {result.get('schema')!r}, expected {SCHEMA}")
    for key, kind in REQUIRED.items():
        if key not in result or not isinstance(result[key], kind):
            raise ValueError(f"{where}: field {key!r} missing or not {kind}")
    missing = [k for k in MACHINE if k not in result["machine"]]
    if missing:
        raise ValueError(f"{where}: machine lacks {missing}")
    if not isinstance(result["machine"]["load_average"], dict):
        raise ValueError(f"{where}: machine.load_average must be {{'start', 'end'}}")
    if not all(isinstance(r, dict) for r in result["rows"]):
        raise ValueError(f"{where}: every row must be a JSON object")
    return result


def write_result(path: str, result: dict) -> None:
    """Check ``result`` and write it to ``path`` atomically (temporary file + rename)."""
    validate(result, path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic.write_text(path, json.dumps(result, indent=2) + "\n")


def read_result(path: str) -> dict:
    with open(path) as f:
        return validate(json.load(f), path)


def read_results(folder: str) -> list[dict]:
    """Every ``*.json`` of ``folder`` (sorted by name), each checked, with ``_file`` set to
    its file name."""
    out = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            data = read_result(os.path.join(folder, name))
            data["_file"] = name
            out.append(data)
    return out


# ---------------------------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------------------------
def summary(seconds: list[float]) -> dict:
    """Median, min and all runs (seconds, rounded)."""
    return {"median_s": round(statistics.median(seconds), 6), "min_s": round(min(seconds), 6),
            "runs_s": [round(s, 6) for s in seconds]}


@dataclasses.dataclass
class Timing:
    """``stats``: ``warmup_s``, ``median_s``, ``min_s``, ``runs_s``, ``repeats`` (and the
    compile counts when asked); ``first``: the warm-up call's output; ``last``: the last timed
    call's."""
    stats: dict
    first: Any = None
    last: Any = None


def time_calls(fn: Callable[[], Any], repeats: int, *, warmup: Callable[[], Any] | None = None,
               count_compiles: bool = False,
               remaining: Callable[[], float] | None = None) -> Timing:
    """The timing loop: ``warmup()`` (default ``fn()``) once, then ``repeats`` timed calls of
    ``fn()``, which must block until its work is done.

    ``count_compiles``: XLA compilations during the warm-up (``compiles_warmup``,
    ``xla_compile_s_warmup``) and during the timed calls (``compiles_timed``: 0 when the
    warm-up reached every program). ``remaining``: seconds left in a time budget; the loop
    stops early, after at least one timed call, when another would not fit (1.5x the last).
    """
    warm_cc = CompileCounter() if count_compiles else _NoCounter()
    t0 = time.perf_counter()
    with warm_cc:
        first = (warmup or fn)()
    warm = time.perf_counter() - t0
    cc = CompileCounter() if count_compiles else _NoCounter()
    times, last = [], None
    with cc:
        while len(times) < max(repeats, 1):
            t0 = time.perf_counter()
            last = fn()
            times.append(time.perf_counter() - t0)
            if remaining is not None and remaining() < 1.5 * times[-1]:
                break
    stats = {"warmup_s": round(warm, 4), **summary(times), "repeats": len(times)}
    if count_compiles:
        stats.update(compiles_warmup=warm_cc.count,
                     xla_compile_s_warmup=round(warm_cc.seconds, 3), compiles_timed=cc.count)
    return Timing(stats, first, last)


def alternate(fns: dict[str, Callable[[], Any]], repeats: int, *, zigzag: bool = False,
              warmup: bool = True,
              prepare: Callable[[str], None] | None = None) -> dict[str, Timing]:
    """:func:`time_calls` of several functions, interleaved so that machine load touches all
    alike: each warms up once (in order; not with ``warmup=False``, e.g. when everything is
    compiled already), then ``repeats`` rounds call each in turn (``zigzag``: every other
    round in reverse order). ``prepare(name)``, if given, runs untimed before each timed
    call (e.g. a fresh copy of the inputs)."""
    names = list(fns)
    warm, first = dict.fromkeys(names), dict.fromkeys(names)
    for name in names if warmup else ():
        t0 = time.perf_counter()
        first[name] = fns[name]()
        warm[name] = round(time.perf_counter() - t0, 4)
    times = {name: [] for name in names}
    last = {}
    for r in range(max(repeats, 1)):
        for name in (names[::-1] if zigzag and r % 2 else names):
            if prepare is not None:
                prepare(name)
            t0 = time.perf_counter()
            last[name] = fns[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: Timing({"warmup_s": warm[name], **summary(times[name]),
                          "repeats": len(times[name])}, first[name], last[name])
            for name in names}


def speedup_row(setting: str, before_label: str, after_label: str, before: dict, after: dict,
                *, metric: str = "median_s", max_abs_diff: float | None = None,
                **fields) -> dict:
    """A before/after row (see the module docstring): ``speedup`` is ``before / after`` of
    ``metric`` for a time (``*_s``), ``after / before`` for a rate (``*_per_s``)."""
    b, a = before[metric], after[metric]
    ratio = a / b if metric.endswith("_per_s") else b / a
    return {"setting": setting, "before_label": before_label, "after_label": after_label,
            "metric": metric, "before": before, "after": after, "speedup": round(ratio, 4),
            "max_abs_diff": max_abs_diff, **fields}


def before_after(before: Callable[[], Any], after: Callable[[], Any], repeats: int, *,
                 zigzag: bool = False) -> tuple[dict, dict, Any, Any]:
    """``before`` and ``after`` timed alternately; returns their stats and last outputs."""
    t = alternate({"before": before, "after": after}, repeats, zigzag=zigzag)
    return t["before"].stats, t["after"].stats, t["before"].last, t["after"].last


# ---------------------------------------------------------------------------------------------
# measuring helpers
# ---------------------------------------------------------------------------------------------
class _NoCounter:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


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
            import jax

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
