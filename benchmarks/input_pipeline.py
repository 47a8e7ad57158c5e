"""The training input pipeline (grain workers, uint8 batches): host clips/s, the bytes a step
sends to the device, and the demo config's step fed by the pipeline vs a device-resident batch.

    python -m benchmarks.input_pipeline --davis ../shared/data/davis2016-mini \
        --out benchmarks/results/input_pipeline_cpu.json

Sections (``--sections``, default all):

* ``host``: clips of the training stream at 240x427 with the paper's augmentation
  (configs/stm_cycle.py) from DAVIS 480p JPEGs, and from the same frames at 720p (upscaled to
  1280x720, re-encoded as JPEG quality 90, masks upscaled NEAREST, in a temporary DAVIS
  folder). ``per_worker``: one process making clips one after another (what a worker does),
  the median per clip over ``--clips`` clips, of decoding its 3 JPEGs alone, and of its object
  count (``num_objects``, what the bucketed stream's plan costs per global clip);
  ``pipeline``: :func:`vosjax.training.input_pipeline.host_batches` with 1 and 2 grain worker
  processes, batches of 8 clips, clips/s over ``--batches`` batches after the first two.
* ``bytes``: one batch of 8 clips at 240x427 with 5 object slots (the R50 config): what the
  step receives now (uint8 frames, uint8 label maps, int32 counts) and what it received before
  (float32 normalised frames and float32 one-hot masks of 6 channels, made here from the same
  batch by the device prepare).
* ``step``: configs/demo.py's training step (one device) fed by the pipeline (its
  ``num_workers`` and ``prefetch``: the next batch taken from the pipeline, sent, and the
  step run) against the same step on one raw batch already on the device (``resident``), and
  on that batch already prepared (``resident_prepared``: no photometric augmentation,
  normalisation or one-hot in the step, what the device work of ``prepare`` costs). Each
  step is timed to its end (blocking); the three alternate step by step, ``--steps`` rounds
  after ``--warmup`` pipeline steps (the first epoch, in which the worker renders and caches
  the synthetic videos), so machine load affects them alike; medians.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from benchmarks import harness
from benchmarks.workloads import count_then_clip, davis_timing_split

HERE = os.path.dirname(os.path.abspath(__file__))

SECTIONS = ("host", "bytes", "step")


def make_720p(root, out):
    """A copy of the DAVIS folder ``root`` (480p) with frames and masks at 1280x720, as
    ``Full-Resolution`` (DAVIS's name for its larger frames)."""
    from PIL import Image

    year, split = davis_timing_split(root)
    for kind, ext in (("JPEGImages", ".jpg"), ("Annotations", ".png")):
        src_root = os.path.join(root, kind, "480p")
        for seq in sorted(os.listdir(src_root)):
            dst = os.path.join(out, kind, "Full-Resolution", seq)
            os.makedirs(dst, exist_ok=True)
            for name in sorted(os.listdir(os.path.join(src_root, seq))):
                with Image.open(os.path.join(src_root, seq, name)) as im:
                    if ext == ".jpg":
                        im.convert("RGB").resize((1280, 720), Image.Resampling.BICUBIC).save(
                            os.path.join(dst, name), quality=90)
                    else:
                        im.resize((1280, 720), Image.Resampling.NEAREST).save(
                            os.path.join(dst, name))
    os.makedirs(os.path.join(out, "ImageSets", year), exist_ok=True)
    with open(os.path.join(root, "ImageSets", year, f"{split}.txt")) as f, \
            open(os.path.join(out, "ImageSets", year, f"{split}.txt"), "w") as g:
        g.write(f.read())
    return out


def stream_for(root, resolution, batch, seed=0):
    """The R50 config's plain clip stream over a DAVIS folder (240x427, paper augmentation)."""
    from configs import stm_cycle
    from vosjax.data.augment import AugmentConfig
    from vosjax.data.davis import DavisDataset
    from vosjax.data.sampler import ClipSampler, SamplerConfig

    year, split = davis_timing_split(root)
    d = stm_cycle.get_config("r50").data
    cfg = SamplerConfig(num_frames=d.clip_len, max_objects=d.max_objects,
                        num_slots=d.num_slots, size=tuple(d.size),
                        augment=AugmentConfig(**dict(d.augment)))
    videos = DavisDataset(root, year=year, split=split, resolution=resolution)
    return ClipSampler(videos, cfg, seed=seed, global_batch_size=batch, process_index=0,
                       process_count=1)


def per_worker(stream, clips):
    """One process making clips in sequence: median seconds per clip, of its JPEG decoding
    (the clip's 3 frames decoded again, alone) and of its object count from the reference
    annotation (what a bucketed stream's planner spends per global clip)."""
    stream.clip(0)                                     # warm the readers
    t_clip, t_decode, t_count = [], [], []
    for g in range(1, clips + 1):
        c, count_s, clip_s = count_then_clip(stream, g)
        t_count.append(count_s)
        t_clip.append(clip_s)
        epoch, pos = divmod(g, stream.clips_per_epoch)
        d, v = stream._items[stream._order(epoch)[pos]]
        video = stream._video(int(d), int(v))
        t = time.perf_counter()
        video.load_frames(c.frame_indices)
        t_decode.append(time.perf_counter() - t)
    med = statistics.median(t_clip)
    return {"clips": clips, "median_s_per_clip": med, "clips_per_s": 1 / med,
            "median_s_decode_3_jpegs": statistics.median(t_decode),
            "median_s_count": statistics.median(t_count),
            "mean_s_per_clip": statistics.mean(t_clip)}


def pipeline(stream, workers, batches):
    """clips/s through ``host_batches`` with ``workers`` processes (after 2 warm batches)."""
    from vosjax.training.input_pipeline import host_batches

    it = host_batches(stream, 0, batches + 2, num_workers=workers, prefetch=2)
    try:
        t0 = time.perf_counter()
        for _ in range(2):
            next(it)
        t_first = time.perf_counter() - t0
        t = time.perf_counter()
        n = 0
        for _ in range(batches):
            n += len(next(it).arrays["num_objects"])
        dt = time.perf_counter() - t
    finally:
        it.close()
    return {"workers": workers, "batches": batches, "clips": n, "seconds": dt,
            "clips_per_s": n / dt, "clips_per_s_per_worker": n / dt / max(workers, 1),
            "first_two_batches_s": t_first}


def section_host(args):
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        sources = {"480p": (args.davis, "480p")}
        t = time.perf_counter()
        sources["720p"] = (make_720p(args.davis, os.path.join(tmp, "davis720")),
                           "Full-Resolution")
        out["made_720p_s"] = time.perf_counter() - t
        for name, (root, res) in sources.items():
            s = stream_for(root, res, args.batch)
            hw = s._video(0, 0).hw
            row = {"frame_hw": list(hw), "size": list(s.config.size),
                   "per_worker": per_worker(s, args.clips),
                   "pipeline": [pipeline(s, w, args.batches) for w in args.workers]}
            p = row["pipeline"]
            if len(p) >= 2:
                row["scaling_2_over_1"] = p[1]["clips_per_s"] / p[0]["clips_per_s"]
            out[name] = row
            print(name, {k: v for k, v in row["per_worker"].items()},
                  [(r["workers"], round(r["clips_per_s"], 1)) for r in p], flush=True)
    return out


def section_bytes(args):
    import jax

    from vosjax.data.device import clip_batch_fn

    s = stream_for(args.davis, "480p", 8)
    hb = s.batch(0)
    after = {k: {"shape": list(v.shape), "dtype": str(v.dtype), "bytes": int(v.nbytes)}
             for k, v in hb.arrays.items()}
    prepared = jax.jit(clip_batch_fn(s.config.augment), static_argnums=2)(
        hb.arrays, jax.random.PRNGKey(0), hb.num_slots)
    before = {k: {"shape": list(v.shape), "dtype": str(v.dtype),
                  "bytes": int(v.size * v.dtype.itemsize)} for k, v in prepared.items()}
    total = lambda d: sum(x["bytes"] for x in d.values())  # noqa: E731
    return {"batch": 8, "num_slots": hb.num_slots, "before_float32": before,
            "after_uint8": after, "before_bytes": total(before), "after_bytes": total(after),
            "before_MiB": total(before) / 2 ** 20, "after_MiB": total(after) / 2 ** 20,
            "ratio": total(before) / total(after)}


def section_step(args):
    import jax

    from configs import demo
    from vosjax.families import build_model
    from vosjax.families import get as get_family
    from vosjax.training import sharding as shd
    from vosjax.training.input_pipeline import host_batches
    from vosjax.training.loop import build_optimizer
    from vosjax.training.step import jit_init_state, jit_train_step

    config = demo.get_config()
    mesh = shd.make_mesh(1, jax.devices()[:1])
    task = get_family(config.model.name)
    model, tx = build_model(config.model), build_optimizer(config.train)
    init_fn, _, abstract = jit_init_state(task.init_variables(model, config), tx, mesh)
    loss = task.loss(model, config)
    prepare = task.prepare(config)
    step_fn, _ = jit_train_step(loss, tx, mesh, abstract, prepare=prepare)
    plain_fn, _ = jit_train_step(loss, tx, mesh, abstract)
    sharding = shd.batch_sharding(mesh)
    stream = task.batches(config)
    state = init_fn(jax.random.PRNGKey(config.seed))

    first = stream.batch(0)
    raw = shd.global_batch(first.arrays, sharding)
    ready = jax.jit(prepare, static_argnums=2)(raw, jax.random.PRNGKey(1), first.num_slots)

    def run(fn, *a):
        nonlocal state
        t = time.perf_counter()
        state, m = fn(state, *a)
        jax.block_until_ready(m["loss"])
        return time.perf_counter() - t

    def piped(it):
        t = time.perf_counter()
        hb = next(it)
        return time.perf_counter() - t + run(step_fn, shd.global_batch(hb.arrays, sharding),
                                             hb.num_slots)

    run(step_fn, raw, first.num_slots)                    # compile both
    run(plain_fn, ready)
    it = host_batches(stream, 0, args.warmup + args.steps, num_workers=config.data.num_workers,
                      prefetch=config.data.get("prefetch", 2))
    times = {"pipeline": [], "resident": [], "resident_prepared": []}
    try:
        warm = [piped(it) for _ in range(args.warmup)]
        for _ in range(args.steps):                       # alternated: load affects all alike
            times["pipeline"].append(piped(it))
            times["resident"].append(run(step_fn, raw, first.num_slots))
            times["resident_prepared"].append(run(plain_fn, ready))
    finally:
        it.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"config": "configs/demo.py", "arch": config.model.arch,
            "size": list(config.data.size), "batch": config.train.batch_size,
            "num_workers": config.data.num_workers, "prefetch": config.data.get("prefetch", 2),
            "warmup_steps": args.warmup, "steps": args.steps,
            "warmup_median_s": statistics.median(warm), "warmup_total_s": sum(warm),
            "median_s": med, "runs_s": times,
            "pipeline_over_resident": med["pipeline"] / med["resident"],
            "within_5_percent": med["pipeline"] / med["resident"] <= 1.05,
            "on_device_prep_over_prepared": med["resident"] / med["resident_prepared"]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--davis", default=os.path.join(os.path.dirname(HERE), "..", "shared",
                                                   "data", "davis2016-mini"))
    p.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--clips", type=int, default=40, help="clips timed one by one")
    p.add_argument("--batch", type=int, default=8, help="clips per pipeline batch")
    p.add_argument("--batches", type=int, default=10, help="pipeline batches timed")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--steps", type=int, default=25, help="demo steps timed per variant")
    p.add_argument("--warmup", type=int, default=55, help="demo steps before timing")
    args = p.parse_args(argv)

    run = harness.Run("input_pipeline", "cpu", __file__, argv,
                      settings={k: getattr(args, k) for k in ("sections", "clips", "batch",
                                                              "batches", "workers", "steps",
                                                              "warmup")})
    out = run.result
    out["note"] = "medians; the machine is shared (see load_average_*)"
    for name in args.sections:
        t = time.perf_counter()
        out[name] = globals()[f"section_{name}"](args)
        out[name]["section_s"] = time.perf_counter() - t
        out[f"load_average_after_{name}"] = harness.load_average()
        harness.write_result(args.out, run.finish())     # a cut run still reports
    print({k: out[k] for k in args.sections})


if __name__ == "__main__":
    main()
