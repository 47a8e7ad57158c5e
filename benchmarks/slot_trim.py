"""Training speed with and without trimming unused object slots (``slot_policy="trim"``).

    python -m benchmarks.slot_trim [--steps 40]

The demo STM config (ResNet-10, 64x96, batch 4, 3 slots, synthetic clips with 1-3 objects):
the same batches are timed with the padded step ("before") and with the trimmed one ("after"),
alternating batch by batch so that machine load affects both alike. Every object count is
compiled before timing. One before/after row (:func:`benchmarks.harness.speedup_row`, compared
on clips/s); writes ``benchmarks/results/slot_trim_cpu.json`` by default.
"""
from __future__ import annotations

import argparse

from benchmarks import harness


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=40, help="batches, each timed padded and trimmed")
    p.add_argument("--cycle", type=int, default=1)
    harness.add_out(p, "slot_trim_{backend}.json")
    args = p.parse_args(argv)

    import jax
    import numpy as np

    from configs import demo
    from vosjax.families import build_model
    from vosjax.families import get as get_family
    from vosjax.training import sharding as shd
    from vosjax.training.input_pipeline import trim_slots
    from vosjax.training.loop import build_optimizer
    from vosjax.training.step import jit_init_state, jit_train_step

    backend = jax.default_backend()
    config = demo.get_config()
    config.train.cycle = bool(args.cycle)
    mesh = shd.make_mesh(1, jax.devices()[:1])
    task = get_family(config.model.name)
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

    bs = config.train.batch_size
    settings = {"config": "configs/demo.py", "arch": config.model.arch,
                "size": list(config.data.size), "batch": bs,
                "num_slots": config.data.num_slots, "cycle": bool(args.cycle),
                "steps": args.steps}
    run_record = harness.Run("slot_trim", backend, __file__, argv, settings=settings)
    state = [init_fn(jax.random.PRNGKey(0))]
    # Compile every shape used: the padded batch and each trimmed object count.
    seen = set()
    for b in batches:
        for x in (b, trim_slots(b)):
            if x["masks"].shape not in seen:
                seen.add(x["masks"].shape)
                state[0] = run(state[0], x)
    padded, trimmed = iter(batches), iter([trim_slots(b) for b in batches])  # not timed

    def step(source):           # one round: the next batch of ``source``
        def call():
            state[0] = run(state[0], next(source))
        return call
    t = harness.alternate({"padded": step(padded), "trimmed": step(trimmed)}, len(batches),
                          warmup=False)
    res = {}
    for name in ("padded", "trimmed"):
        times = t[name].stats["runs_s"]
        res[name] = {"median_s": float(np.median(times)), "total_s": float(np.sum(times)),
                     "clips_per_s": bs * len(times) / float(np.sum(times))}
    row = run_record.add_row(harness.speedup_row(
        f"{settings['arch']} {settings['size'][0]}x{settings['size'][1]}, batch {bs}, "
        f"{settings['num_slots']} slots, cycle {'on' if args.cycle else 'off'}",
        "padded", "trimmed", res["padded"], res["trimmed"], metric="clips_per_s",
        batch_max_objects={str(k): counts.count(k) for k in sorted(set(counts))},
        compiled_shapes=len(seen)))
    print({k: row[k] for k in ("batch_max_objects", "speedup")})
    run_record.write(harness.out_path(args, backend))


if __name__ == "__main__":
    main()
