"""One offline GPU benchmark command: every GPU row of the accelerator issue (#14) in one run
that fits a time budget. Replaces ``gpu_suite.sh``.

    python -m benchmarks.gpu_bench --official .official --out benchmarks/results/gpu_h200.json
    python -m benchmarks.gpu_bench --smoke --out /tmp/gpu_smoke.json       # tiny, on the CPU

From the repository root: ``python -m`` puts it on the module path, so ``vosjax`` imports
without ``pip install -e .``.

* Refuses to run without a GPU: JAX's default backend must be ``gpu``/``cuda`` (the command sets
  ``JAX_PLATFORMS=cuda`` when unset, so a broken CUDA plugin is an error, not a CPU fallback)
  and, with ``--official``, ``torch.cuda.is_available()`` must hold. ``--smoke`` runs on the
  CPU instead, everything tiny (a plumbing check: its figures are not speed figures).
* Offline: vosjax weights are random (:func:`random_variables`); the official model is built with
  ``weights=None`` / ``pretrained=False`` (``official/stm_training.py`` patches the torchvision
  constructors the checkout calls; ``official/torchvision_standin.py`` when torchvision is
  missing).
* Imports nothing of tensorflow-datasets, ml_collections, tensorboardX or grain.
* Time budget (``--budget-min``, default 8): the rows run in priority order (the issue's
  targets first); a row whose expected duration (a fixed reserve until a row of its kind has
  run, then that row's duration) exceeds the time left is recorded as skipped with the reason.
  The JSON is rewritten atomically after every row; a watchdog cuts a row still running at the
  end of the budget, records it as ``cut`` and exits with status 3.
* Every row records the device, the jax / torch versions, XLA's FLOP count of the compiled
  programs (``jitted.lower(...).compile().cost_analysis()``) and MFU against the matmul ceiling
  this run measured for the row's numerics (bfloat16 rows: the bf16 ceiling; float32 rows:
  the float32 ceiling at default precision, i.e. TF32 tensor cores on NVIDIA GPUs; never the
  bf16 peak for float32 rows). The official rows take the FLOPs of vosjax's program of the same
  configuration (same math) and state PyTorch's TF32 settings.

Sections: (a) ``ceilings``: matmul (bf16, float32, float32-highest) and copy; (b) ``inference``:
STM R50 240x427, one video, 1 and 2 objects, bf16 / float32, gradient correction off / on (N=10
every 5), frames/s; (c) ``videos``: 16 videos at once through ``jax.vmap`` of the per-frame
step; (d) ``480p``: 480x854; (e) ``training``: the STM-cycle update at batch 8 (3-frame clips,
2 objects in 2 slots), clips/s; (f) ``official``: lyxok1/STM-Training (branch ``cycle``) on the
same GPU, in a child process that never imports JAX (PyTorch with its TF32 defaults).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import re
import subprocess
import sys
import threading
import time

from benchmarks import harness

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# Absent from the bare GPU image; nothing on this command's import path may need them.
NOT_ON_GPU_IMAGE = ("tensorflow_datasets", "ml_collections", "tensorboardX", "grain")

SECTIONS = {
    "ceilings": "(a) matmul and copy ceilings",
    "inference": "(b) one video at a time",
    "videos": "(c) many videos at once (jax.vmap of the per-frame step)",
    "480p": "(d) one video at 480x854",
    "training": "(e) training update (cycle on, 3-frame clips)",
    "official": "(f) official STM-Training on the same device",
}
# Compute modes of vosjax.compute measured here; "float32" allows TF32 on GPUs.
MODES = ("bfloat16", "float32")
TARGETS = {
    "inference_bf16_fps": "single video, R50 240x427, 2 objects, bfloat16: >= 500 frames/s",
    "correction_cost": "correction on / off time ratio <= 1.15 x its FLOP ratio",
    "training_mfu": "training bfloat16 MFU >= 35%",
    "training_vs_official": "training bfloat16 clips/s >= 4x the official on the same GPU",
}


@dataclasses.dataclass(frozen=True)
class Plan:
    """Sizes of one run (full or smoke)."""
    arch: str
    official_arch: str
    size: tuple
    size480: tuple
    frames: int
    n_iter: int
    every: int
    videos: int
    train_batch: int
    clip_len: int
    train_objects: int
    repeats: int
    matmul_n: int
    matmul_chain: int
    copy_mib: int
    rate: float = 180.0


FULL = Plan(arch="resnet50", official_arch="resnet50", size=(240, 427), size480=(480, 854),
            frames=41, n_iter=10, every=5, videos=16, train_batch=8, clip_len=3,
            train_objects=2, repeats=3, matmul_n=8192, matmul_chain=8, copy_mib=2048)
# The smoke run checks the plumbing in CI on two CPU cores: resnet10 (torchvision has none, so
# the official rows use resnet18 and take their FLOPs from vosjax's lowered resnet18 programs),
# one correction step, 2-frame clips, and its "480p" section at the base smoke size (it reuses
# the inference row's compiled programs: XLA compiles dominate a CPU smoke run).
SMOKE = Plan(arch="resnet10", official_arch="resnet18", size=(32, 48), size480=(32, 48),
             frames=6, n_iter=1, every=5, videos=2, train_batch=2, clip_len=2,
             train_objects=2, repeats=1, matmul_n=128, matmul_chain=2, copy_mib=4)


@dataclasses.dataclass
class Job:
    """One row: ``run(ctx) -> dict`` of measured fields."""
    section: str
    name: str
    kind: str           # rows of a kind share a duration estimate
    run: object
    reserve_s: float    # expected duration before any row of this kind has run
    smoke: bool = False  # part of the --smoke subset
    params: dict = dataclasses.field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# measuring helpers
# ---------------------------------------------------------------------------------------------
def _cost(compiled) -> dict:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0]
    analysis = analysis or {}
    return {"flops": float(analysis.get("flops", 0.0)),
            "bytes_accessed": float(analysis.get("bytes accessed", 0.0))}


def _lowered_flops(lowered) -> float:
    analysis = lowered.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0]
    return float((analysis or {}).get("flops", 0.0))


def timed(fn, repeats: int, ctx) -> dict:
    """``fn()`` (which blocks until its device work is done) once as warm-up, then up to
    ``repeats`` timed calls (at least one; fewer when the budget would run out)."""
    return harness.time_calls(fn, repeats, remaining=ctx.remaining).stats


def mfu_fields(flops_per_s: float, mode: str, ctx) -> dict:
    """MFU against this run's measured matmul ceiling of ``mode`` (None when not measured)."""
    ceiling = ctx.ceilings.get(mode)
    out = {"achieved_flops_per_s": flops_per_s, "mfu_ceiling": mode,
           "mfu_ceiling_flops_per_s": ceiling}
    out["mfu"] = flops_per_s / ceiling if ceiling else None
    if not ceiling:
        out["mfu_note"] = f"no measured {mode} matmul ceiling in this run"
    return out


