"""Training clips/s of the STM-cycle step: vosjax's jitted step and the official STM-Training
``train`` loop, side by side in one process, same random weights, same synthetic clips.

    python -m benchmarks.training_speed --official /path/to/STM-Training \\
        --arch resnet50 resnet18 --batch 1 4 --size 240 427 --objects 2 --device cpu

One row per (arch, batch size B, dtype):

* ours: :func:`vosjax.training.step.jit_train_step` (B clips vmapped in one program, cycle on,
  Adam with L2 weight decay, state donated), seconds per update = median over ``--repeats``
  updates after one warm-up (compile) update; the XLA cost analysis of the compiled step gives
  FLOPs per update, hence achieved FLOP/s, and MFU when ``--peak-flops`` is given.
* official: ``train.py`` with ``train_batch = 1`` and ``iter_size = B`` (its configuration has
  B = 4): B one-clip forward (recurrent + cycle) / backward passes with gradient accumulation,
  then ``optimizer.step()``.

clips/s = B / seconds per update. vosjax computes every one of its ``num_slots`` object slots (a
static shape); the official code only the clip's objects, so rows are given for the configured
5 slots and for slots = objects. Writes ``benchmarks/results/training_<backend>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from benchmarks import harness as record
from benchmarks.inference_speed import setup_backends

HERE = os.path.dirname(os.path.abspath(__file__))

LEARNING_RATE, WEIGHT_DECAY = 1e-5, 5e-4      # the official config


def synthetic_clips(batch: int, t_len: int, objects: int, num_slots: int, h: int, w: int,
                    seed: int = 0):
    """``frames [B, T, H, W, 3]`` float32, one-hot ``masks [B, T, K, H, W]`` (K = num_slots + 1)
    with ``objects`` moving ellipses present in every frame, ``num_objects [B]`` int32."""
    rng = np.random.default_rng(seed)
    frames = rng.standard_normal((batch, t_len, h, w, 3)).astype(np.float32)
    yy, xx = np.mgrid[:h, :w]
    labels = np.zeros((batch, t_len, h, w), np.int64)
    for b in range(batch):
        for t in range(t_len):
            for o in range(objects):
                cy = (o + 1) * h / (objects + 1) + rng.uniform(-2, 2)
                cx = w * (0.3 + 0.4 * rng.random())
                ry, rx = h / (2.5 * (objects + 1)), w / 6
                labels[b, t][((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = o + 1
    masks = (labels[:, :, None] == np.arange(num_slots + 1)[:, None, None]).astype(np.float32)
    return frames, masks, np.full((batch,), objects, np.int32)


class Ours:
    """vosjax's jitted train step for one (arch, batch, dtype)."""

    def __init__(self, state_dict, arch, dtype, precision):
        import jax  # noqa: PLC0415
        import jax.numpy as jnp  # noqa: PLC0415

        from vosjax.convert import load_stm_training  # noqa: PLC0415
        from vosjax.training.optim import make_optimizer  # noqa: PLC0415
        from vosjax.training.sharding import make_mesh  # noqa: PLC0415
        from vosjax.training.state import TrainState  # noqa: PLC0415
        from vosjax.training.step import jit_train_step, stm_loss_fn  # noqa: PLC0415

        model, variables = load_stm_training(state_dict, arch, precision=precision)
        if dtype != "float32":
            model = model.clone(dtype=jnp.bfloat16)
        tx = make_optimizer(LEARNING_RATE, weight_decay=WEIGHT_DECAY)
        self.mesh = make_mesh(devices=jax.devices()[:1])
        def make_state(v):
            return TrainState(step=jnp.zeros((), jnp.int32), params=v["params"],
                              batch_stats=v["batch_stats"], opt_state=tx.init(v["params"]),
                              rng=jax.random.PRNGKey(0))

        abstract = jax.eval_shape(make_state, variables)
        self.step, shardings = jit_train_step(stm_loss_fn(model, cycle=True), tx, self.mesh,
                                              abstract)
        self._make = jax.jit(make_state, out_shardings=shardings)
        self.model, self.variables = model, variables
        self.jax = jax

    def prepare(self, frames, masks, num_objects):
        from vosjax.training.sharding import batch_sharding  # noqa: PLC0415

        sh = batch_sharding(self.mesh)
        batch = {"frames": frames, "masks": masks, "num_objects": num_objects}
        self.state = self._make(self.variables)
        return {k: self.jax.device_put(v, sh) for k, v in batch.items()}

    def cost(self, batch) -> dict:
        """XLA's cost analysis of the compiled step (``flops``, ``bytes accessed``)."""
        analysis = self.step.lower(self.state, batch).compile().cost_analysis()
        if isinstance(analysis, (list, tuple)):
            analysis = analysis[0]
        return {"flops": float(analysis.get("flops", 0.0)),
                "bytes_accessed": float(analysis.get("bytes accessed", 0.0))}

    def update(self, batch):
        self.state, metrics = self.step(self.state, batch)
        return float(metrics["loss"])      # waits for the update (as the official .item())


