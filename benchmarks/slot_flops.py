"""FLOPs per training update spent on object slots: padded, trimmed, bucketed, unpadded.

    python -m benchmarks.slot_flops [--count-cost ../shared/data/davis2016-mini]

XLA's cost analysis (``jax.jit(step).lower(...).cost_analysis()``: the lowered program, so no
step is compiled or run; abstract ``ShapeDtypeStruct`` inputs) of one STM-cycle update (the
paper's R50, 240x427, 3-frame clips, cycle on) at batch ``B`` with ``n`` object slots, for
``n = 1..num_slots``, and of the same update at batch 1. The step is a ``vmap`` over clips,
so ``F(B, n) = B * g(n) + o``: ``g(n)`` is one clip's loss and gradient at ``n`` slots and
``o`` the optimizer update (solved from the two batch sizes).

Object-count mix: a seeded draw of ``--clips`` counts with probabilities ``--probs`` for
1..5 objects (default mean 1.94, max 5). This is an assumption meant to resemble YouTube-VOS
training clips (mean ~1.9, max 5 after the 5-object cap), not statistics we measured.

Policies on that stream (``config.train.slot_policy``):

* ``pad``: every update runs ``num_slots`` slots;
* ``trim``: consecutive batches of ``B`` clips, each run at its largest count;
* ``bucket``: :class:`vosjax.data.sampler.BucketSampler`'s rule on the same stream;
* unpadded reference: the same clips with no padding at all, ``sum_i g(n_i) + o`` per update.

Several hosts: the bucketed plan is recomputed with ``--hosts`` processes (each its own
:class:`BucketSampler` over the same counts); the script checks that every host gets the same
object count and that the host slices concatenate to the one-host global batch, and reports
the per-host batch shapes. The update's program is the global one on every host, so its FLOPs
are those of one host; ``trim`` is off on several hosts (the loop pads instead).

Optionally (``--count-cost DAVIS_ROOT``): the time of :meth:`ClipSampler.num_objects` (what
each host spends per global clip to bucket) against :meth:`ClipSampler.clip` on real DAVIS
frames at the working size with the paper's augmentation.

Writes ``benchmarks/results/slot_flops_<backend>.json``: one row per policy; the per-slot
counts, the object-count mix and the bucketing / several-hosts checks beside them.
"""
from __future__ import annotations

import argparse
import os
import time

from benchmarks import harness
from benchmarks.workloads import count_then_clip, davis_timing_split


class CountStream:
    """A stand-in :class:`ClipSampler` whose clip ``g`` holds ``counts[g]`` objects: enough for
    :class:`BucketSampler`'s plans (no pixels)."""

    def __init__(self, counts, *, global_batch_size, process_index, process_count, num_slots,
                 clip_len):
        import types
        self.counts, self.seed = counts, 0
        self.global_batch_size = global_batch_size
        self.process_index, self.process_count = process_index, process_count
        self.local_batch_size = global_batch_size // process_count
        self.config = types.SimpleNamespace(max_objects=num_slots)
        self.clip_len = clip_len

    def num_objects(self, g):
        if g >= len(self.counts):
            raise IndexError(g)
        return int(self.counts[g])

    def state(self, step):
        return {"step": int(step), "seed": self.seed}


def bucket_plans(counts, batch, hosts, num_slots, clip_len):
    """``[(n, global clips, [per-host (indices, masks shape)])]`` until the stream runs out."""
    from vosjax.data.sampler import BucketSampler

    samplers = [BucketSampler(CountStream(counts, global_batch_size=batch, process_index=p,
                                          process_count=hosts, num_slots=num_slots,
                                          clip_len=clip_len)) for p in range(hosts)]
    plans, step = [], 0
    while True:
        try:
            per_host = [s.local_clips(step) for s in samplers]
        except IndexError:
            return plans
        n, clips = samplers[0].plan(step)
        # The masks each host's step makes (on the device): [local clips, T, m + 1, H, W].
        plans.append((n, clips, [(list(idx), (len(idx), clip_len, m + 1)) for m, idx in per_host],
                      [s.plan(step) for s in samplers]))
        step += 1


