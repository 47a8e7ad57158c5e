"""Before/after of the correction's cached features: one gradient correction (eq. 5, N steps)
as vosjax runs it vs the same descent recomputing what does not depend on the mask.

    python -m benchmarks.correction_caching --arch resnet18 --size 240x427 --objects 2

"after" (:func:`vosjax.correction.correct_mask`): the reference frame's query features come in
precomputed (once per video) and the memory encoder's first convolution of the corrected frame
(``memory_stem``, mask-independent) is computed once per correction. "before": the reference
query is encoded inside the correction and the stem inside every descent step (what a direct
port of the official loop does). Both are jitted with the same ``unroll``; the calls alternate
(every other round in reverse order) and the median of ``--repeats`` is reported, with the max
abs difference of the results: one before/after row (``warmup_s``: the first call, compiling).
Writes ``benchmarks/results/correction_caching_<backend>.json`` by default.
"""
from __future__ import annotations

import argparse

from benchmarks import harness


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.add_arch(p, "resnet18")
    harness.add_size(p)
    p.add_argument("--objects", type=int, default=2)
    p.add_argument("--n-iter", type=int, default=10)
    harness.add_repeats(p, 5)
    harness.add_out(p, "correction_caching_{backend}.json")
    args = p.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import numpy as np

    from vosjax.correction import correct_mask, default_unroll, masks_to_probs, reconstruction_loss
    from vosjax.models.stm import STM, init_stm

    backend = jax.default_backend()
    h, w = args.size
    o, n_iter, rate = args.objects, args.n_iter, 180.0
    unroll = default_unroll(n_iter)
    run = harness.Run("correction_caching", backend, __file__, argv, settings={
        "arch": args.arch, "size": [h, w], "objects": o, "n_iter": n_iter, "unroll": unroll,
        "weights": "random (init_stm)"})
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
    before_s, after_s, out_b, out_a = harness.before_after(
        lambda: jax.block_until_ready(before(variables, frame, probs, ref, ref_probs)),
        lambda: jax.block_until_ready(after(variables, frame, probs, ref_query, ref_probs)),
        args.repeats, zigzag=True)
    row = run.add_row(harness.speedup_row(
        f"{args.arch} {h}x{w}, {o} objects, one correction of {n_iter} steps", "recomputed",
        "cached", before_s, after_s,
        max_abs_diff=float(np.abs(np.asarray(out_a) - np.asarray(out_b)).max())), show=False)
    print(f"before {before_s['median_s']:.3f} s, after {after_s['median_s']:.3f} s, "
          f"{row['speedup']:.2f}x, max abs diff {row['max_abs_diff']:.2e}")
    run.write(harness.out_path(args, backend))


if __name__ == "__main__":
    main()
