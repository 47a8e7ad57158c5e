"""Where propagation time goes: a profiler trace of one video, aggregated by XLA op kind.

    python -m benchmarks.profile_step [--arch resnet18] [--size 240x427] [--frames 11]

Runs vosjax's propagation once to compile, then once under ``jax.profiler.trace`` and sums the
trace's op events by kind (the fusion name without its number: on CPU ``ynn_fusion`` is a
convolution / dot handed to the YNNPACK library, ``*_fusion`` loop fusions, ``dot``, ...).
Op events of concurrently running ops may overlap, so shares are of the summed op time.
Writes ``benchmarks/results/profile_step_<backend>.json``: one row with the top kinds and the
ten costliest single ops named by the model layer they come from.
"""
from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import shutil
import tempfile
import time

from benchmarks import harness


def op_events(trace_dir: str):
    """``(module, op, microseconds)`` of the XLA op events in the newest trace in ``trace_dir``."""
    files = sorted(glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True))
    if not files:
        raise FileNotFoundError(f"{trace_dir}: the profiler wrote no *.trace.json.gz")
    with gzip.open(files[-1]) as f:
        trace = json.load(f)
    for e in trace["traceEvents"]:
        a = e.get("args", {})
        if e.get("ph") == "X" and "hlo_op" in a:
            yield a.get("hlo_module", "?"), a["hlo_op"], float(e.get("dur", 0))


def op_layers(dump_dir: str) -> dict:
    """``{(module, op): layer}`` from the optimized HLO that XLA dumped (op_name metadata)."""
    out = {}
    for path in glob.glob(os.path.join(dump_dir, "*after_optimizations.txt")):
        module = re.sub(r"^module_\d+\.", "", os.path.basename(path)).split(".cpu_")[0]
        module = module.split(".gpu_")[0]
        with open(path) as f:
            for op, name in re.findall(r"%([\w.-]+) = [^\n]*?op_name=\"([^\"]+)\"", f.read()):
                out[(module, op)] = re.sub(r"^jit\([^)]*\)/", "", name)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    harness.add_arch(p, "resnet18")
    harness.add_size(p)
    p.add_argument("--frames", type=int, default=11)
    p.add_argument("--objects", type=int, default=1)
    harness.add_out(p, "profile_step_{backend}.json")
    args = p.parse_args(argv)
    dump = tempfile.mkdtemp(prefix="vosjax-hlo-")    # XLA reads its flags when jax starts
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + f" --xla_dump_to={dump} --xla_dump_hlo_as_text").strip()
    import jax

    # a program loaded from the persistent compilation cache is not compiled, so not dumped
    jax.config.update("jax_enable_compilation_cache", False)
    from benchmarks.workloads import synthetic_video
    from vosjax.inference import propagate
    from vosjax.models.stm import STM, init_stm

    backend = jax.default_backend()
    h, w = args.size
    run = harness.Run("profile_step", backend, __file__, argv, settings={
        "arch": args.arch, "size": [h, w], "frames": args.frames, "objects": args.objects,
        "weights": "random"})
    model = STM(arch=args.arch)
    variables = init_stm(model, jax.random.PRNGKey(0), 64, 64)
    frames, masks = synthetic_video(args.frames, args.objects, h, w)
    propagate(model, variables, frames, masks[1:])              # compile
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with jax.profiler.trace(tmp):
            propagate(model, variables, frames, masks[1:])
        wall = time.perf_counter() - start
        events = list(op_events(tmp))
    kinds, ops = collections.Counter(), collections.Counter()
    for module, op, us in events:
        kinds[re.sub(r"\.\d+$", "", op)] += us
        ops[(module, op)] += us
    total = sum(kinds.values())
    layer = op_layers(dump)
    shutil.rmtree(dump, ignore_errors=True)
    row = run.add_row({
        "wall_s_traced_video": round(wall, 3), "op_seconds_total": round(total / 1e6, 3),
        "kinds": [{"kind": k, "s": round(v / 1e6, 4), "share": round(v / total, 4)}
                  for k, v in kinds.most_common(12)],
        "top_ops": [{"module": m, "op": o, "layer": layer.get((m, o), "?"),
                     "s": round(v / 1e6, 4)} for (m, o), v in ops.most_common(10)]}, show=False)
    print(json.dumps(row["kinds"][:5]))
    run.write(harness.out_path(args, backend))


if __name__ == "__main__":
    main()