def count_cost(root, size, clips, seed=0):
    """Seconds per clip of ``num_objects`` and of ``clip`` on DAVIS frames (the paper's
    augmentation, ``size``), the clips alternated."""
    import numpy as np

    from configs import stm_cycle
    from vosjax.data.augment import AugmentConfig
    from vosjax.data.davis import DavisDataset
    from vosjax.data.sampler import ClipSampler, SamplerConfig

    year, split = davis_timing_split(root)
    videos = DavisDataset(root, year=year, split=split)
    aug = AugmentConfig(**dict(stm_cycle.get_config("r50").data.augment))
    s = ClipSampler(videos, SamplerConfig(size=tuple(size), augment=aug), seed=seed,
                    global_batch_size=1, process_index=0, process_count=1)
    s.clip(0)                              # warm the readers
    t_count, t_clip = [], []
    for g in range(1, clips + 1):
        _, count_s, clip_s = count_then_clip(s, g)
        t_count.append(count_s)
        t_clip.append(clip_s)
    return {"davis_root": os.path.basename(os.path.normpath(root)), "year": year,
            "split": split, "num_videos": len(videos), "clips": clips,
            "num_objects_median_s": float(np.median(t_count)),
            "clip_median_s": float(np.median(t_clip)),
            "ratio": float(np.median(t_count) / np.median(t_clip))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.add_arch(p, "resnet50")
    harness.add_size(p)
    p.add_argument("--clip-len", type=int, default=3)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--num-slots", type=int, default=5)
    p.add_argument("--cycle", type=int, default=1)
    p.add_argument("--clips", type=int, default=20000, help="length of the drawn stream")
    p.add_argument("--probs", type=float, nargs="+", default=[0.45, 0.30, 0.15, 0.06, 0.04],
                   help="probability of 1, 2, ... objects per clip (assumed mix)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hosts", type=int, default=2)
    p.add_argument("--count-cost", default=None, metavar="DAVIS_ROOT")
    p.add_argument("--count-clips", type=int, default=24)
    harness.add_out(p, "slot_flops_{backend}.json")
    args = p.parse_args(argv)
    if len(args.probs) > args.num_slots or abs(sum(args.probs) - 1) > 1e-6:
        p.error("--probs: at most --num-slots probabilities summing to 1")

    import jax
    import jax.numpy as jnp
    import numpy as np

    from configs import stm_cycle
    from vosjax.data.sampler import next_bucket
    from vosjax.families import build_model
    from vosjax.families import get as get_family
    from vosjax.training import sharding as shd
    from vosjax.training.loop import build_optimizer
    from vosjax.training.step import jit_init_state, jit_train_step

    backend = jax.default_backend()
    run = harness.Run("slot_flops", backend, __file__, argv)
    config = stm_cycle.get_config("r50")
    config.model.arch = args.arch
    config.train.cycle = bool(args.cycle)
    config.data.size = tuple(args.size)
    config.data.clip_len = args.clip_len
    mesh = shd.make_mesh(1, jax.devices()[:1])
    task = get_family(config.model.name)
    model, tx = build_model(config.model), build_optimizer(config.train)
    _, _, abstract = jit_init_state(task.init_variables(model, config), tx, mesh)
    step_fn, _ = jit_train_step(task.loss(model, config), tx, mesh, abstract)
    h, w = args.size

    def flops(b, n):
        batch = {"frames": jax.ShapeDtypeStruct((b, args.clip_len, h, w, 3), jnp.float32),
                 "masks": jax.ShapeDtypeStruct((b, args.clip_len, n + 1, h, w), jnp.float32),
                 "num_objects": jax.ShapeDtypeStruct((b,), jnp.int32)}
        return float(step_fn.lower(abstract, batch).cost_analysis()["flops"])

    slots = range(1, args.num_slots + 1)
    big, one, lower_s = {}, {}, []
    for n in slots:
        t = time.perf_counter()
        big[n], one[n] = flops(args.batch, n), flops(1, n)
        lower_s.append(time.perf_counter() - t)
        print(f"n={n}: F({args.batch})={big[n] / 1e12:.3f} TFLOP, F(1)={one[n] / 1e12:.4f}",
              flush=True)
    per_clip = {n: (big[n] - one[n]) / (args.batch - 1) for n in slots}
    opt = {n: one[n] - per_clip[n] for n in slots}
    o = float(np.mean(list(opt.values())))

    probs = np.asarray(args.probs)
    counts = np.random.default_rng(args.seed).choice(np.arange(1, len(probs) + 1),
                                                     size=args.clips, p=probs)
    b = args.batch

    def reference(clips):                                  # no padding at all
        return sum(per_clip[int(counts[g])] for g in clips) + o

    policies = {}
    steps = args.clips // b
    consecutive = [range(s * b, (s + 1) * b) for s in range(steps)]
    policies["pad"] = ([big[args.num_slots]] * steps, consecutive)
    policies["trim"] = ([big[int(counts[list(c)].max())] for c in consecutive], consecutive)
    plans = bucket_plans(counts, b, args.hosts, args.num_slots, args.clip_len)
    policies["bucket"] = ([big[n] for n, *_ in plans], [c for _, c, *_ in plans])
    # The rule itself, one host, straight from next_bucket: the same plan.
    one_host, st = [], None
    from vosjax.data.sampler import BucketState
    st = BucketState.initial(args.num_slots)
    for _ in plans:
        n, c, st = next_bucket(st, lambda g: counts[g], b)
        one_host.append((n, c))
    for name, (fl, clips) in policies.items():
        ref = sum(reference(c) for c in clips)
        run.add_row({"policy": name, "updates": len(fl),
                     "tflop_per_update": sum(fl) / len(fl) / 1e12,
                     "unpadded_tflop_per_update": ref / len(fl) / 1e12,
                     "ratio_to_unpadded": sum(fl) / ref}, show=False)
    emitted = sorted(g for _, c, *_ in plans for g in c)
    n_hist = {str(n): sum(1 for m, *_ in plans if m == n) for n in slots}
    hosts_agree = all(len({pl for pl in host_plans}) == 1 for *_, host_plans in plans)
    slices_concat = all([g for idx, _ in hs for g in idx] == list(c) for _, c, hs, _ in plans)
    shapes = {}
    for n, _, hs, _ in plans:
        for p_i, (_, shape) in enumerate(hs):
            shapes.setdefault(str(n), set()).add((p_i, (*shape, h, w)))
    per_host_shapes = {n: sorted({s for _, s in v}) for n, v in shapes.items()}

    run.result["settings"] = {
        "config": "configs/stm_cycle.py", "arch": args.arch, "size": list(args.size),
        "clip_len": args.clip_len, "batch": b, "num_slots": args.num_slots,
        "cycle": bool(args.cycle), "compute": str(config.model.compute)}
    out = {"flops_source": "XLA cost analysis of the lowered training step (jit(...).lower("
                           "abstract inputs).cost_analysis()): nothing compiled or executed",
           "object_count_mix": {
               "assumption": "an assumed YouTube-VOS-like mix of objects per training clip "
                             "(mean ~1.9, max 5 after the 5-object cap); not statistics "
                             "measured by us",
               "probs": {str(k + 1): float(q) for k, q in enumerate(probs)},
               "mean": float(np.dot(np.arange(1, len(probs) + 1), probs)),
               "draw": f"numpy default_rng({args.seed}).choice, {args.clips} clips",
               "drawn_mean": float(counts.mean()), "drawn_max": int(counts.max())},
           "tflop_step": {f"batch{b}": {str(n): big[n] / 1e12 for n in slots},
                          "batch1": {str(n): one[n] / 1e12 for n in slots}},
           "tflop_per_clip": {str(n): per_clip[n] / 1e12 for n in slots},
           "tflop_optimizer_update": o / 1e12,
           "lower_s": [round(t, 1) for t in lower_s],
           "bucket": {"updates_by_object_count": n_hist,
                      "clips_emitted": len(emitted), "clips_drawn": args.clips,
                      "each_clip_once": emitted == sorted(set(emitted)),
                      "pending_at_end": args.clips - len(emitted),
                      "same_plan_as_next_bucket": [(n, tuple(c)) for n, c, *_ in plans]
                      == [(n, tuple(c)) for n, c in one_host]},
           "hosts": {
               "process_count": args.hosts,
               "every_host_same_object_count_and_clips": hosts_agree,
               "host_slices_concatenate_to_global_batch": slices_concat,
               "per_host_masks_shape_by_n": per_host_shapes,
               "note": "each host runs the same global program (one update over the global "
                       "batch, each host's devices on its slice), so FLOPs per update are the "
                       "one-host figures; on several hosts 'trim' is off and pads "
                       "(= 'pad'), 'bucket' is unchanged"}}
    if args.count_cost:
        out["count_cost"] = count_cost(args.count_cost, args.size, args.count_clips)
    print({r["policy"]: round(r["ratio_to_unpadded"], 3) for r in run.rows},
          {r["policy"]: round(r["tflop_per_update"], 2) for r in run.rows})
    run.write(harness.out_path(args, backend), **out)


if __name__ == "__main__":
    main()
