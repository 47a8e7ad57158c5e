"""Inference frames/s of STM propagation: vosjax and the official STM-Training test loop, side
by side in one process on the same machine, with the same random weights.

    python -m benchmarks.inference_speed --official /path/to/STM-Training \\
        --arch resnet18 resnet50 --objects 1 3 --size 240 427 --frames 20 --repeats 3 \\
        --correction off on --dtype float32 --device cpu

Per row (arch x objects x correction x dtype): frames/s = (T - 1) / median wall time of a whole
video (frames 1..T-1: memorize, segment, memory update, gradient correction N=10 every 5 when
on), after one warm-up video. The official side is ``test.py``'s loop (growing memory list,
eager autograd correction) driven through the checkout's own ``STAN`` model; ours is
:func:`vosjax.inference.propagate`. vosjax's first (cold) video gives the compile time and the
number of XLA compilations; a second video counts recompilations (0 expected).

``--memory-lengths`` adds peak memory per video length: each (implementation, length) runs in
a fresh subprocess (CPU: peak RSS sampled every 2 ms during a steady-state video, after one
warm-up video; GPU: peak device bytes of that video).

Writes ``benchmarks/results/inference_<backend>.json`` (``--out`` to change).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks import harness as record

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def synthetic_video(t_len: int, objects: int, h: int, w: int, seed: int = 0):
    """``frames [T, H, W, 3]`` float32 (standard normal, as normalised RGB) and one-hot
    ``masks0 [O + 1, H, W]`` of ``objects`` disjoint ellipses on frame 0."""
    rng = np.random.default_rng(seed)
    frames = rng.standard_normal((t_len, h, w, 3)).astype(np.float32)
    yy, xx = np.mgrid[:h, :w]
    labels = np.zeros((h, w), np.int64)
    for o in range(objects):
        cy, cx = (o + 1) * h / (objects + 1), w * (0.3 + 0.4 * rng.random())
        ry, rx = h / (2.5 * (objects + 1)), w / 6
        labels[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = o + 1
    masks0 = (labels[None] == np.arange(objects + 1)[:, None, None]).astype(np.float32)
    return frames, masks0


# ---------------------------------------------------------------------------------------------
# vosjax side
# ---------------------------------------------------------------------------------------------
class Ours:
    """vosjax propagation of one configuration (weights loaded once)."""

    def __init__(self, state_dict, arch, dtype, correction, mem_every, precision, unroll=None):
        import jax.numpy as jnp  # noqa: PLC0415

        from vosjax.convert import load_stm_training  # noqa: PLC0415
        from vosjax.correction import GradientCorrection  # noqa: PLC0415

        model, self.variables = load_stm_training(state_dict, arch, precision=precision)
        self.model = model if dtype == "float32" else model.clone(dtype=jnp.bfloat16)
        self.correction = (GradientCorrection(n_iter=10, rate=180.0, every=mem_every,
                                              unroll=unroll) if correction else None)
        self.mem_every = mem_every

    def put(self, frames, masks0):
        import jax  # noqa: PLC0415

        return jax.device_put(frames), jax.device_put(masks0[1:])

    def run(self, frames, masks):
        """One video; returns ``probs [T, K, H, W]`` (blocked until computed)."""
        import jax  # noqa: PLC0415

        from vosjax.inference import propagate  # noqa: PLC0415

        res = propagate(self.model, self.variables, frames, masks, mem_every=self.mem_every,
                        correction=self.correction)
        jax.block_until_ready((res.probs, res.corrected))
        return res.probs


# ---------------------------------------------------------------------------------------------
# official side
# ---------------------------------------------------------------------------------------------
class Official:
    """The official test loop of one configuration."""

    def __init__(self, models, state_dict, arch, dtype, correction, mem_every, device):
        import torch  # noqa: PLC0415

        from benchmarks.official import stm_training as official  # noqa: PLC0415

        self.torch, self.official = torch, official
        self.device = "cuda" if device == "gpu" else "cpu"
        self.net = official.build_model(models, arch, state_dict, self.device)
        self.autocast = None if dtype == "float32" else torch.bfloat16
        self.loop = 10 if correction else 0
        self.mem_every = mem_every

    def put(self, frames, masks0):
        t = self.torch
        f = t.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))).to(self.device)
        return f, t.from_numpy(masks0[None]).to(self.device)

    def run(self, frames, masks):
        pred = self.official.propagate(self.net, frames, masks, masks.shape[1] - 1,
                                       mem_every=self.mem_every, loop=self.loop, rate=180.0,
                                       autocast_dtype=self.autocast)
        if self.device == "cuda":
            self.torch.cuda.synchronize()
        return pred


def time_videos(impl, frames, masks, repeats: int, count_compiles: bool, warmup_frames: int):
    """A warm-up video (the first ``warmup_frames`` frames: enough to reach every program,
    correction included; vosjax compiles here) then ``repeats`` timed whole videos.
    Returns (result dict, last output)."""
    cold_cc = record.CompileCounter() if count_compiles else None
    t0 = time.perf_counter()
    if cold_cc:
        with cold_cc:
            impl.run(frames[:warmup_frames], masks)
    else:
        impl.run(frames[:warmup_frames], masks)
    cold = time.perf_counter() - t0
    warm_cc = record.CompileCounter() if count_compiles else None
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        if warm_cc:
            with warm_cc:
                out = impl.run(frames, masks)
        else:
            out = impl.run(frames, masks)
        times.append(time.perf_counter() - t0)
    res = {"warmup_video_s": round(cold, 3), "warmup_frames": warmup_frames,
           **record.summary(times)}
    if count_compiles:
        res["compiles_first_video"] = cold_cc.count
        res["xla_compile_s_first_video"] = round(cold_cc.seconds, 3)
        res["compiles_later_videos"] = warm_cc.count
    return res, out


def to_numpy(x):
    if hasattr(x, "detach"):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, np.float32)


# ---------------------------------------------------------------------------------------------
# peak memory probes (one subprocess per implementation and length)
# ---------------------------------------------------------------------------------------------
def probe_memory(args) -> dict:
    """Runs in the child: one warm-up video, then the measured one."""
    state_dict = dict(np.load(args.weights))
    frames, masks0 = synthetic_video(args.frames, args.probe_objects, *args.size)
    if args.probe_memory == "ours":
        impl = Ours(state_dict, args.probe_arch, args.probe_dtype, False, args.mem_every,
                    args.precision)
    else:
        from benchmarks.official import stm_training as official  # noqa: PLC0415

        models, _ = official.import_official(args.official)
        impl = Official(models, state_dict, args.probe_arch, args.probe_dtype, False,
                        args.mem_every, args.device)
    f, m = impl.put(frames, masks0)
    impl.run(f, m)
    if args.device == "gpu":
        if args.probe_memory == "ours":
            import jax  # noqa: PLC0415

            impl.run(f, m)
            stats = jax.devices()[0].memory_stats() or {}
            return {"peak_device_bytes": stats.get("peak_bytes_in_use")}
        torch = impl.torch
        torch.cuda.reset_peak_memory_stats()
        impl.run(f, m)
        return {"peak_device_bytes": torch.cuda.max_memory_allocated()}
    before = record.rss_bytes()
    with record.PeakRSS() as peak:
        impl.run(f, m)
    return {"rss_before_bytes": before, "peak_rss_bytes": peak.peak}


def memory_rows(args, weights_path) -> list[dict]:
    rows = []
    for t_len in args.memory_lengths:
        for impl in ("ours", "official"):
            cmd = [sys.executable, "-m", "benchmarks.inference_speed", "--probe-memory", impl,
                   "--weights", weights_path, "--frames", str(t_len), "--size", *map(str, args.size),
                   "--probe-arch", args.memory_arch, "--probe-objects", str(args.memory_objects),
                   "--probe-dtype", "float32", "--mem-every", str(args.mem_every),
                   "--device", args.device, "--precision", args.precision,
                   "--threads", str(args.threads),
                   "--official", args.official]
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
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
    p.add_argument("--official", required=True, help="checkout of lyxok1/STM-Training (cycle)")
    p.add_argument("--arch", nargs="+", default=["resnet18", "resnet50"])
    p.add_argument("--objects", nargs="+", type=int, default=[1, 3])
    p.add_argument("--size", nargs=2, type=int, default=[240, 427], metavar=("H", "W"),
                   help="working size (480p: 480 854)")
    p.add_argument("--frames", type=int, default=20, help="video length T")
    p.add_argument("--repeats", type=int, default=3, help="timed videos per row (after warm-up)")
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
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="CPU threads of torch (and XLA: 1 disables its thread pool)")
    p.add_argument("--skip-official", action="store_true", help="vosjax rows only")
    p.add_argument("--memory-lengths", nargs="*", type=int, default=[],
                   help="video lengths for the peak-memory probes (none: skip)")
    p.add_argument("--memory-arch", default="resnet18")
    p.add_argument("--memory-objects", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    # internal: memory probe child
    p.add_argument("--probe-memory", choices=["ours", "official"], help=argparse.SUPPRESS)
    p.add_argument("--weights", help=argparse.SUPPRESS)
    p.add_argument("--probe-arch", help=argparse.SUPPRESS)
    p.add_argument("--probe-objects", type=int, help=argparse.SUPPRESS)
    p.add_argument("--probe-dtype", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def setup_backends(device: str, threads: int):
    """Pick the JAX platform and both libraries' CPU thread counts before anything runs
    (``threads == 1``: XLA:CPU without its Eigen thread pool, torch with one thread)."""
    if threads == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                                   + " --xla_cpu_multi_thread_eigen=false"
                                   " intra_op_parallelism_threads=1")
    import jax  # noqa: PLC0415

    if device == "cpu":
        jax.config.update("jax_platforms", "cpu")
    try:
        import torch  # noqa: PLC0415

        torch.set_num_threads(threads)
    except ImportError:
        pass
    return jax.default_backend()


def main(argv=None):
    args = parse_args(argv)
    backend = setup_backends(args.device, args.threads)
    if args.probe_memory:
        print(json.dumps(probe_memory(args)))
        return
    import torch  # noqa: PLC0415

    from benchmarks.official import stm_training as official  # noqa: PLC0415

    out_path = args.out or os.path.join(HERE, "results", f"inference_{backend}.json")
    head = record.header(backend)
    models, _ = official.import_official(args.official)
    h, w = args.size
    # vosjax warms up on a whole video (its programs for this length are compiled then);
    # the official loop on a short one (one-time allocator / oneDNN set-up).
    warmup = min(args.frames, args.warmup_frames or args.mem_every + 1)
    rows, weights = [], {}
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
                           "load_average_start": record.load_average()}
                    ours = Ours(weights[arch], arch, dtype, corr == "on", args.mem_every,
                                args.precision, args.unroll)
                    res, ours_out = time_videos(ours, *ours.put(frames, masks0), args.repeats,
                                                True, args.frames)
                    row["ours"] = {**res, "fps": round((args.frames - 1) / res["median_s"], 3)}
                    if not args.skip_official:
                        off = Official(models, weights[arch], arch, dtype, corr == "on",
                                       args.mem_every, args.device)
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
                    row["load_average_end"] = record.load_average()
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    memory = []
    if args.memory_lengths:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "weights.npz")
            sd = weights.get(args.memory_arch) or official.random_state_dict(
                models, args.memory_arch, seed=args.seed)
            np.savez(path, **sd)
            memory = memory_rows(args, path)
    result = {**head, "benchmark": "inference", "versions": record.versions(),
              "torch_threads": torch.get_num_threads(),
              "official_checkout": os.path.abspath(args.official),
              "settings": {"n_iter": 10, "rate": 180.0, "every": args.mem_every,
                           "precision": args.precision, "unroll": args.unroll,
                           "threads": args.threads,
                           "parity_note": "with random weights the correction (rate 180) is "
                           "chaotic: masks leave [0, 1] and float rounding differences grow "
                           "after the first corrected frame; one step at rate 180 and ten at "
                           "rate 1 agreed to 1e-6 / 3e-4 (R18, 64x96, checked by hand)",
                           "weights": "random, BN statistics calibrated on random input"},
              "rows": rows, "memory": memory, "load_average_end": record.load_average()}
    record.write_json(out_path, result)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
