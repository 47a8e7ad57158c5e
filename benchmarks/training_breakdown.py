"""Where a training update's time goes: forward, backward and optimizer, vosjax vs official.

    python -m benchmarks.training_breakdown --official PATH [--arch resnet18] [--device gpu]

One clip per update (3 frames, cycle on, as in ``training_speed.py``), same random weights in
both. vosjax: the loss jitted alone (forward), ``value_and_grad`` jitted (forward + backward)
and the full jitted update; backward = the difference. Official: the forward of ``clip_loss``
and its ``backward()`` timed separately, then the Adam step. Medians after one warm-up, the
implementations alternating so that load touches both alike. Writes
``benchmarks/results/training_breakdown_<backend>.json``.
"""
from __future__ import annotations

import json
import os
import sys
import time

from benchmarks import harness as record
from benchmarks import training_speed
from benchmarks.inference_speed import setup_backends

HERE = os.path.dirname(os.path.abspath(__file__))


class OursParts:
    """vosjax: forward, forward + backward and update programs of one configuration."""

    def __init__(self, ours: "training_speed.Ours", batch):
        import jax  # noqa: PLC0415

        from vosjax.training.step import stm_loss_fn  # noqa: PLC0415

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
    def __init__(self, off: "training_speed.Official", batch):
        self.off, self.batch = off, batch

    def run(self) -> dict:
        import torch  # noqa: PLC0415

        off = self.off
        frames, masks, objs = self.batch
        mod = sys.modules["libs.dataset.data"]
        sync = torch.cuda.synchronize if off.device == "cuda" else (lambda: None)
        t0 = time.perf_counter()
        total = off.official.clip_loss(off.net, frames[0], masks[0], int(objs[0]),
                                       masks.shape[2] - 1, off.loss_mod, mod.convert_one_hot)
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
    import argparse  # noqa: PLC0415
    import statistics  # noqa: PLC0415

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--official", required=True, help="checkout of lyxok1/STM-Training (cycle)")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--size", nargs=2, type=int, default=[240, 427], metavar=("H", "W"))
    p.add_argument("--objects", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    backend = setup_backends(args.device, args.threads)

    from benchmarks.official import stm_training as official  # noqa: PLC0415

    head = record.header(backend)
    models, loss_mod = official.import_official(args.official)
    sd = official.random_state_dict(models, args.arch, seed=args.seed)
    h, w = args.size
    clips = training_speed.synthetic_clips(1, 3, args.objects, args.objects, h, w,
                                           seed=args.seed)
    ours = training_speed.Ours(sd, args.arch, "float32", "highest")
    impls = {"ours": OursParts(ours, ours.prepare(*clips))}
    off = training_speed.Official(models, loss_mod, sd, args.arch, "float32", args.device)
    impls["official"] = OfficialParts(off, off.prepare(*clips))
    for impl in impls.values():
        impl.run()                               # warm-up (vosjax compiles here)
    runs = {name: [] for name in impls}
    for _ in range(args.repeats):
        for name, impl in impls.items():
            runs[name].append(impl.run())
    out = {}
    for name, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        med["backward"] = med["forward_backward"] - med["forward"]
        out[name] = {"median_s": {k: round(v, 4) for k, v in med.items()},
                     "runs": [{k: round(v, 4) for k, v in r.items()} for r in rs]}
    ratio = {k: round(out["official"]["median_s"][k] / out["ours"]["median_s"][k], 3)
             for k in ("forward", "backward", "forward_backward", "update")}
    result = {**head, "benchmark": "training_breakdown", "versions": record.versions(),
              "settings": {"arch": args.arch, "size": [h, w], "clip_len": 3, "batch": 1,
                           "objects": args.objects, "num_slots": args.objects, "cycle": True,
                           "threads": args.threads, "dtype": "float32",
                           "weights": "random, BN statistics calibrated on random input"},
              **out, "speedup": ratio, "load_average_end": record.load_average()}
    path = args.out or os.path.join(HERE, "results", f"training_breakdown_{backend}.json")
    record.write_json(path, result)
    print(json.dumps({"ours": out["ours"]["median_s"], "official": out["official"]["median_s"],
                      "speedup": ratio}))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
