"""Training speed with and without trimming unused object slots (``slot_policy="trim"``).

    python -m benchmarks.slot_trim --out benchmarks/results/slot_trim_cpu.json

The demo STM config (ResNet-10, 64x96, batch 4, 3 slots, synthetic clips with 1-3 objects):
the same batches are timed with the padded step and with the trimmed one, alternating batch by
batch so that machine load affects both alike. Every object count is compiled before timing.
"""
from __future__ import annotations

import argparse
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--cycle", type=int, default=1)
    args = p.parse_args(argv)

    import jax  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from benchmarks import harness as record  # noqa: PLC0415
    from configs import demo  # noqa: PLC0415
    from vosjax.training import sharding as shd  # noqa: PLC0415
    from vosjax.training.input_pipeline import trim_slots  # noqa: PLC0415
    from vosjax.training.loop import build_model, build_optimizer  # noqa: PLC0415
    from vosjax.training.step import jit_init_state, jit_train_step  # noqa: PLC0415
    from vosjax.training.tasks import get_task  # noqa: PLC0415

    head = record.header("cpu")
    config = demo.get_config()
    config.train.cycle = bool(args.cycle)
    mesh = shd.make_mesh(1, jax.devices()[:1])
    task = get_task(config.model)
    model, tx = build_model(config.model), build_optimizer(config.train)
    init_fn, _, abstract = jit_init_state(task.init_variables(model, config), tx, mesh)
    step_fn, _ = jit_train_step(task.loss(model, config), tx, mesh, abstract)
    sharding = shd.batch_sharding(mesh)
    sampler = task.batches(config)
    batches = [sampler.batch(s) for s in range(args.steps)]
    counts = [int(np.max(b["num_objects"])) for b in batches]

    def run(state, batch):
        state, m = step_fn(state, shd.global_batch(batch, sharding))
        jax.block_until_ready(m["loss"])
        return state

    state = init_fn(jax.random.PRNGKey(0))
    # Compile every shape used: the padded batch and each trimmed object count.
    seen = set()
    for b in batches:
        for x in (b, trim_slots(b)):
            if x["masks"].shape not in seen:
                seen.add(x["masks"].shape)
                state = run(state, x)
    times = {"padded": [], "trimmed": []}
    for b in batches:
        for name, x in (("padded", b), ("trimmed", trim_slots(b))):
            start = time.perf_counter()
            state = run(state, x)
            times[name].append(time.perf_counter() - start)
    bs = config.train.batch_size
    res = {name: {"median_step_s": float(np.median(t)), "total_s": float(np.sum(t)),
                  "clips_per_s": bs * len(t) / float(np.sum(t))} for name, t in times.items()}
    out = {**head, **record.versions(), "benchmark": "slot_trim",
           "config": {"config": "configs/demo.py", "arch": config.model.arch,
                      "size": list(config.data.size), "batch": bs,
                      "num_slots": config.data.num_slots, "cycle": bool(args.cycle),
                      "steps": args.steps},
           "batch_max_objects": {str(k): counts.count(k) for k in sorted(set(counts))},
           "compiled_shapes": len(seen), **res,
           "speedup": res["trimmed"]["clips_per_s"] / res["padded"]["clips_per_s"],
           "load_average_end": record.load_average()}
    record.write_json(args.out, out)
    print({k: out[k] for k in ("batch_max_objects", "speedup")}, res)


if __name__ == "__main__":
    main()