def random_variables(model, seed: int = 0):
    """Random float32 variables of ``model`` without compiling its init: the shapes from
    ``jax.eval_shape``, kernels ``N(0, 1 / fan_in)`` (flax's default scale), biases 0, BN
    scale 1 / bias 0 / mean 0 / var 1. Speed only."""
    import jax
    import numpy as np

    from vosjax.models.stm import init_stm

    abstract = jax.eval_shape(lambda: init_stm(model, jax.random.PRNGKey(0), 64, 64))
    rng = np.random.default_rng(seed)

    def leaf(path, x):
        name = str(getattr(path[-1], "key", path[-1]))
        if name == "kernel":
            fan_in = int(np.prod(x.shape[:-1]))
            return (rng.standard_normal(x.shape) / np.sqrt(fan_in)).astype(x.dtype)
        return (np.ones if name in ("scale", "var") else np.zeros)(x.shape, x.dtype)

    return jax.tree_util.tree_map(jax.device_put,
                                  jax.tree_util.tree_map_with_path(leaf, abstract))


def _model(arch: str, mode: str):
    """An STM in compute ``mode`` (vosjax.compute) and random float32 variables."""
    from vosjax import compute
    from vosjax.models.stm import STM

    model = STM(arch=arch, **compute.resolve(mode).model_kwargs())
    return model, random_variables(model)


# ---------------------------------------------------------------------------------------------
# (a) ceilings
# ---------------------------------------------------------------------------------------------
def run_ceilings(ctx, plan: Plan) -> dict:
    """Matmul FLOP/s per numerics (a chain of ``matmul_chain`` square products in one program,
    FLOPs from XLA's count) and copy bandwidth (bytes read + written per second)."""
    import jax
    import jax.numpy as jnp

    n, chain = plan.matmul_n, plan.matmul_chain
    out = {"matmul_n": n, "matmul_chain": chain, "matmul": {}}
    settings = {"bfloat16": (jnp.bfloat16, jax.lax.Precision.DEFAULT),
                "float32": (jnp.float32, jax.lax.Precision.DEFAULT),
                "float32-highest": (jnp.float32, jax.lax.Precision.HIGHEST)}
    for mode, (dtype, prec) in settings.items():
        def chain_fn(x, w, prec=prec):
            for _ in range(chain):
                x = jnp.matmul(x, w, precision=prec)
            return x
        key = jax.random.PRNGKey(0)
        x = jax.random.normal(key, (n, n), jnp.float32).astype(dtype)
        w = (jax.random.normal(jax.random.fold_in(key, 1), (n, n), jnp.float32)
             / n ** 0.5).astype(dtype)
        compiled = jax.jit(chain_fn).lower(x, w).compile()
        flops = _cost(compiled)["flops"]
        res = timed(lambda: compiled(x, w).block_until_ready(), max(plan.repeats, 5), ctx)
        rate = flops / res["median_s"]
        out["matmul"][mode] = {"flops": flops, **res, "flops_per_s": rate}
        ctx.ceilings[mode] = rate
    elems = plan.copy_mib * 2 ** 20 // 4
    src = jnp.ones((elems,), jnp.float32)
    copy = jax.jit(lambda a: a * 2.0).lower(src).compile()
    res = timed(lambda: copy(src).block_until_ready(), max(plan.repeats, 5), ctx)
    nbytes = 2 * src.nbytes       # read + write
    out["copy"] = {"bytes": nbytes, "xla_bytes_accessed": _cost(copy)["bytes_accessed"], **res,
                   "bytes_per_s": nbytes / res["median_s"]}
    return out


