"""Before/after measurements of four speed-ups (one JSON per speed-up; random weights).

    python -m benchmarks.speedups objects      # objects batched vs one object at a time
    python -m benchmarks.speedups memory-read  # fused einsum read vs the official bmm form
    python -m benchmarks.speedups donation     # donated vs copied state (training, inference)
    python -m benchmarks.speedups png --davis ../shared/data/davis2016-mini  # background writes

Each writes ``benchmarks/results/speedup_<name>_<backend>.json`` (``--out`` overrides), rows
of the before/after shape of :func:`benchmarks.harness.speedup_row`. The "before" and "after"
programs are timed alternately, ``--repeats`` times each after a warm-up call, so machine load
touches both alike; every row also records that both give the same numbers
(``max_abs_diff``). Donation compares fresh processes (peak memory is per process).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

from benchmarks import harness


def _max_diff(x, y) -> float:
    import numpy as np

    return float(np.max(np.abs(np.asarray(x, np.float32) - np.asarray(y, np.float32))))


# ---------------------------------------------------------------------------------------------
# objects: batched vs one at a time
# ---------------------------------------------------------------------------------------------
def bench_objects(args) -> list[dict]:
    """One propagation step (memorize the previous frame, read, decode) for O objects: the
    objects as one batch axis (vosjax) vs a loop of O single-object calls in the same jitted
    program (the query frame is encoded once in both)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from benchmarks.workloads import synthetic_video
    from vosjax.models.stm import STM, init_stm

    rows = []
    h, w = args.size
    model = STM(arch=args.arch)
    variables = init_stm(model, jax.random.PRNGKey(0), 64, 64)
    rng = np.random.default_rng(0)
    p = math.ceil(h / 16) * math.ceil(w / 16)
    for objects in args.objects:
        frames, masks0 = synthetic_video(2, objects, h, w)
        prev, frame = jnp.asarray(frames[0]), jnp.asarray(frames[1])
        masks = jnp.asarray(masks0[1:])
        n = args.memory_frames * p
        keys = jnp.asarray(rng.standard_normal((objects, n, model.keydim)), jnp.float32)
        values = jnp.asarray(rng.standard_normal((objects, n, model.valdim)), jnp.float32)

        def step(v, prev, masks, frame, keys, values, batched):
            query = model.apply(v, frame, method=model.encode_query)
            outs = []
            groups = [slice(None)] if batched else [slice(o, o + 1) for o in range(objects)]
            for g in groups:
                k, val = model.apply(v, prev, masks[g], method=model.memorize)
                kk = jnp.concatenate([keys[g], k], axis=1)
                vv = jnp.concatenate([values[g], val], axis=1)
                outs.append(model.apply(v, query, kk, vv, (h, w), method=model.segment_query))
            return jnp.concatenate(outs)

        fns = {b: jax.jit(lambda *a, b=b: step(*a, batched=b)) for b in (False, True)}
        inputs = (variables, prev, masks, frame, keys, values)
        before, after, out_b, out_a = harness.before_after(
            lambda: jax.block_until_ready(fns[False](*inputs)),
            lambda: jax.block_until_ready(fns[True](*inputs)), args.repeats)
        rows.append(harness.speedup_row(
            f"{args.arch} {h}x{w}, {objects} objects, memory {args.memory_frames}+1 frames, "
            "one step", "loop over objects", "objects batched", before, after,
            max_abs_diff=_max_diff(out_b, out_a), arch=args.arch, size=[h, w],
            objects=objects, memory_frames=args.memory_frames,
            load_average={"end": harness.load_average()}))
        print(json.dumps(rows[-1]), flush=True)
    return rows