class Official:
    """The official ``train`` loop (train_batch = 1, iter_size = B) for one configuration."""

    def __init__(self, models, loss_mod, state_dict, arch, dtype, device):
        import torch  # noqa: PLC0415

        from benchmarks.official import stm_training as official  # noqa: PLC0415

        self.torch, self.official, self.loss_mod = torch, official, loss_mod
        self.device = "cuda" if device == "gpu" else "cpu"
        self.net = official.build_model(models, arch, state_dict, self.device)
        for p in self.net.parameters():
            p.requires_grad = True
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=LEARNING_RATE,
                                          betas=(0.9, 0.999), weight_decay=WEIGHT_DECAY)
        self.autocast = None if dtype == "float32" else torch.bfloat16

    def prepare(self, frames, masks, num_objects):
        t = self.torch
        f = t.from_numpy(np.ascontiguousarray(frames.transpose(0, 1, 4, 2, 3))).to(self.device)
        return f, t.from_numpy(masks).to(self.device), [int(n) for n in num_objects]

    def update(self, batch):
        frames, masks, objs = batch
        loss = self.official.train_update(self.net, self.optimizer, frames, masks, objs,
                                          iter_size=frames.shape[0], loss_mod=self.loss_mod,
                                          autocast_dtype=self.autocast)
        if self.device == "cuda":
            self.torch.cuda.synchronize()
        return loss


def time_updates(impl, batch, repeats: int, count_compiles: bool) -> dict:
    cc = record.CompileCounter() if count_compiles else None
    t0 = time.perf_counter()
    if cc:
        with cc:
            first_loss = impl.update(batch)
    else:
        first_loss = impl.update(batch)
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        impl.update(batch)
        times.append(time.perf_counter() - t0)
    res = {"first_update_s": round(first, 3), "first_loss": first_loss, **record.summary(times)}
    if cc:
        res["compiles_first_update"] = cc.count
        res["xla_compile_s"] = round(cc.seconds, 3)
    return res


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--official", required=True, help="checkout of lyxok1/STM-Training (cycle)")
    p.add_argument("--arch", nargs="+", default=["resnet50", "resnet18"])
    p.add_argument("--batch", nargs="+", type=int, default=[1, 4])
    p.add_argument("--size", nargs=2, type=int, default=[240, 427], metavar=("H", "W"))
    p.add_argument("--clip-len", type=int, default=3)
    p.add_argument("--objects", type=int, default=2, help="objects in every clip")
    p.add_argument("--num-slots", nargs="+", type=int, default=[5, 2],
                   help="object slots of vosjax's compiled step (config: 5 = the official "
                   "MAX_TRAINING_OBJ; = --objects: no empty slots); official runs once")
    p.add_argument("--dtype", nargs="+", choices=["float32", "bfloat16"], default=["float32"])
    p.add_argument("--precision", default="highest")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--peak-flops", type=float, default=None,
                   help="device peak FLOP/s for MFU (e.g. 989e12 for H100 SXM dense bf16)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--skip-official", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    backend = setup_backends(args.device, args.threads)
    import torch  # noqa: PLC0415

    from benchmarks.official import stm_training as official  # noqa: PLC0415

    out_path = args.out or os.path.join(HERE, "results", f"training_{backend}.json")
    head = record.header(backend)
    models, loss_mod = official.import_official(args.official)
    h, w = args.size
    rows = []
    for arch in args.arch:
        sd = official.random_state_dict(models, arch, seed=args.seed)
        for b in args.batch:
            for dtype in args.dtype:
                off_res = None
                for slots in args.num_slots:
                    clips = synthetic_clips(b, args.clip_len, args.objects, slots, h, w,
                                            seed=args.seed)
                    row = {"arch": arch, "batch": b, "dtype": dtype, "size": [h, w],
                           "clip_len": args.clip_len, "objects": args.objects,
                           "num_slots": slots, "load_average_start": record.load_average()}
                    ours = Ours(sd, arch, dtype, args.precision)
                    batch = ours.prepare(*clips)
                    res = time_updates(ours, batch, args.repeats, True)
                    cost = ours.cost(batch)
                    achieved = cost["flops"] / res["median_s"]
                    row["ours"] = {**res, "clips_per_s": round(b / res["median_s"], 4), **cost,
                                   "achieved_flops_per_s": achieved}
                    if args.peak_flops:
                        row["ours"]["mfu"] = round(achieved / args.peak_flops, 4)
                    del ours, batch
                    if not args.skip_official:
                        if off_res is None:   # independent of vosjax's slot count
                            off = Official(models, loss_mod, sd, arch, dtype, args.device)
                            off_res = time_updates(off, off.prepare(*clips), args.repeats, False)
                            off_res["clips_per_s"] = round(b / off_res["median_s"], 4)
                            del off
                        row["official"] = off_res
                        row["speedup"] = round(row["ours"]["clips_per_s"]
                                               / off_res["clips_per_s"], 3)
                        row["first_loss_abs_diff"] = abs(row["ours"]["first_loss"]
                                                         - off_res["first_loss"])
                    row["load_average_end"] = record.load_average()
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    result = {**head, "benchmark": "training", "versions": record.versions(),
              "torch_threads": torch.get_num_threads(),
              "official_checkout": os.path.abspath(args.official),
              "settings": {"optimizer": "adam", "learning_rate": LEARNING_RATE,
                           "weight_decay": WEIGHT_DECAY, "cycle": True,
                           "precision": args.precision, "threads": args.threads,
                           "peak_flops": args.peak_flops,
                           "flops_note": "XLA cost analysis of vosjax's compiled step; it counts "
                           "all num_slots object slots (the official code runs num_objects)",
                           "weights": "random, BN statistics calibrated on random input"},
              "rows": rows, "load_average_end": record.load_average()}
    record.write_json(out_path, result)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
