"""Propagation speed with and without gradient correction (random STM weights), and the
correction loop's ``unroll`` choice.

    python -m benchmarks.correction_speed --arch resnet50 --size 240x427 --objects 2 --frames 30
    python -m benchmarks.correction_speed --unroll-only --arch resnet18 --size 96x160

Propagation: a random video through :class:`vosjax.inference.Propagator` (``mem_every=5``),
once plain and once with ``GradientCorrection()`` (10 steps, every 5th frame). Every step is
synchronised, and the tracing/lowering/XLA-compile seconds recorded by ``jax.monitoring``
during a step are subtracted from its wall time (they are reported as compile time), so the
frames/s are steady-state. One row per video (correction off, on); the GC overhead ratio is
plain fps / corrected fps (paper, GPU: 38 -> 9.3 FPS, 4.1x).

``--unroll-only``: one 10-step correction (:func:`vosjax.correction.correct_mask`) with the
``fori_loop`` rolled (unroll 1) and fully unrolled, compile and median run time (benchmark
``correction_unroll``).

Writes ``--out`` (default ``benchmarks/results/correction_{speed,unroll}_<backend>.json``).
"""
from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import harness
from vosjax.correction import GradientCorrection, correct_mask, masks_to_probs
from vosjax.inference import Propagator
from vosjax.models.stm import STM, init_stm

COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                  "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")
_compile_seconds = [0.0]


def _listener(event, duration, **_):
    if event in COMPILE_EVENTS:
        _compile_seconds[0] += duration


def random_inputs(t, h, w, objects, seed=0):
    rng = np.random.default_rng(seed)
    frames = jnp.asarray(rng.normal(size=(t, h, w, 3)).astype(np.float32))
    masks = np.zeros((objects, h, w), np.float32)
    for o in range(objects):        # side-by-side boxes
        x0 = (o * w) // objects
        masks[o, h // 4:3 * h // 4, x0 + w // (4 * objects):x0 + 3 * w // (4 * objects)] = 1
    return frames, jnp.asarray(masks)


def run_video(model, variables, frames, masks, correction):
    """Per-step (steady seconds, compile seconds, corrected?) over frames 1..T-1."""
    before = _compile_seconds[0]
    t0 = time.perf_counter()
    prop = Propagator(model, variables, frames[0], masks, correction=correction,
                      max_frames=frames.shape[0])
    jax.block_until_ready(prop.state)
    init = {"wall_s": time.perf_counter() - t0, "compile_s": _compile_seconds[0] - before}
    steps = []
    for t in range(1, frames.shape[0]):
        before = _compile_seconds[0]
        t0 = time.perf_counter()
        probs = prop.step(frames[t])
        jax.block_until_ready((probs, prop.state))
        wall = time.perf_counter() - t0
        comp = _compile_seconds[0] - before
        steps.append((wall - comp, comp, prop.last_corrected is not None))
    return init, steps


def summarise(init, steps):
    run_s = sum(s for s, _, _ in steps)
    plain = [s for s, c, corr in steps if not corr and c == 0]
    corr = [s for s, c, k in steps if k and c == 0]
    return {"frames": len(steps), "corrections": sum(k for _, _, k in steps),
            "steady_seconds": round(run_s, 3), "fps": round(len(steps) / run_s, 4),
            "compile_s": round(init["compile_s"] + sum(c for _, c, _ in steps), 2),
            "median_plain_step_s": round(statistics.median(plain), 4) if plain else None,
            "median_corrected_step_s": round(statistics.median(corr), 4) if corr else None,
            "steps_with_compile_excluded_from_medians": sum(c > 0 for _, c, _ in steps)}


def bench_propagation(args):
    h, w = args.size
    model = STM(args.arch)
    variables = jax.jit(lambda r: init_stm(model, r, 64, 64, args.objects))(
        jax.random.PRNGKey(0))
    frames, masks = random_inputs(args.frames, h, w, args.objects)
    plain = summarise(*run_video(model, variables, frames, masks, None))
    print("plain", plain, flush=True)
    corr = summarise(*run_video(model, variables, frames, masks, GradientCorrection()))
    print("corrected", corr, flush=True)
    out = {"rows": [{"correction": False, **plain}, {"correction": True, **corr}],
           "gc_overhead_ratio": round(plain["fps"] / corr["fps"], 3),
           "paper_gc_overhead_ratio_gpu": round(38 / 9.3, 2)}
    p, c = plain["median_plain_step_s"], corr["median_corrected_step_s"]
    if p and c:   # the schedule of a 60-frame video (59 steps, corrections at 5..55)
        t60 = 59 * p + 11 * (c - p)
        out["derived_60_frames"] = {
            "note": "from the median step times above, not a 60-frame run",
            "fps_plain": round(59 / (59 * p), 4), "fps_corrected": round(59 / t60, 4),
            "gc_overhead_ratio": round(t60 / (59 * p), 3)}
    return out


def bench_unroll(args):
    h, w = args.size
    model = STM(args.arch)
    o = args.objects
    variables = jax.jit(lambda r: init_stm(model, r, 64, 64, o))(jax.random.PRNGKey(0))
    frames, masks = random_inputs(2, h, w, o)
    ref_probs = masks_to_probs(masks, o)
    query = jax.jit(lambda v, f: model.apply(v, f, method=model.encode_query))(variables,
                                                                              frames[0])
    probs = jax.nn.softmax(jnp.asarray(np.random.default_rng(1).normal(size=(o + 1, h, w)),
                                       jnp.float32), axis=0)
    rows = []
    for unroll in (1, 10):
        fn = jax.jit(lambda v, f, p, q, r, u=unroll: correct_mask(model, v, f, p, q, r, n_iter=10,
                                                                  unroll=u))
        t0 = time.perf_counter()
        compiled = fn.lower(variables, frames[1], probs, query, ref_probs).compile()
        compile_s = time.perf_counter() - t0
        timing = harness.time_calls(lambda c=compiled: jax.block_until_ready(
            c(variables, frames[1], probs, query, ref_probs)), args.repeats)
        rows.append({"unroll": unroll, "n_iter": 10, "compile_s": round(compile_s, 2),
                     **timing.stats})
        print(rows[-1], flush=True)
    return {"rows": rows}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    harness.add_arch(p, "resnet50")
    harness.add_size(p)
    p.add_argument("--objects", type=int, default=2)
    p.add_argument("--frames", type=int, default=30)
    harness.add_repeats(p, 3, "--unroll-only: timed corrections per setting")
    p.add_argument("--unroll-only", action="store_true")
    harness.add_out(p, "correction_{benchmark}_{backend}.json")
    args = p.parse_args(argv)
    jax.monitoring.register_event_duration_secs_listener(_listener)
    backend = jax.default_backend()
    name = "unroll" if args.unroll_only else "speed"
    run = harness.Run(f"correction_{name}", backend, __file__, argv, settings={
        "arch": args.arch, "size": list(args.size), "objects": args.objects,
        "frames": args.frames, "mem_every": 5, "correction": "n_iter 10, rate 180, every 5",
        "weights": "random (init_stm)", "precision": "highest (float32)"})
    res = bench_unroll(args) if args.unroll_only else bench_propagation(args)
    run.rows.extend(res.pop("rows"))
    args.default_out = args.default_out.replace("{benchmark}", name)
    run.write(harness.out_path(args, backend), **res)


if __name__ == "__main__":
    main()