# ---------------------------------------------------------------------------------------------
# memory read: one einsum pair vs the official formulation
# ---------------------------------------------------------------------------------------------
def official_style_read(keys_cf, values_cf, q_key_cf):
    """The official read, literally: channel-first memory ``keys [O, Ck, N]``, ``values
    [O, Cv, N]``, the query key expanded to every object ``[O, Ck, M]``, two batched matmuls
    with a transpose in between; returns ``[O, M, Cv]`` like :func:`memory_read`."""
    import jax
    import jax.numpy as jnp

    o, ck, _ = keys_cf.shape
    q = jnp.broadcast_to(q_key_cf, (o,) + q_key_cf.shape[1:])
    p = jnp.matmul(jnp.transpose(keys_cf, (0, 2, 1)), q) / math.sqrt(ck)    # [O, N, M]
    p = jax.nn.softmax(p, axis=1)
    return jnp.transpose(jnp.matmul(values_cf, p), (0, 2, 1))


def bench_memory_read(args) -> list[dict]:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from vosjax.models.stm import memory_read

    rows = []
    rng = np.random.default_rng(0)
    fused = jax.jit(lambda k, v, q: memory_read(k, v, q)[0])
    unfused = jax.jit(official_style_read)
    for size in args.read_sizes:
        h, w = (int(s) for s in size.split("x"))
        p = math.ceil(h / 16) * math.ceil(w / 16)
        for frames in args.read_frames:
            o, n = args.read_objects, frames * p
            k = jnp.asarray(rng.standard_normal((o, n, 128)) * 0.1, jnp.float32)
            v = jnp.asarray(rng.standard_normal((o, n, 512)), jnp.float32)
            q = jnp.asarray(rng.standard_normal((p, 128)) * 0.1, jnp.float32)
            kcf, vcf = jnp.transpose(k, (0, 2, 1)), jnp.transpose(v, (0, 2, 1))
            qcf = jnp.transpose(q)[None]
            before, after, out_b, out_a = harness.before_after(
                lambda: jax.block_until_ready(unfused(kcf, vcf, qcf)),
                lambda: jax.block_until_ready(fused(k, v, q)), args.repeats)
            rows.append(harness.speedup_row(
                f"{o} objects, {size} (M = {p} query positions), memory {frames} frames "
                f"(N = {n})", "official bmm form", "einsum pair", before, after,
                max_abs_diff=_max_diff(out_a, out_b), size=[h, w], objects=o,
                memory_frames=frames, load_average={"end": harness.load_average()}))
            print(json.dumps(rows[-1]), flush=True)
    return rows


# ---------------------------------------------------------------------------------------------
# donation (each variant in a fresh process: peak RSS is per process)
# ---------------------------------------------------------------------------------------------
def _device_peak_mib():
    """Peak bytes in use on the accelerator (MiB), when its backend reports memory stats."""
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else round(peak / 2 ** 20, 1)


def probe_train(donate: bool, args) -> dict:
    """STM-cycle training updates (3-frame clips) with the state donated or copied."""
    import jax
    import jax.numpy as jnp

    from benchmarks.workloads import synthetic_clips
    from vosjax.models.stm import STM, init_stm
    from vosjax.training.optim import make_optimizer
    from vosjax.training.sharding import batch_sharding, make_mesh
    from vosjax.training.state import TrainState
    from vosjax.training.step import jit_train_step, stm_loss_fn

    h, w = args.size
    model = STM(arch=args.arch)
    tx = make_optimizer(1e-5)
    mesh = make_mesh(devices=jax.devices()[:1])

    def make_state(rng):
        v = init_stm(model, rng, 64, 64)
        return TrainState(step=jnp.zeros((), jnp.int32), params=v["params"],
                          batch_stats=v["batch_stats"], opt_state=tx.init(v["params"]),
                          rng=rng)

    abstract = jax.eval_shape(make_state, jax.random.PRNGKey(0))
    step, shardings = jit_train_step(stm_loss_fn(model, cycle=True), tx, mesh, abstract,
                                     donate=donate)
    state = jax.jit(make_state, out_shardings=shardings)(jax.random.PRNGKey(0))
    frames, masks, num = synthetic_clips(args.batch, 3, 2, 2, h, w)
    sh = batch_sharding(mesh)
    batch = {k: jax.device_put(x, sh) for k, x in
             {"frames": frames, "masks": masks, "num_objects": num}.items()}
    state_mib = sum(x.nbytes for x in jax.tree_util.tree_leaves(state)) / 2 ** 20
    losses, carry = [], [state]

    def update():
        carry[0], metrics = step(carry[0], batch)
        losses.append(float(metrics["loss"]))       # waits for the update
    before = harness.rss_bytes()
    with harness.PeakRSS() as peak:               # the first update (compiling) included
        timing = harness.time_calls(update, args.steps)
    return {"state_mib": round(state_mib, 1), "rss_before_mib": round(before / 2 ** 20, 1),
            "peak_rss_mib": round(peak.peak / 2 ** 20, 1), "losses": losses,
            "peak_device_mib": _device_peak_mib(), **timing.stats}


