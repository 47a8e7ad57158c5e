"""CPU/GPU time of one STM memorize + segment step (random weights), median after compile.

    python -m benchmarks.stm_step --arch resnet18 resnet50 --size 240 427 --objects 2

Writes ``benchmarks/results/stm_step_<backend>.json`` (device, versions, command, load).
"""
import argparse
import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp

from benchmarks.harness import cpu_name
from vosjax.models.stm import STM, init_stm


def time_step(arch, h, w, objects, repeats):
    model = STM(arch=arch)
    v = init_stm(model, jax.random.PRNGKey(0), 64, 64, objects)
    frame = jax.random.normal(jax.random.PRNGKey(1), (h, w, 3))
    masks = (jax.random.uniform(jax.random.PRNGKey(2), (objects, h, w)) > 0.5).astype(jnp.float32)

    @jax.jit
    def step(v, prev, cur, masks):
        k, val = model.apply(v, prev, masks, method=model.memorize)
        return model.apply(v, cur, k, val, method=model.segment)

    t0 = time.perf_counter()
    step(v, frame, frame, masks).block_until_ready()
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step(v, frame, frame, masks).block_until_ready()
        times.append(time.perf_counter() - t0)
    return {"arch": arch, "size": [h, w], "objects": objects, "median_s": statistics.median(times),
            "min_s": min(times), "compile_s": compile_s, "repeats": repeats}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", nargs="+", default=["resnet18", "resnet50"])
    p.add_argument("--size", nargs=2, type=int, default=[240, 427])
    p.add_argument("--objects", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    dev = jax.devices()[0]
    rows = [time_step(arch, *a.size, a.objects, a.repeats) for arch in a.arch]
    out = {"device": dev.device_kind if dev.platform != "cpu" else cpu_name(),
           "backend": dev.platform, "cpu_count": os.cpu_count(),
           "load_average_at_end": os.getloadavg(), "jax": jax.__version__,
           "command": "python " + " ".join(sys.argv), "rows": rows}
    path = a.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                 f"stm_step_{dev.platform}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(out, f, indent=2)
    os.replace(path + ".tmp", path)
    for r in rows:
        print(f"{r['arch']:10s} {r['size']} x{r['objects']} objects: median {r['median_s']*1e3:.1f} ms"
              f" (compile {r['compile_s']:.1f} s)")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
