"""Training clips/s of the STM-cycle step: vosjax's jitted step and the official STM-Training
``train`` loop, side by side in one process, same random weights, same synthetic clips.

    python -m benchmarks.training_speed --official /path/to/STM-Training \\
        --arch resnet50 resnet18 --batch 1 4 --size 240x427 --objects 2 --device cpu

One row per (arch, batch size B, dtype, vosjax slots):

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
import os

from benchmarks import harness
from benchmarks.official.stm_training import LEARNING_RATE, WEIGHT_DECAY
from benchmarks.workloads import VosjaxTraining, synthetic_clips


def time_updates(impl, batch, repeats: int, count_compiles: bool) -> dict:
    """One warm-up update (its loss is ``first_loss``), then ``repeats`` timed updates."""
    timing = harness.time_calls(lambda: impl.update(batch), repeats,
                                count_compiles=count_compiles)
    return {**timing.stats, "first_loss": timing.first}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    harness.add_official(p)
    harness.add_arch(p, ["resnet50", "resnet18"], multiple=True)
    p.add_argument("--batch", nargs="+", type=int, default=[1, 4])
    harness.add_size(p)
    p.add_argument("--clip-len", type=int, default=3)
    p.add_argument("--objects", type=int, default=2, help="objects in every clip")
    p.add_argument("--num-slots", nargs="+", type=int, default=[5, 2],
                   help="object slots of vosjax's compiled step (config: 5 = the official "
                   "MAX_TRAINING_OBJ; = --objects: no empty slots); official runs once")
    p.add_argument("--dtype", nargs="+", choices=["float32", "bfloat16"], default=["float32"])
    p.add_argument("--precision", default="highest")
    harness.add_repeats(p, 3, "timed updates")
    p.add_argument("--peak-flops", type=float, default=None,
                   help="device peak FLOP/s for MFU (e.g. 989e12 for H100 SXM dense bf16)")
    harness.add_device(p)
    p.add_argument("--skip-official", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    harness.add_out(p, "training_{backend}.json")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    backend = harness.setup_backends(args.device, args.threads)
    import torch

    from benchmarks.official import stm_training as official

    models, loss_mod = official.import_official(args.official)
    run = harness.Run("training", backend, __file__, argv, settings={
        "optimizer": "adam", "learning_rate": LEARNING_RATE, "weight_decay": WEIGHT_DECAY,
        "cycle": True, "precision": args.precision, "threads": args.threads,
        "peak_flops": args.peak_flops,
        "flops_note": "XLA cost analysis of vosjax's compiled step; it counts all num_slots "
        "object slots (the official code runs num_objects)",
        "weights": "random, BN statistics calibrated on random input",
        "torch_threads": torch.get_num_threads(),
        "official_checkout": os.path.abspath(args.official)})
    h, w = args.size
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
                           "num_slots": slots,
                           "load_average": {"start": harness.load_average()}}
                    ours = VosjaxTraining(sd, arch, dtype, args.precision)
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
                            off = official.OfficialTraining(models, loss_mod, sd, arch, dtype,
                                                            args.device)
                            off_res = time_updates(off, off.prepare(*clips), args.repeats, False)
                            off_res["clips_per_s"] = round(b / off_res["median_s"], 4)
                            del off
                        row["official"] = off_res
                        row["speedup"] = round(row["ours"]["clips_per_s"]
                                               / off_res["clips_per_s"], 3)
                        row["first_loss_abs_diff"] = abs(row["ours"]["first_loss"]
                                                         - off_res["first_loss"])
                    row["load_average"]["end"] = harness.load_average()
                    run.add_row(row)
    run.write(harness.out_path(args, backend))


if __name__ == "__main__":
    main()
