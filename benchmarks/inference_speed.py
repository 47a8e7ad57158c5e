"""Inference frames/s of STM propagation: vosjax and the official STM-Training test loop, side
by side in one process on the same machine, with the same random weights.

    python -m benchmarks.inference_speed --official /path/to/STM-Training \\
        --arch resnet18 resnet50 --objects 1 3 --size 240x427 --frames 20 --repeats 3 \\
        --correction off on --dtype float32 --device cpu

Per row (arch x objects x correction x dtype): frames/s = (T - 1) / median wall time of a whole
video (frames 1..T-1: memorize, segment, memory update, gradient correction N=10 every 5 when
on), after one warm-up video. The official side is ``test.py``'s loop (growing memory list,
eager autograd correction) driven through the checkout's own ``STAN`` model; ours is
:func:`vosjax.inference.propagate`. vosjax's warm-up (cold) video gives the compile time and
the number of XLA compilations; the timed videos count recompilations (0 expected).

``--memory-lengths`` adds peak memory per video length (the result's ``memory`` list): each
(implementation, length) runs in a fresh subprocess (CPU: peak RSS sampled every 2 ms during a
steady-state video, after one warm-up video; GPU: peak device bytes of that video).

Writes ``benchmarks/results/inference_<backend>.json`` (``--out`` to change).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from benchmarks import harness
from benchmarks.workloads import VosjaxInference, synthetic_video, to_numpy


def time_videos(impl, frames, masks, repeats: int, count_compiles: bool, warmup_frames: int):
    """A warm-up video (the first ``warmup_frames`` frames: enough to reach every program,
    correction included; vosjax compiles here) then ``repeats`` timed whole videos."""
    timing = harness.time_calls(lambda: impl.run(frames, masks), repeats,
                                warmup=lambda: impl.run(frames[:warmup_frames], masks),
                                count_compiles=count_compiles)
    return {**timing.stats, "warmup_frames": warmup_frames}, timing.last


# ---------------------------------------------------------------------------------------------
# peak memory probes (one subprocess per implementation and length)
# ---------------------------------------------------------------------------------------------
def probe_memory(args) -> dict:
    """Runs in the child: one warm-up video, then the measured one."""
    from benchmarks.official import stm_training as official

    state_dict = dict(np.load(args.weights))
    frames, masks0 = synthetic_video(args.frames, args.probe_objects, *args.size)
    if args.probe_memory == "ours":
        impl = VosjaxInference(state_dict, args.probe_arch, args.probe_dtype, False,
                               args.mem_every, args.precision)
    else:
        models, _ = official.import_official(args.official)
        impl = official.OfficialInference(models, state_dict, args.probe_arch, args.probe_dtype,
                                          False, args.mem_every, args.device)
    f, m = impl.put(frames, masks0)
    impl.run(f, m)
    if args.device == "gpu":
        if args.probe_memory == "ours":
            import jax

            impl.run(f, m)
            stats = jax.devices()[0].memory_stats() or {}
            return {"peak_device_bytes": stats.get("peak_bytes_in_use")}
        torch = impl.torch
        torch.cuda.reset_peak_memory_stats()
        impl.run(f, m)
        return {"peak_device_bytes": torch.cuda.max_memory_allocated()}
    before = harness.rss_bytes()
    with harness.PeakRSS() as peak:
        impl.run(f, m)
    return {"rss_before_bytes": before, "peak_rss_bytes": peak.peak}


def memory_rows(args, weights_path) -> list[dict]:
    rows = []
    h, w = args.size
    for t_len in args.memory_lengths:
        for impl in ("ours", "official"):
            cmd = [sys.executable, "-m", "benchmarks.inference_speed", "--probe-memory", impl,
                   "--weights", weights_path, "--frames", str(t_len), "--size", f"{h}x{w}",
                   "--probe-arch", args.memory_arch, "--probe-objects", str(args.memory_objects),
                   "--probe-dtype", "float32", "--mem-every", str(args.mem_every),
                   "--device", args.device, "--precision", args.precision,
                   "--threads", str(args.threads), "--official", args.official]
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=harness.REPO)
            if out.returncode != 0:
                raise RuntimeError(f"memory probe failed: {' '.join(cmd)}\n{out.stderr[-3000:]}")
            res = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append({"impl": impl, "frames": t_len, "arch": args.memory_arch,
                         "objects": args.memory_objects, **res})
            print(f"memory {impl:8s} T={t_len}: {res}", flush=True)
    return rows


# ---------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    harness.add_official(p)
    harness.add_arch(p, ["resnet18", "resnet50"], multiple=True)
    p.add_argument("--objects", nargs="+", type=int, default=[1, 3])
    harness.add_size(p, help="working size (480p: 480x854)")
    p.add_argument("--frames", type=int, default=20, help="video length T")
    harness.add_repeats(p, 3, "timed videos per row")
    p.add_argument("--warmup-frames", type=int, default=None,
                   help="length of the official side's warm-up video (default mem_every + 1: "
                   "reaches the correction); vosjax warms up on the whole video")
    p.add_argument("--rows", nargs="*", default=None, metavar="ARCH:OBJECTS:CORRECTION",
                   help="explicit rows, e.g. resnet18:3:off resnet50:1:on (instead of the "
                   "--arch x --objects x --correction grid)")
    p.add_argument("--correction", nargs="+", choices=["off", "on"], default=["off", "on"])
    p.add_argument("--dtype", nargs="+", choices=["float32", "bfloat16"], default=["float32"])
    p.add_argument("--mem-every", type=int, default=5)
    p.add_argument("--precision", default="highest",
                   help="vosjax float32 conv/matmul precision (highest | default)")
    p.add_argument("--unroll", type=int, default=None,
                   help="correction loop unroll (default: vosjax's per-backend choice)")
    harness.add_device(p)
    p.add_argument("--skip-official", action="store_true", help="vosjax rows only")
    p.add_argument("--memory-lengths", nargs="*", type=int, default=[],
                   help="video lengths for the peak-memory probes (none: skip)")
    p.add_argument("--memory-arch", default="resnet18", choices=harness.ARCHS)
    p.add_argument("--memory-objects", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    harness.add_out(p, "inference_{backend}.json")
    # internal: memory probe child
    p.add_argument("--probe-memory", choices=["ours", "official"], help=argparse.SUPPRESS)
    p.add_argument("--weights", help=argparse.SUPPRESS)
    p.add_argument("--probe-arch", help=argparse.SUPPRESS)
    p.add_argument("--probe-objects", type=int, help=argparse.SUPPRESS)
    p.add_argument("--probe-dtype", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    backend = harness.setup_backends(args.device, args.threads)
    if args.probe_memory:
        print(json.dumps(probe_memory(args)))
        return
    import torch

    from benchmarks.official import stm_training as official

    models, _ = official.import_official(args.official)
    run = harness.Run("inference", backend, __file__, argv, settings={
        "n_iter": 10, "rate": 180.0, "every": args.mem_every, "precision": args.precision,
        "unroll": args.unroll, "threads": args.threads,
        "parity_note": "with random weights the correction (rate 180) is chaotic: masks leave "
        "[0, 1] and float rounding differences grow after the first corrected frame; one step "
        "at rate 180 and ten at rate 1 agreed to 1e-6 / 3e-4 (R18, 64x96, checked by hand)",
        "weights": "random, BN statistics calibrated on random input",
        "torch_threads": torch.get_num_threads(),
        "official_checkout": os.path.abspath(args.official)})
    h, w = args.size
    # vosjax warms up on a whole video (its programs for this length are compiled then);
    # the official loop on a short one (one-time allocator / oneDNN set-up).
    warmup = min(args.frames, args.warmup_frames or args.mem_every + 1)
    weights = {}
    if args.rows is not None:
        args.arch = list(dict.fromkeys(r.split(":")[0] for r in args.rows))
        args.objects = sorted({int(r.split(":")[1]) for r in args.rows})
    for arch in args.arch:
        weights[arch] = official.random_state_dict(models, arch, seed=args.seed)
        for objects in args.objects:
            frames, masks0 = synthetic_video(args.frames, objects, h, w, seed=args.seed)
            for corr in args.correction:
                if args.rows is not None and f"{arch}:{objects}:{corr}" not in args.rows:
                    continue
                for dtype in args.dtype:
                    row = {"arch": arch, "objects": objects, "size": [h, w],
                           "frames": args.frames, "mem_every": args.mem_every,
                           "correction": corr == "on", "dtype": dtype,
                           "load_average": {"start": harness.load_average()}}
                    ours = VosjaxInference(weights[arch], arch, dtype, corr == "on",
                                           args.mem_every, args.precision, args.unroll)
                    res, ours_out = time_videos(ours, *ours.put(frames, masks0), args.repeats,
                                                True, args.frames)
                    row["ours"] = {**res, "fps": round((args.frames - 1) / res["median_s"], 3)}
                    if not args.skip_official:
                        off = official.OfficialInference(models, weights[arch], arch, dtype,
                                                         corr == "on", args.mem_every,
                                                         args.device)
                        res, off_out = time_videos(off, *off.put(frames, masks0),
                                                   args.repeats, False, warmup)
                        row["official"] = {**res,
                                           "fps": round((args.frames - 1) / res["median_s"], 3)}
                        row["speedup"] = round(row["ours"]["fps"] / row["official"]["fps"], 3)
                        diff = np.abs(to_numpy(ours_out) - to_numpy(off_out))
                        row["max_abs_diff_probs"] = float(diff.max())
                        # frames before the first corrected mask is memorized
                        row["max_abs_diff_probs_to_first_correction"] = float(
                            diff[:args.mem_every + 1].max())
                    row["load_average"]["end"] = harness.load_average()
                    run.add_row(row)
    memory = []
    if args.memory_lengths:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "weights.npz")
            sd = weights.get(args.memory_arch) or official.random_state_dict(
                models, args.memory_arch, seed=args.seed)
            np.savez(path, **sd)
            memory = memory_rows(args, path)
    run.write(harness.out_path(args, backend), memory=memory)


if __name__ == "__main__":
    main()