# ---------------------------------------------------------------------------------------------
# (b), (c), (d) inference
# ---------------------------------------------------------------------------------------------
def _bank_slots(frames: int, cfg) -> int:
    from vosjax.inference.propagation import SLOT_BUCKET, permanent_frames

    n = max(1, permanent_frames(frames, cfg))
    return max(SLOT_BUCKET, -(-n // SLOT_BUCKET) * SLOT_BUCKET)    # as Propagator sizes it


class InferencePrograms:
    """The library's per-frame programs for one configuration (``init_state``,
    ``propagation_step``, ``correction_step`` of :mod:`vosjax.inference.propagation`), compiled
    ahead of time so the timed program is the one whose FLOPs XLA counted. ``videos`` > 0: that
    many videos at once, every program ``jax.vmap``-ed over a leading video axis."""

    def __init__(self, plan: Plan, arch, mode, objects, correction, hw, videos=0, compile=True):
        import jax
        import jax.numpy as jnp
        import numpy as np

        from benchmarks.workloads import synthetic_video
        from vosjax.correction import GradientCorrection
        from vosjax.inference import propagation as prop

        self.plan, self.videos = plan, videos
        self.model, self.variables = _model(arch, mode)
        corr = (GradientCorrection(n_iter=plan.n_iter, rate=plan.rate, every=plan.every)
                if correction else None)
        self.cfg = prop.StepConfig(num_slots=objects, mem_every=plan.every, correction=corr)
        slots = _bank_slots(plan.frames, self.cfg)
        frames, masks0 = synthetic_video(plan.frames, objects, *hw)
        masks = masks0[1:]
        init = functools.partial(prop.init_state, self.model, cfg=self.cfg, bank_slots=slots)
        step = functools.partial(prop.propagation_step, self.model, cfg=self.cfg)
        fix = functools.partial(prop.correction_step, self.model, cfg=self.cfg)
        if videos:
            frames = np.broadcast_to(frames[:, None], (frames.shape[0], videos) + frames.shape[1:])
            masks = np.broadcast_to(masks[None], (videos,) + masks.shape)
            init = jax.vmap(init, in_axes=(None, 0, 0, 0))
            step = jax.vmap(step, in_axes=(None, 0, 0, 0, 0))
            fix = jax.vmap(fix, in_axes=(None, 0))
        lead = (videos,) if videos else ()
        self.frames = [jax.device_put(np.ascontiguousarray(f)) for f in frames]
        self.masks = jax.device_put(np.ascontiguousarray(masks))
        self.active = jnp.ones(lead + (objects,), bool)
        self.no_masks = jnp.zeros_like(self.masks)
        self.no_new = jnp.zeros(lead + (objects,), bool)
        t0 = time.perf_counter()
        lowered = {"init": jax.jit(init).lower(self.variables, self.frames[0], self.masks,
                                               self.active)}
        state_shape = jax.eval_shape(init, self.variables, self.frames[0], self.masks, self.active)
        lowered["step"] = jax.jit(step, donate_argnums=(1,)).lower(
            self.variables, state_shape[0], self.frames[1], self.no_masks, self.no_new)
        if corr is not None:
            lowered["correction"] = jax.jit(fix, donate_argnums=(1,)).lower(self.variables,
                                                                             state_shape[0])
        if compile:
            compiled = {k: v.compile() for k, v in lowered.items()}
            self.init, self.step = compiled["init"], compiled["step"]
            self.correct = compiled.get("correction")
            costs = {k: _cost(v)["flops"] for k, v in compiled.items()}
            self.flops_source = "XLA cost analysis of the compiled programs"
        else:   # a FLOP count only (the official rows of a configuration vosjax did not run)
            costs = {k: _lowered_flops(v) for k, v in lowered.items()}
            self.flops_source = "XLA cost analysis of vosjax's lowered (not compiled) programs"
        unroll = corr.resolved_unroll() if corr is not None else None
        if corr is not None and unroll < corr.n_iter:
            # XLA counts a rolled loop's body once: add the missing iterations, measured on the
            # same program lowered fully unrolled (same math; lowered, not compiled).
            full = functools.partial(
                prop.correction_step, self.model,
                cfg=dataclasses.replace(self.cfg, correction=dataclasses.replace(
                    corr, unroll=corr.n_iter)))
            if videos:
                full = jax.vmap(full, in_axes=(None, 0))
            unrolled = _lowered_flops(jax.jit(full).lower(self.variables, state_shape[0]))
            rolled = _lowered_flops(lowered["correction"])
            costs["correction_rolled_loop_counted_once"] = costs["correction"]
            costs["correction"] += unrolled - rolled
            self.flops_source += (f"; the correction's rolled loop (unroll {unroll}) counted "
                                  f"{corr.n_iter} times: count + (unrolled - rolled) of the "
                                  "lowered programs")
        self.compile_s = time.perf_counter() - t0
        self.costs = costs
        n_corr = sum(bool(self.cfg.corrects(t)) for t in range(1, plan.frames))
        # per video (one video of the batch when vmapped: the programs count all videos)
        per = max(videos, 1)
        total = costs["init"] + (plan.frames - 1) * costs["step"] + n_corr * costs.get(
            "correction", 0.0)
        self.flops_per_frame = total / (plan.frames - 1) / per
        self.corrections_per_video = n_corr

    def run_video(self):
        """Frames 1..T-1 of the video(s), as the official test loop; blocks on the end."""
        import jax

        state, _ = self.init(self.variables, self.frames[0], self.masks, self.active)
        outs = []
        for t in range(1, self.plan.frames):
            state, out = self.step(self.variables, state, self.frames[t], self.no_masks,
                                   self.no_new)
            outs.append(out.probs)
            if self.correct is not None and self.cfg.corrects(t):
                state, _, _ = self.correct(self.variables, state)
        jax.block_until_ready((outs, state))


def inference_programs(ctx, plan, arch, mode, objects, correction, hw, videos=0):
    """Compiled once per configuration and run (the official rows reuse vosjax's FLOPs)."""
    key = (arch, mode, objects, correction, tuple(hw), videos)
    if key not in ctx.programs:
        ctx.programs[key] = InferencePrograms(plan, arch, mode, objects, correction, hw, videos)
        ctx.programs[key].compiled_here = True
    else:
        ctx.programs[key].compiled_here = False
    return ctx.programs[key]


def run_inference(ctx, plan: Plan, *, arch, mode, objects, correction, hw, videos=0) -> dict:
    progs = inference_programs(ctx, plan, arch, mode, objects, correction, hw, videos)
    res = timed(progs.run_video, plan.repeats, ctx)
    frames = (plan.frames - 1) * max(videos, 1)
    fps = frames / res["median_s"]
    row = {"arch": arch, "mode": mode, "objects": objects, "size": list(hw),
           "frames": plan.frames, "videos": max(videos, 1), "correction": correction,
           "correction_setting": ({"n_iter": plan.n_iter, "every": plan.every,
                                   "rate": plan.rate} if correction else None),
           "compile_s": round(progs.compile_s, 3),
           "programs_compiled_for_this_row": progs.compiled_here, **res, "frames_per_s": fps,
           "flops_per_frame": progs.flops_per_frame, "program_flops": progs.costs,
           "flops_source": progs.flops_source,
           **mfu_fields(progs.flops_per_frame * fps, mode, ctx)}
    return row


def inference_flops(ctx, plan: Plan, arch, mode, objects, correction, hw) -> tuple:
    """FLOPs per frame of vosjax's programs of this configuration and how they were counted:
    the compiled ones when a vosjax row ran them, else lowered only (no compile)."""
    progs = ctx.programs.get((arch, mode, objects, correction, tuple(hw), 0))
    if progs is None:
        progs = InferencePrograms(plan, arch, mode, objects, correction, hw, compile=False)
    return progs.flops_per_frame, progs.flops_source


# ---------------------------------------------------------------------------------------------
# (e) training
# ---------------------------------------------------------------------------------------------
class TrainingProgram:
    """The library's STM-cycle update (``stm_loss_fn`` + ``jit_train_step``, state donated) on
    one device, compiled ahead of time."""

    def __init__(self, plan: Plan, arch, mode, compile=True):
        import jax
        import jax.numpy as jnp

        from benchmarks.official.stm_training import LEARNING_RATE, WEIGHT_DECAY
        from benchmarks.workloads import synthetic_clips
        from vosjax import compute
        from vosjax.models.stm import STM
        from vosjax.training.optim import make_optimizer
        from vosjax.training.sharding import batch_sharding, make_mesh
        from vosjax.training.state import TrainState
        from vosjax.training.step import jit_train_step, stm_loss_fn

        model = STM(arch=arch, **compute.resolve(mode).model_kwargs())
        tx = make_optimizer(LEARNING_RATE, weight_decay=WEIGHT_DECAY)
        mesh = make_mesh(devices=jax.devices()[:1])

        v = random_variables(model)
        state = TrainState(step=jnp.zeros((), jnp.int32), params=v["params"],
                           batch_stats=v["batch_stats"], opt_state=tx.init(v["params"]),
                           rng=jax.random.PRNGKey(0))
        abstract = jax.eval_shape(lambda: state)
        step, shardings = jit_train_step(stm_loss_fn(model, cycle=True), tx, mesh, abstract)
        self.state = jax.device_put(state, shardings)
        o = plan.train_objects
        clips = synthetic_clips(plan.train_batch, plan.clip_len, o, o, *plan.size)
        sh = batch_sharding(mesh)
        self.batch = {k: jax.device_put(v, sh) for k, v in
                      zip(("frames", "masks", "num_objects"), clips)}
        t0 = time.perf_counter()
        lowered = step.lower(self.state, self.batch)
        if compile:
            self.step = lowered.compile()
            self.cost = _cost(self.step)
            self.flops_source = "XLA cost analysis of the compiled update (forward, backward, Adam)"
        else:
            self.cost = {"flops": _lowered_flops(lowered), "bytes_accessed": None}
            self.flops_source = "XLA cost analysis of vosjax's lowered (not compiled) update"
        self.compile_s = time.perf_counter() - t0

    def update(self):
        self.state, metrics = self.step(self.state, self.batch)
        metrics["loss"].block_until_ready()


def run_training(ctx, plan: Plan, *, arch, mode) -> dict:
    prog = TrainingProgram(plan, arch, mode)
    res = timed(prog.update, max(plan.repeats, 3) if not ctx.smoke else 1, ctx)
    b = plan.train_batch
    row = {"arch": arch, "mode": mode, "batch": b, "clip_len": plan.clip_len, "cycle": True,
           "objects": plan.train_objects, "num_slots": plan.train_objects,
           "size": list(plan.size), "compile_s": round(prog.compile_s, 3), **res,
           "clips_per_s": b / res["median_s"], "flops_per_update": prog.cost["flops"],
           "bytes_accessed_per_update": prog.cost["bytes_accessed"],
           "flops_source": prog.flops_source,
           **mfu_fields(prog.cost["flops"] / res["median_s"], mode, ctx)}
    ctx.flops[("training", arch, mode)] = (prog.cost["flops"], prog.flops_source)
    return row


def training_flops(ctx, plan: Plan, arch, mode) -> tuple:
    """As :func:`inference_flops` for the training update."""
    if ("training", arch, mode) not in ctx.flops:
        prog = TrainingProgram(plan, arch, mode, compile=False)
        ctx.flops[("training", arch, mode)] = (prog.cost["flops"], prog.flops_source)
    return ctx.flops[("training", arch, mode)]


# ---------------------------------------------------------------------------------------------
# (f) the official code, in a child process without JAX
# ---------------------------------------------------------------------------------------------
def torch_info(torch) -> dict:
    """PyTorch's version, device and TF32 settings (as they are: never changed here)."""
    info = {"torch": torch.__version__, "cuda_available": torch.cuda.is_available(),
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "float32_matmul_precision": torch.get_float32_matmul_precision()}
    try:
        import torchvision

        info["torchvision"] = torchvision.__version__
    except ImportError:
        info["torchvision"] = None
    if info["cuda_available"]:
        info["device"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def official_child(spec: dict) -> dict:
    """Runs in the child: one official row (or ``what == "check"``: torch's settings)."""
    import torch

    info = torch_info(torch)
    if spec["device"] == "gpu" and not info["cuda_available"]:
        raise SystemExit("torch.cuda.is_available() is False: refusing a CPU fallback")
    if spec["what"] == "check":
        return info
    from benchmarks.official import stm_training as official
    from benchmarks.workloads import synthetic_clips, synthetic_video

    if spec["device"] == "cpu":
        torch.set_num_threads(os.cpu_count())
    models, loss_mod = official.import_official(spec["official"])
    arch, (h, w) = spec["arch"], spec["size"]
    sd = official.random_state_dict(models, arch, seed=0)
    dtype = spec["mode"]
    if spec["what"] == "inference":
        frames, masks0 = synthetic_video(spec["frames"], spec["objects"], h, w)
        impl = official.OfficialInference(models, sd, arch, dtype, spec["correction"],
                                          spec["every"], spec["device"], n_iter=spec["n_iter"])
        f, m = impl.put(frames, masks0)
        warmup = min(spec["frames"], spec["every"] + 1)     # reaches the correction
        res = harness.time_calls(lambda: impl.run(f, m), spec["repeats"],
                                 warmup=lambda: impl.run(f[:warmup], m)).stats
        res["warmup_frames"] = warmup
        res["frames_per_s"] = (spec["frames"] - 1) / res["median_s"]
    else:
        o = spec["objects"]
        clips = synthetic_clips(spec["batch"], spec["clip_len"], o, o, h, w)
        impl = official.OfficialTraining(models, loss_mod, sd, arch, dtype, spec["device"])
        batch = impl.prepare(*clips)
        timing = harness.time_calls(lambda: impl.update(batch), spec["repeats"])
        res = {**timing.stats, "first_loss": timing.first}
        res["clips_per_s"] = spec["batch"] / res["median_s"]
    return {**res, "torch_settings": info}


def call_official(ctx, spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.gpu_bench", "--official-child", json.dumps(spec)]
    env = dict(os.environ)
    if ctx.smoke:
        env["CUDA_VISIBLE_DEVICES"] = ""
    try:   # killed before the watchdog's grace ends, so no child outlives the run
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=max(timeout, 1.0),
                             env=env, cwd=REPO)
    except subprocess.TimeoutExpired:
        raise RuntimeError("the official child ran past the end of the budget (killed)") from None
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"official child failed (rc {out.returncode}): "
                           f"{(out.stderr or out.stdout)[-2000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def run_official(ctx, plan: Plan, *, what, mode, objects=None, correction=False) -> dict:
    arch, hw = plan.official_arch, plan.size
    spec = {"what": what, "official": ctx.official, "device": ctx.device, "arch": arch,
            "size": list(hw), "mode": mode, "repeats": plan.repeats, "every": plan.every,
            "n_iter": plan.n_iter, "frames": plan.frames, "correction": correction,
            "objects": objects if what == "inference" else plan.train_objects,
            "batch": plan.train_batch, "clip_len": plan.clip_len}
    res = call_official(ctx, spec, ctx.remaining())
    settings = res.pop("torch_settings")
    row = {"arch": arch, "mode": mode, "size": list(hw), "impl": "official",
           "numerics": ("torch.autocast bfloat16" if mode == "bfloat16" else
                        "float32 with PyTorch's TF32 defaults (matmul_allow_tf32="
                        f"{settings['matmul_allow_tf32']}, cudnn_allow_tf32="
                        f"{settings['cudnn_allow_tf32']})"),
            "torch_settings": settings, **res}
    if what == "inference":
        flops, source = inference_flops(ctx, plan, arch, mode, objects, correction, hw)
        row.update(objects=objects, frames=plan.frames, correction=correction,
                   flops_per_frame=flops, **mfu_fields(flops * res["frames_per_s"], mode, ctx))
    else:
        flops, source = training_flops(ctx, plan, arch, mode)
        row.update(batch=plan.train_batch, clip_len=plan.clip_len, cycle=True,
                   objects=plan.train_objects, flops_per_update=flops,
                   **mfu_fields(flops / res["median_s"], mode, ctx))
    row["flops_source"] = (f"{source}, same configuration (same math; the official code is "
                           "not an XLA program)")
    return row


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------
WATCHDOG_GRACE_S = 5.0


def _find(rows, section, **want):
    for r in rows:
        if r["section"] == section and r["status"] == "ok" and all(
                r.get(k) == v for k, v in want.items()):
            return r
    return None


def link_official(rows) -> None:
    """Each official row gets vosjax's figure of the same configuration in every mode measured
    (``vs_vosjax``: vosjax / official), and ``vosjax_speedup`` for the same mode."""
    for r in rows:
        if r["section"] != "official" or r["status"] != "ok":
            continue
        key = "frames_per_s" if r["what"] == "inference" else "clips_per_s"
        r["vs_vosjax"] = {}
        for mode in MODES:
            if r["what"] == "inference":
                ours = _find(rows, "inference", arch=r["arch"], mode=mode, objects=r["objects"],
                             correction=r["correction"], size=r["size"], videos=1)
            else:
                ours = _find(rows, "training", arch=r["arch"], mode=mode)
            if ours:
                r["vs_vosjax"][mode] = {f"vosjax_{key}": ours[key],
                                        "speedup": ours[key] / r[key]}
        same = r["vs_vosjax"].get(r["mode"])
        r["vosjax_speedup"] = same["speedup"] if same else None


def targets_measured(rows, plan: Plan) -> dict:
    """The issue's targets against this run's rows (None: not measured)."""
    a, hw = plan.arch, list(plan.size)
    out = {}
    off = _find(rows, "inference", arch=a, mode="bfloat16", objects=2, correction=False,
                size=hw, videos=1)
    on = _find(rows, "inference", arch=a, mode="bfloat16", objects=2, correction=True,
               size=hw, videos=1)
    out["inference_bf16_fps"] = {"frames_per_s": off and off["frames_per_s"], "target": 500.0,
                                 "met": off["frames_per_s"] >= 500.0 if off else None}
    if off and on:
        time_ratio = off["frames_per_s"] / on["frames_per_s"]
        flop_ratio = on["flops_per_frame"] / off["flops_per_frame"]
        out["correction_cost"] = {"time_ratio": time_ratio, "flop_ratio": flop_ratio,
                                  "time_over_flop_ratio": time_ratio / flop_ratio,
                                  "target": 1.15, "met": time_ratio / flop_ratio <= 1.15}
    else:
        out["correction_cost"] = {"met": None}
    train = _find(rows, "training", arch=a, mode="bfloat16")
    out["training_mfu"] = {"mfu": train and train["mfu"], "target": 0.35,
                           "met": (train["mfu"] >= 0.35) if train and train["mfu"] else None}
    official = [r for r in rows if r["section"] == "official" and r["status"] == "ok"
                and r.get("what") == "training" and r["mode"] == "float32"]
    ratio = (official[0].get("vs_vosjax", {}).get("bfloat16", {}).get("speedup")
             if official else None)
    out["training_vs_official"] = {"vosjax_bf16_over_official_default": ratio, "target": 4.0,
                                   "met": ratio >= 4.0 if ratio else None}
    return out


def jobs(plan: Plan, smoke: bool) -> list[Job]:
    """Every row, in priority order (the issue's targets first)."""
    a, hw = plan.arch, plan.size
    inf = functools.partial(run_inference, plan=plan, arch=a, hw=hw)

    def inference(mode, objects, correction, smoke_row=False):
        on_off = "on" if correction else "off"
        name = f"{a} {hw[0]}x{hw[1]} {objects} obj {mode} correction {on_off}"
        return Job("inference", name, f"inference-{'on' if correction else 'off'}",
                   functools.partial(inf, mode=mode, objects=objects, correction=correction),
                   240.0 if correction else 120.0, smoke_row,
                   {"mode": mode, "objects": objects, "correction": correction})

    def official(what, mode, objects=None, correction=False, smoke_row=False):
        name = (f"official {plan.official_arch} {what} {mode}"
                + (f" {objects} obj correction {'on' if correction else 'off'}"
                   if what == "inference" else f" batch {plan.train_batch}"))
        return Job("official", name, f"official-{what}-{correction}",
                   functools.partial(run_official, plan=plan, what=what, mode=mode,
                                     objects=objects, correction=correction),
                   240.0 if (correction or what == "training") else 120.0, smoke_row,
                   {"what": what, "mode": mode, "objects": objects, "correction": correction})

    def training(mode, smoke_row=True):
        return Job("training", f"{a} batch {plan.train_batch} {mode}", "training",
                   functools.partial(run_training, plan=plan, arch=a, mode=mode), 240.0,
                   smoke_row, {"mode": mode})

    def videos(mode, smoke_row=False):
        return Job("videos", f"{a} {hw[0]}x{hw[1]} {plan.videos} videos 2 obj {mode}", "videos",
                   functools.partial(inf, mode=mode, objects=2, correction=False,
                                     videos=plan.videos), 180.0, smoke_row, {"mode": mode})

    def p480(mode, smoke_row=False):
        s = plan.size480
        return Job("480p", f"{a} {s[0]}x{s[1]} 2 obj {mode}", "480p",
                   functools.partial(run_inference, plan=plan, arch=a, hw=s, mode=mode,
                                     objects=2, correction=False), 150.0, smoke_row,
                   {"mode": mode})

    return [
        Job("ceilings", "matmul and copy ceilings", "ceilings",
            functools.partial(run_ceilings, plan=plan), 30.0, True),
        inference("bfloat16", 2, False, True),
        inference("bfloat16", 2, True, True),
        training("bfloat16"),
        official("training", "float32", smoke_row=True),
        official("inference", "float32", 2, False, smoke_row=True),
        official("inference", "float32", 2, True, smoke_row=True),
        inference("float32", 2, False),
        inference("float32", 2, True),
        videos("bfloat16", True),
        inference("bfloat16", 1, False),
        inference("bfloat16", 1, True),
        p480("bfloat16", True),
        training("float32", False),
        inference("float32", 1, False),
        inference("float32", 1, True),
        videos("float32"),
        p480("float32"),
        official("training", "bfloat16"),
        official("inference", "bfloat16", 2, False),
        official("inference", "bfloat16", 2, True),
    ]


class Context:
    def __init__(self, args, plan, deadline):
        self.smoke, self.official, self.plan = args.smoke, args.official, plan
        self.device = "cpu" if args.smoke else "gpu"
        self.deadline = deadline
        self.ceilings: dict = {}
        self.flops: dict = {}
        self.programs: dict = {}
        self.rows: list = []

    def remaining(self) -> float:
        return self.deadline - time.monotonic()



def check_backends(args) -> str:
    """JAX's backend; exits unless it is a GPU (or ``--smoke``)."""
    import jax

    backend = jax.default_backend()
    if args.smoke:
        return backend
    if backend not in ("gpu", "cuda"):
        raise SystemExit(f"gpu_bench: JAX's backend is {backend!r}, not a GPU: refusing to run "
                         "(--smoke runs a tiny CPU check instead)")
    return backend


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--official", default=None,
                   help="checkout of lyxok1/STM-Training, branch cycle (required on a GPU "
                   "unless --no-official)")
    p.add_argument("--no-official", action="store_true", help="record the official rows as "
                   "skipped")
    p.add_argument("--out", default=None, help="JSON path (default "
                   "benchmarks/results/gpu_<device>.json; smoke: gpu_smoke.json in the cwd)")
    p.add_argument("--budget-min", type=float, default=8.0, help="time budget in minutes")
    p.add_argument("--smoke", action="store_true",
                   help="every section tiny on the CPU (plumbing check, not speed figures)")
    p.add_argument("--only", nargs="*", default=None, metavar="SECTION",
                   help=f"run only these sections ({', '.join(SECTIONS)})")
    p.add_argument("--official-child", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    if args.official_child is not None:      # the official side: never imports JAX
        print("RESULT " + json.dumps(official_child(json.loads(args.official_child))),
              flush=True)
        return 0
    if args.smoke:
        os.environ["JAX_PLATFORMS"] = "cpu"
    else:
        os.environ.setdefault("JAX_PLATFORMS", "cuda")   # an error, not a CPU fallback
        if args.official is None and not args.no_official:
            raise SystemExit("gpu_bench: --official DIR (an STM-Training checkout, branch "
                             "cycle) or --no-official")
    if args.official is not None and not os.path.isfile(
            os.path.join(args.official, "libs", "models", "models.py")):
        raise SystemExit(f"gpu_bench: {args.official} is not an STM-Training checkout")
    plan = SMOKE if args.smoke else FULL
    budget = args.budget_min * 60.0
    ctx = Context(args, plan, started + budget)
    torch_settings, official_reason = None, None
    if args.no_official or args.official is None:
        official_reason = "no --official checkout given"
    else:
        try:       # before JAX initialises the GPU; refuses when torch has no CUDA device
            torch_settings = call_official(ctx, {"what": "check", "device": ctx.device}, 120.0)
        except RuntimeError as e:
            if not args.smoke:
                raise SystemExit(f"gpu_bench: the official side cannot run: {e}")
            official_reason = f"torch unavailable: {str(e).splitlines()[-1][:300]}"
    backend = check_backends(args)
    import jax

    kind = re.search(r"\b([A-Z]\d{2,4})\b", jax.devices()[0].device_kind)
    out_path = args.out or (os.path.abspath("gpu_smoke.json") if args.smoke else os.path.join(
        HERE, "results", f"gpu_{kind.group(1).lower() if kind else backend}.json"))

    versions = harness.versions()
    versions["torch"] = torch_settings["torch"] if torch_settings else None
    device = harness.device_name(backend)
    run = harness.Run("gpu_bench", backend, __file__, argv, settings={
        "smoke": args.smoke, "budget_s": budget, "only": args.only,
        "plan": dataclasses.asdict(plan),
        "official_checkout": os.path.abspath(args.official) if args.official else None,
        "weights": "random (vosjax: N(0, 1/fan_in) kernels, identity BN; official: torch "
                   "init, BN statistics calibrated on random input); speed only"})
    run.result["machine"]["versions"] = versions
    head = {**run.result, "torch_settings": torch_settings, "targets": TARGETS,
            "sections": SECTIONS, "jax_devices": [str(d) for d in jax.devices()],
            "note": ("SMOKE RUN: tiny sizes on the CPU, a plumbing check; none of its "
                     "figures is a speed figure") if args.smoke else None}
    lock = threading.Lock()
    state = {"running": None, "done": False}

    def targets_of(rows):
        got = targets_measured(rows, plan)
        if args.smoke:      # CPU figures say nothing about GPU targets
            got = {k: {**v, "met": None} for k, v in got.items()}
            got["note"] = "smoke run: the targets are GPU targets; not evaluated"
        return got

    def write(complete=False):
        with lock:
            link_official(ctx.rows)
            rows = list(ctx.rows)
            if state["running"] is not None:
                rows.append(state["running"])
            head["machine"]["load_average"]["end"] = harness.load_average()
            harness.write_result(out_path, {**head, "rows": rows,
                                            "ceilings": dict(ctx.ceilings),
                                            "targets_measured": targets_of(rows),
                                            "complete": complete,
                                            "elapsed_s": round(time.monotonic() - started, 1)})

    def watchdog():
        while not state["done"]:
            if ctx.remaining() <= -WATCHDOG_GRACE_S:
                with lock:
                    running = state["running"]
                    if running is not None:
                        running["status"] = "cut"
                        running["reason"] = "still running at the end of the budget"
                if running is not None:
                    write()
                    print(f"gpu_bench: budget spent, cut {running['name']!r}; wrote {out_path}",
                          flush=True)
                    os._exit(3)
            time.sleep(0.5)

    guard = threading.Thread(target=watchdog, daemon=True)
    guard.start()
    durations: dict = {}
    for job in jobs(plan, args.smoke):
        base = {"section": job.section, "name": job.name, "device": device, "backend": backend,
                "versions": versions, "smoke": args.smoke, **job.params}
        reason = None
        if args.only is not None and job.section not in args.only:
            reason = f"not in --only {' '.join(args.only)}"
        elif args.smoke and not job.smoke:
            reason = "smoke: not in the smoke subset"
        elif job.section == "official" and official_reason:
            reason = official_reason
        else:
            expect = durations.get(job.kind, 0.0 if args.smoke else job.reserve_s)
            if ctx.remaining() < expect:
                reason = (f"budget: {ctx.remaining():.0f} s left, a {job.kind} row needs about "
                          f"{expect:.0f} s")
        if reason:
            ctx.rows.append({**base, "status": "skipped", "reason": reason})
            print(f"skip {job.name}: {reason}", flush=True)
            write()
            continue
        with lock:
            state["running"] = {**base, "status": "running"}
        t0 = time.monotonic()
        try:
            row = {**base, **job.run(ctx), "status": "ok"}
        except Exception as e:  # noqa: BLE001  (recorded; the run goes on)
            row = {**base, "status": "failed", "reason": f"{type(e).__name__}: {e}"[-3000:]}
        row["row_s"] = round(time.monotonic() - t0, 2)
        durations[job.kind] = row["row_s"]
        with lock:
            state["running"] = None
            ctx.rows.append(row)
        print(json.dumps({k: row[k] for k in row if k not in ("versions", "torch_settings",
                                                                  "program_flops")}),
              flush=True)
        write()
    state["done"] = True
    guard.join()        # no thread left running while the interpreter shuts down
    write(complete=True)
    print(f"wrote {out_path} ({time.monotonic() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