def probe_inference(donate: bool, args) -> dict:
    """Propagation of a synthetic video with the per-frame step donating its state (vosjax)
    or copying it (the same step jitted without ``donate_argnums``)."""
    import jax
    import numpy as np

    from benchmarks.workloads import synthetic_video
    from vosjax.inference import propagate, propagation
    from vosjax.models.stm import STM, init_stm

    if not donate:   # the library's step, minus the donation
        propagation._step_jit = jax.jit(propagation.propagation_step,
                                        static_argnames=("model", "cfg"))
    h, w = args.size
    model = STM(arch=args.arch)
    variables = init_stm(model, jax.random.PRNGKey(0), 64, 64)
    frames, masks = synthetic_video(args.frames, 1, h, w)
    propagate(model, variables, frames, masks[1:])     # compile
    before = harness.rss_bytes()
    with harness.PeakRSS() as peak:
        timing = harness.time_calls(
            lambda: propagate(model, variables, frames, masks[1:]).probs, args.repeats)
    return {"rss_before_mib": round(before / 2 ** 20, 1),
            "peak_rss_mib": round(peak.peak / 2 ** 20, 1), "peak_device_mib": _device_peak_mib(),
            "probs_checksum": float(np.sum(np.square(timing.last[:, 1:]))), **timing.stats}


def bench_donation(args) -> list[dict]:
    rows = []
    h, w = args.size
    for kind in args.donation_kinds:
        res = {}
        for rep in range(2):                  # before, after, before, after
            for donate in (False, True):
                cmd = [sys.executable, "-m", "benchmarks.speedups", "donation", "--probe", kind,
                       "--donate", str(int(donate)), "--arch", args.arch, "--size", f"{h}x{w}",
                       "--steps", str(args.steps), "--batch", str(args.batch),
                       "--frames", str(args.frames), "--repeats", str(args.repeats)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                                     cwd=harness.REPO)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                res.setdefault(donate, []).append(r)
        before, after = res[False], res[True]
        b = min(r["median_s"] for r in before)
        a = min(r["median_s"] for r in after)
        if kind == "train":
            setting = f"{args.arch} {h}x{w}, training update, batch {args.batch}, 2 objects"
            check = max(abs(x - y) for x, y in zip(before[0]["losses"], after[0]["losses"]))
        else:
            setting = f"{args.arch} {h}x{w}, propagation of a {args.frames}-frame video"
            check = abs(before[0]["probs_checksum"] - after[0]["probs_checksum"])
        peak_device = ({"peak_device_mib": {
            "before": max(r["peak_device_mib"] for r in before),
            "after": max(r["peak_device_mib"] for r in after)}}
            if before[0].get("peak_device_mib") is not None else {})
        rows.append(harness.speedup_row(
            setting, "state copied", "state donated", {"median_s": b, "runs": before},
            {"median_s": a, "runs": after}, max_abs_diff=check, kind=kind,
            peak_rss_mib={"before": max(r["peak_rss_mib"] for r in before),
                          "after": max(r["peak_rss_mib"] for r in after)},
            **peak_device, load_average={"end": harness.load_average()},
            note="before/after: best of two fresh processes' medians"))
        print(json.dumps(rows[-1]), flush=True)
    return rows


