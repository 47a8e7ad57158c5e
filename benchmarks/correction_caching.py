"""Before/after of the correction's cached features: one gradient correction (eq. 5, N steps)
as vosjax runs it vs the same descent recomputing what does not depend on the mask.

    python -m benchmarks.correction_caching --arch resnet18 --size 240x427 --objects 2 \
        --out benchmarks/results/correction_caching_cpu.json

"after" (:func:`vosjax.correction.correct_mask`): the reference frame's query features come in
precomputed (once per video) and the memory encoder's first convolution of the corrected frame
(``memory_stem``, mask-independent) is computed once per correction. "before": the reference
query is encoded inside the correction and the stem inside every descent step (what a direct
port of the official loop does). Both are jitted with the same ``unroll``; the calls alternate
and the median of ``--repeats`` is reported, with the max abs difference of the results.
"""
from __future__ import annotations

import argparse
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--size", default="240x427")
    p.add_argument("--objects", type=int, default=2)
    p.add_argument("--n-iter", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from benchmarks import harness as record  # noqa: PLC0415
    from vosjax.correction import (correct_mask, default_unroll, masks_to_probs,  # noqa: PLC0415
                                   reconstruction_loss)
    from vosjax.models.stm import STM, init_stm  # noqa: PLC0415

    head = record.header("cpu")
    h, w = (int(v) for v in args.size.split("x"))
    o, n_iter, rate = args.objects, args.n_iter, 180.0
    unroll = default_unroll(n_iter)
    model = STM(args.arch)
    variables = jax.jit(lambda r: init_stm(model, r, h, w))(jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    frame, ref = (jnp.asarray(rng.normal(size=(h, w, 3)), jnp.float32) for _ in range(2))
    masks = np.zeros((o, h, w), np.float32)
    for i in range(o):
        masks[i, 20 + 30 * i:80 + 30 * i, 40 + 60 * i:140 + 60 * i] = 1.0
    ref_probs = masks_to_probs(jnp.asarray(masks), o)
    probs = jax.nn.softmax(ref_probs * 4.0, axis=0)

    @jax.jit
    def after(v, frame, probs, ref_query, ref_probs):
        return correct_mask(model, v, frame, probs, ref_query, ref_probs, n_iter=n_iter,
                            rate=rate, unroll=unroll)[0]

    @jax.jit
    def before(v, frame, probs, ref_frame, ref_probs):
        ref_query = model.apply(v, ref_frame, method=model.encode_query)
        grad = jax.grad(lambda m: reconstruction_loss(model, v, frame, m, ref_query, ref_probs))

        def body(_, m):
            return m - rate * grad(m)
        m = jax.lax.fori_loop(0, n_iter, body, probs[1:o + 1], unroll=unroll)
        return probs.at[1:o + 1].set(m)

    ref_query = jax.jit(lambda v, f: model.apply(v, f, method=model.encode_query))(variables, ref)
    calls = {"after": lambda: after(variables, frame, probs, ref_query, ref_probs),
             "before": lambda: before(variables, frame, probs, ref, ref_probs)}
    compile_s, outs = {}, {}
    for name, fn in calls.items():
        start = time.perf_counter()
        outs[name] = np.asarray(jax.block_until_ready(fn()))
        compile_s[name] = time.perf_counter() - start
    times = {name: [] for name in calls}
    for r in range(args.repeats):
        for name in (("after", "before") if r % 2 == 0 else ("before", "after")):
            start = time.perf_counter()
            jax.block_until_ready(calls[name]())
            times[name].append(time.perf_counter() - start)
    med = {k: float(np.median(v)) for k, v in times.items()}
    out = {**head, **record.versions(), "benchmark": "correction_caching",
           "config": {"arch": args.arch, "size": [h, w], "objects": o, "n_iter": n_iter,
                      "unroll": unroll, "weights": "random (init_stm)"},
           "median_s": med, "runs_s": times, "first_call_s": compile_s,
           "speedup": med["before"] / med["after"],
           "max_abs_diff": float(np.abs(outs["after"] - outs["before"]).max()),
           "load_average_end": record.load_average()}
    record.write_json(args.out, out)
    print(f"before {med['before']:.3f} s, after {med['after']:.3f} s, "
          f"{out['speedup']:.2f}x, max abs diff {out['max_abs_diff']:.2e}")


if __name__ == "__main__":
    main()
