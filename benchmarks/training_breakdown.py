"""Where a training update's time goes: forward, backward and optimizer, vosjax vs official.

    python -m benchmarks.training_breakdown --official PATH [--arch resnet18] [--device gpu]

One clip per update (3 frames, cycle on, as in ``training_speed``), same random weights in
both. vosjax: the loss jitted alone (forward), ``value_and_grad`` jitted (forward + backward)
and the full jitted update; backward = the difference. Official: the forward of ``clip_loss``
and its ``backward()`` timed separately, then the Adam step. Medians after one warm-up, the
implementations alternating so that load touches both alike. One row per part (``forward``,
``backward``, ``forward_backward``, ``update``, ``optimizer``: official only), with each
implementation's median seconds and the speed-up official / vosjax; ``runs``: every round's
parts. Writes ``benchmarks/results/training_breakdown_<backend>.json``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from benchmarks import harness
from benchmarks.workloads import VosjaxTraining, synthetic_clips

PARTS = ("forward", "backward", "forward_backward", "update", "optimizer")


class OursParts:
    """vosjax: forward, forward + backward and update programs of one configuration."""

    def __init__(self, ours: VosjaxTraining, batch):
        import jax

        from vosjax.training.step import stm_loss_fn

        self.jax, self.ours, self.batch = jax, ours, batch
        loss_fn = stm_loss_fn(ours.model, cycle=True)
        loss = lambda p, bs, b: loss_fn(p, bs, b, None)[0]  # noqa: E731
        self.fwd, self.grad = jax.jit(loss), jax.jit(jax.value_and_grad(loss))

    def run(self) -> dict:
        jax, state, b = self.jax, self.ours.state, self.batch
        t0 = time.perf_counter()
        jax.block_until_ready(self.fwd(state.params, state.batch_stats, b))
        t1 = time.perf_counter()
        jax.block_until_ready(self.grad(state.params, state.batch_stats, b))
        t2 = time.perf_counter()
        self.ours.update(self.batch)
        t3 = time.perf_counter()
        return {"forward": t1 - t0, "forward_backward": t2 - t1, "update": t3 - t2}


class OfficialParts:
    def __init__(self, off, batch):
        self.off, self.batch = off, batch

    def run(self) -> dict:
        import torch

        from benchmarks.official.stm_training import clip_loss

        off = self.off
        frames, masks, objs = self.batch
        mod = sys.modules["libs.dataset.data"]
        sync = torch.cuda.synchronize if off.device == "cuda" else (lambda: None)
        t0 = time.perf_counter()
        total = clip_loss(off.net, frames[0], masks[0], int(objs[0]), masks.shape[2] - 1,
                          off.loss_mod, mod.convert_one_hot)
        total = total / (frames.shape[1] - 1)
        float(total.detach())
        sync()
        t1 = time.perf_counter()
        total.backward()
        sync()
        t2 = time.perf_counter()
        off.optimizer.step()
        off.net.zero_grad()
        sync()
        t3 = time.perf_counter()
        return {"forward": t1 - t0, "forward_backward": t2 - t0, "update": t3 - t0,
                "optimizer": t3 - t2}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    harness.add_official(p)
    harness.add_arch(p, "resnet18")
    harness.add_size(p)
    p.add_argument("--objects", type=int, default=2)
    harness.add_repeats(p, 3, "timed rounds")
    harness.add_device(p)
    p.add_argument("--seed", type=int, default=0)
    harness.add_out(p, "training_breakdown_{backend}.json")
    args = p.parse_args(argv)
    backend = harness.setup_backends(args.device, args.threads)

    from benchmarks.official import stm_training as official

    h, w = args.size
    run = harness.Run("training_breakdown", backend, __file__, argv, settings={
        "arch": args.arch, "size": [h, w], "clip_len": 3, "batch": 1, "objects": args.objects,
        "num_slots": args.objects, "cycle": True, "threads": args.threads, "dtype": "float32",
        "weights": "random, BN statistics calibrated on random input"})
    models, loss_mod = official.import_official(args.official)
    sd = official.random_state_dict(models, args.arch, seed=args.seed)
    clips = synthetic_clips(1, 3, args.objects, args.objects, h, w, seed=args.seed)
    ours = VosjaxTraining(sd, args.arch, "float32", "highest")
    impls = {"ours": OursParts(ours, ours.prepare(*clips))}
    off = official.OfficialTraining(models, loss_mod, sd, args.arch, "float32", args.device)
    impls["official"] = OfficialParts(off, off.prepare(*clips))
    runs = {name: [] for name in impls}       # each round's parts, recorded by the calls

    def timed(name):
        return lambda: runs[name].append(impls[name].run())
    harness.alternate({name: timed(name) for name in impls}, args.repeats)
    for name in runs:
        del runs[name][0]                      # the warm-up round (vosjax compiles there)
    med = {}
    for name, rs in runs.items():
        med[name] = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        med[name]["backward"] = med[name]["forward_backward"] - med[name]["forward"]
    for part in PARTS:
        side = {name: ({"median_s": round(med[name][part], 4)} if part in med[name] else None)
                for name in impls}
        speedup = (round(med["official"][part] / med["ours"][part], 3)
                   if side["ours"] and side["official"] else None)
        run.add_row({"part": part, **side, "speedup": speedup}, show=False)
    print(json.dumps({r["part"]: r["speedup"] for r in run.rows}))
    run.write(harness.out_path(args, backend),
              runs={name: [{k: round(v, 4) for k, v in r.items()} for r in rs]
                    for name, rs in runs.items()})


if __name__ == "__main__":
    main()