# ---------------------------------------------------------------------------------------------
# png: writing and scoring in the background vs in line
# ---------------------------------------------------------------------------------------------
def bench_png(args) -> list[dict]:
    """``run_videos`` over the DAVIS clips with PNGs written: ``background=False`` vs True."""
    import jax

    from configs import demo
    from vosjax.data.davis import DavisDataset
    from vosjax.evaluation.runner import run_videos
    from vosjax.families import build_model
    from vosjax.inference.options import STMOptions
    from vosjax.models.stm import STM, init_stm

    if not args.davis or not os.path.isdir(args.davis):
        raise SystemExit(f"--davis {args.davis!r}: not a DAVIS folder (davis2016-mini works)")
    ds = DavisDataset(args.davis, year="2016", split=args.split)
    videos = [ds[i] for i in range(len(ds))]
    frames = sum(v.num_frames for v in videos)
    models = [("demo ResNet-10 64x96", build_model(demo.get_config().model), (64, 96))]
    if not args.skip_large:
        models.append((f"{args.arch} {args.size[0]}x{args.size[1]}", STM(arch=args.arch),
                       tuple(args.size)))
    rows = []
    for name, model, size in models:
        variables = init_stm(model, jax.random.PRNGKey(0), 64, 64)
        opts = STMOptions(size=size)
        with tempfile.TemporaryDirectory() as tmp:
            reports = {}

            def run(bg):     # called right away by alternate(): no late-binding issue
                reports[bg] = run_videos(model, variables, videos, opts, background=bg,
                                         output_dir=os.path.join(tmp, str(bg)))
            before, after, _, _ = harness.before_after(lambda: run(False), lambda: run(True),
                                                       args.repeats)
            prop = {("background" if bg else "in_line"): round(r.seconds, 3)
                    for bg, r in reports.items()}
            same = reports[False].scores.global_row() == reports[True].scores.global_row()
        rows.append(harness.speedup_row(
            f"{name}, {len(videos)} DAVIS-2016 videos ({frames} frames), PNGs at 480p + scoring",
            "write + score in line", "write + score in a worker thread", before, after,
            max_abs_diff=0.0 if same else float("nan"), propagation_s_last_run=prop,
            load_average={"end": harness.load_average()}))
        print(json.dumps(rows[-1]), flush=True)
    return rows


BENCHES = {"objects": bench_objects, "memory-read": bench_memory_read,
           "donation": bench_donation, "png": bench_png}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("which", choices=sorted(BENCHES))
    harness.add_arch(p, "resnet18")
    harness.add_size(p)
    harness.add_repeats(p, 5)
    p.add_argument("--objects", nargs="+", type=int, default=[1, 3])
    p.add_argument("--memory-frames", type=int, default=4)
    p.add_argument("--read-sizes", nargs="+", default=["240x427", "480x854"])
    p.add_argument("--read-frames", nargs="+", type=int, default=[1, 4, 8])
    p.add_argument("--read-objects", type=int, default=3)
    p.add_argument("--donation-kinds", nargs="+", choices=["train", "inference"],
                   default=["train", "inference"])
    p.add_argument("--steps", type=int, default=3, help="timed training updates (donation)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--frames", type=int, default=20, help="video length (donation)")
    p.add_argument("--davis", default=None, help="DAVIS root for `png`")
    p.add_argument("--split", default="val")
    p.add_argument("--skip-large", action="store_true", help="png: the demo model only")
    p.add_argument("--probe", choices=["train", "inference"], help=argparse.SUPPRESS)
    p.add_argument("--donate", type=int, help=argparse.SUPPRESS)
    harness.add_out(p, "speedup_{which}_{backend}.json")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.probe:
        fn = probe_train if args.probe == "train" else probe_inference
        print(json.dumps(fn(bool(args.donate), args)), flush=True)
        return
    import jax

    backend = jax.default_backend()
    run = harness.Run(f"speedup_{args.which}", backend, __file__, argv)
    run.rows.extend(BENCHES[args.which](args))
    args.default_out = args.default_out.replace("{which}", args.which.replace("-", "_"))
    run.write(harness.out_path(args, backend))


if __name__ == "__main__":
    main()
