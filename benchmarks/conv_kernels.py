"""Single convolutions of STM's shapes in XLA and PyTorch: what bounds the CPU rows.

    python -m benchmarks.conv_kernels [--device gpu] [--scale 0.5]

STM's time is spent in its convolutions (a profile of one R18 propagation step at 240x427 on
CPU: 93% in XLA's convolution kernels). This times the same convolutions alone in both
libraries (float32, same data): forward, gradient w.r.t. the input, w.r.t. the kernel, and
both; achieved GFLOP/s. Medians after a warm-up, the libraries alternating (each part timed
twice per library, the better median kept). Writes
``benchmarks/results/conv_kernels_<backend>.json``.
"""
from __future__ import annotations

import argparse

from benchmarks import harness

# (name, H, W, C_in, C_out, kernel, stride): layers of STM R18 at 240x427
SHAPES = [
    ("decoder ResMM / skip ResFS (stride 4)", 60, 107, 256, 256, 3, 1),
    ("decoder ResMM (stride 8)", 30, 54, 256, 256, 3, 1),
    ("ResNet-18 layer1 (stride 4)", 60, 107, 64, 64, 3, 1),
    ("memory encoder conv1 (frame + masks)", 240, 427, 5, 64, 7, 2),
    ("key / value head (stride 16)", 15, 27, 256, 512, 3, 1),
]
PARTS = ("forward", "grad_input", "grad_kernel", "grad_both")


def jax_fns(x, w, stride, device):
    import jax
    import jax.numpy as jnp

    dev = jax.devices("gpu" if device == "gpu" else "cpu")[0]
    xj, wj = jax.device_put(x, dev), jax.device_put(w, dev)

    def conv(a, b):
        pad = w.shape[0] // 2
        return jax.lax.conv_general_dilated(a, b, (stride, stride), [(pad, pad)] * 2,
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                            precision="highest")

    def loss(a, b):
        return jnp.sum(jnp.square(conv(a, b)))

    fns = {"forward": jax.jit(conv), "grad_input": jax.jit(jax.grad(loss, 0)),
           "grad_kernel": jax.jit(jax.grad(loss, 1)), "grad_both": jax.jit(jax.grad(loss, (0, 1)))}
    return {k: (lambda f=f: jax.block_until_ready(f(xj, wj))) for k, f in fns.items()}


def torch_fns(x, w, stride, device):
    import torch

    dev = "cuda" if device == "gpu" else "cpu"
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).to(dev)
    wt = torch.from_numpy(w.transpose(3, 2, 0, 1).copy()).to(dev)
    pad = w.shape[0] // 2
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)

    def fwd():
        with torch.no_grad():
            torch.nn.functional.conv2d(xt, wt, stride=stride, padding=pad)
        sync()

    def grad(wrt_x, wrt_w):
        def run():
            a, b = xt.detach().requires_grad_(wrt_x), wt.detach().requires_grad_(wrt_w)
            y = torch.nn.functional.conv2d(a, b, stride=stride, padding=pad)
            torch.autograd.grad(torch.sum(torch.square(y)),
                                [t for t, r in ((a, wrt_x), (b, wrt_w)) if r])
            sync()
        return run

    return {"forward": fwd, "grad_input": grad(True, False), "grad_kernel": grad(False, True),
            "grad_both": grad(True, True)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    harness.add_device(p)
    harness.add_repeats(p, 7, "timed calls per part and library")
    p.add_argument("--scale", type=float, default=1.0, help="spatial scale of the inputs")
    harness.add_out(p, "conv_kernels_{backend}.json")
    args = p.parse_args(argv)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    backend = "gpu" if args.device == "gpu" else "cpu"
    run = harness.Run("conv_kernels", backend, __file__, argv, settings={
        "threads": args.threads, "dtype": "float32", "torch_threads": torch.get_num_threads()})
    rng = np.random.default_rng(0)
    for name, h, w, ci, co, k, s in SHAPES:
        h, w = max(k, round(h * args.scale)), max(k, round(w * args.scale))
        x = rng.standard_normal((1, h, w, ci)).astype(np.float32)
        kern = (rng.standard_normal((k, k, ci, co)) / np.sqrt(k * k * ci)).astype(np.float32)
        oh, ow = (h + 2 * (k // 2) - k) // s + 1, (w + 2 * (k // 2) - k) // s + 1
        flops = 2.0 * oh * ow * ci * co * k * k
        impls = {"jax": jax_fns(x, kern, s, args.device), "torch": torch_fns(x, kern, s,
                                                                               args.device)}
        row = {"layer": name, "input": [1, h, w, ci], "kernel": [k, k, ci, co], "stride": s,
               "forward_gflop": round(flops / 1e9, 3),
               "load_average": {"start": harness.load_average()}}
        for part in PARTS:
            t = {}
            for lib in ("jax", "torch", "jax", "torch"):   # alternate; keep the better median
                median = harness.time_calls(impls[lib][part], args.repeats).stats["median_s"]
                t[lib] = min(t.get(lib, float("inf")), median)
            # the gradients cost about twice the forward each (grad_both: 3x incl. forward)
            mult = {"forward": 1, "grad_input": 2, "grad_kernel": 2, "grad_both": 3}[part]
            row[part] = {lib: {"ms": round(v * 1e3, 2),
                               "gflop_per_s": round(mult * flops / v / 1e9, 1)}
                         for lib, v in t.items()}
            row[part]["jax_over_torch_time"] = round(t["jax"] / t["torch"], 2)
        run.add_row(row)
    run.write(harness.out_path(args, backend))


if __name__ == "__main__":
    main()
