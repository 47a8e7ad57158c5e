"""CPU/GPU time of one STM memorize + segment step (random weights), median after compile.

    python -m benchmarks.stm_step --arch resnet18 resnet50 --size 240x427 --objects 2

Writes ``benchmarks/results/stm_step_<backend>.json``: one row per arch (``warmup_s``: the
first call, compilation included).
"""
from __future__ import annotations

import argparse

from benchmarks import harness


def time_step(arch, h, w, objects, repeats):
    import jax
    import jax.numpy as jnp

    from vosjax.models.stm import STM, init_stm

    model = STM(arch=arch)
    v = init_stm(model, jax.random.PRNGKey(0), 64, 64, objects)
    frame = jax.random.normal(jax.random.PRNGKey(1), (h, w, 3))
    masks = (jax.random.uniform(jax.random.PRNGKey(2), (objects, h, w)) > 0.5).astype(jnp.float32)

    @jax.jit
    def step(v, prev, cur, masks):
        k, val = model.apply(v, prev, masks, method=model.memorize)
        return model.apply(v, cur, k, val, method=model.segment)

    timing = harness.time_calls(lambda: step(v, frame, frame, masks).block_until_ready(),
                                repeats)
    s = timing.stats
    return {"arch": arch, "size": [h, w], "objects": objects, "median_s": s["median_s"],
            "min_s": s["min_s"], "warmup_s": s["warmup_s"], "repeats": s["repeats"],
            "runs_s": s["runs_s"]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    harness.add_arch(p, ["resnet18", "resnet50"], multiple=True)
    harness.add_size(p)
    p.add_argument("--objects", type=int, default=2)
    harness.add_repeats(p, 10)
    harness.add_out(p, "stm_step_{backend}.json")
    a = p.parse_args(argv)
    import jax

    backend = jax.default_backend()
    run = harness.Run("stm_step", backend, __file__, argv,
                      settings={"objects": a.objects, "weights": "random (init_stm)"})
    for arch in a.arch:
        r = run.add_row(time_step(arch, *a.size, a.objects, a.repeats), show=False)
        print(f"{r['arch']:10s} {r['size']} x{r['objects']} objects: median "
              f"{r['median_s'] * 1e3:.1f} ms (first call {r['warmup_s']:.1f} s)", flush=True)
    run.write(harness.out_path(args=a, backend=backend))


if __name__ == "__main__":
    main()
