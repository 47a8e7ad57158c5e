"""Golden outputs of the original STM code (seoungwugoh/STM) for
``tests/test_golden_stm_original.py``, with weights drawn from a seeded numpy generator.

This module is numpy (and vosjax) only: the test imports :func:`draw_state_dict` and the input
builders; the official side (torch) is :mod:`benchmarks.official.stm_original`.

Command (needs torch and a checkout of the official repository, never vendored)::

    python -m benchmarks.golden_stm_original --checkout /path/to/STM \
        --davis ../shared/data/davis2016-mini --out tests/data/stm_original_golden.npz

The weights are not stored: the file holds the state-dict names and shapes in order, and
:func:`draw_state_dict` (numpy only) redraws the values, so the test needs no torch. The
official model is built without pretrained weights (``torchvision.models.resnet50`` is asked
for ``weights=None``) and every entry is then overwritten. Stored:

* ``step_*``: one ``memorize`` + ``segment`` of the official ``STM`` (3 soft objects, a
  80x136 frame padded by the official code to 80x144): memory keys/values, the K=11
  soft-aggregated logits (channels 0..3; the rest are the constant clamp).
* ``prop_<clip>``: the official ``eval_DAVIS.py`` loop (``Run_video``, ``Mem_every=5``, K=11)
  on the first :data:`PROP_FRAMES` frames of each davis2016-mini clip at
  :data:`PROP_SIZE`, the object split in two (left / right half of its box) so the "other"
  channel takes part; probabilities of channels 0..2 on a stride-4 grid.
* ``sens_<clip>``: per frame, the official loop's max abs change of those probabilities when
  every input frame is perturbed by uniform noise of amplitude 1e-6 (the random network's own
  sensitivity; the test compares where it stays small).
* ``padprop_<clip>`` / ``padsens_<clip>``: the same loop on frames of :data:`PAD_SIZE`
  (narrower than a multiple of 16), which the official code pads (black, centred) to
  :data:`PAD_CANVAS` at every ``memorize`` and ``segment`` and crops back, so each memorized
  mask is 0 on the padding; probabilities on the content, channels 0..2, stride-4 grid.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

SEED = 0
STEP_SIZE = (80, 136)     # padded to 80x144 by the official code
PROP_SIZE = (64, 112)     # multiples of 16: both codes see the same (unpadded) frames
PROP_FRAMES = 20
PAD_SIZE = (64, 107)      # the official code pads it to 64x112 (2 columns left, 3 right)
PAD_CANVAS = (64, 112)
STRIDE = 4
CLIPS = ("blackswan", "car-shadow", "motocross-jump")


# ---------------------------------------------------------------------------------------------
# Weights (numpy only: the test redraws them)
# ---------------------------------------------------------------------------------------------
def draw_state_dict(names, shapes, seed: int = SEED) -> dict:
    """Values for the official state dict's ``names`` / ``shapes`` (in ``state_dict`` order)
    from ``numpy.random.default_rng(seed)``.

    Conv weights ``N(0, sqrt(2 / fan_in))``, conv biases ``N(0, 0.01)``, BatchNorm weight
    ``U(0.5, 1.5)``, bias / running mean ``N(0, 0.1)``, running var ``U(0.5, 1.5)``; then, so
    that the eval-mode network does not saturate, the key convolutions x1/16, ``pred2`` x1/32,
    the mask stems ``conv1_m`` / ``conv1_o`` x1/8 and every bottleneck's last BN weight x1/4
    (the residual sums of the 13 ResNet-50 blocks stay O(1)). Buffers ``mean``/``std`` get the
    ImageNet constants, ``num_batches_tracked`` 0.
    """
    rng = np.random.default_rng(seed)
    names = [str(n) for n in names]
    bn_prefixes = {n[:-len(".running_mean")] for n in names if n.endswith(".running_mean")}
    out = {}
    for name, shape in zip(names, shapes):
        shape = tuple(int(s) for s in shape)
        prefix, leaf = name.rsplit(".", 1)
        if leaf == "num_batches_tracked":
            out[name] = np.zeros(shape, np.int64)
            continue
        if leaf in ("mean", "std"):
            const = [0.485, 0.456, 0.406] if leaf == "mean" else [0.229, 0.224, 0.225]
            out[name] = np.asarray(const, np.float32).reshape(shape)
            continue
        if prefix in bn_prefixes:
            if leaf == "weight" or leaf == "running_var":
                v = rng.uniform(0.5, 1.5, shape)
            else:
                v = rng.normal(0.0, 0.1, shape)
            if leaf == "weight" and prefix.endswith(".bn3"):
                v = v / 4
        elif leaf == "weight":
            fan_in = int(np.prod(shape[1:]))
            v = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        else:
            v = rng.normal(0.0, 0.01, shape)
        if prefix.endswith(".Key"):
            v = v / 16
        elif prefix == "Decoder.pred2":
            v = v / 32
        elif prefix in ("Encoder_M.conv1_m", "Encoder_M.conv1_o"):
            v = v / 8
        out[name] = np.asarray(v, np.float32)
    return out


# ---------------------------------------------------------------------------------------------
# Inputs (numpy + vosjax's transforms: the test rebuilds them)
# ---------------------------------------------------------------------------------------------
def _load(davis_root: str, clip: str, n: int):
    """uint8 frames ``[n, 480, 854, 3]`` and the binary frame-0 mask of a DAVIS-2016 clip."""
    from vosjax.data.davis import load_davis_video

    video = load_davis_video(davis_root, clip, year="2016")
    return video.load_frames(range(n)), video.load_labels([0])


def step_inputs(davis_root: str):
    """uint8 frames ``[2, 80, 136, 3]`` (blackswan 0 and 1) and soft masks ``[3, 80, 136]``."""
    frames, labels = _load(davis_root, "blackswan", 2)
    small = _resize_uint8(frames, STEP_SIZE)
    gt = _resize_labels(labels[0] > 0, STEP_SIZE).astype(np.float32)
    ys, xs = np.nonzero(gt)
    edges = np.linspace(xs.min(), xs.max() + 1, 4).astype(int)
    masks = np.zeros((3,) + STEP_SIZE, np.float32)
    for o in range(3):
        band = np.zeros(STEP_SIZE, np.float32)
        band[:, edges[o]:edges[o + 1]] = 1.0
        masks[o] = 0.8 * band * gt + 0.3 * gt      # overlapping soft masks: sums exceed 1
    return small, masks


def prop_inputs(davis_root: str, clip: str, size=PROP_SIZE):
    """uint8 frames ``[PROP_FRAMES, *size, 3]`` and two objects' masks ``[2, *size]`` on
    frame 0 (the annotated object split at the middle of its box)."""
    frames, labels = _load(davis_root, clip, PROP_FRAMES)
    small = _resize_uint8(frames, size)
    gt = _resize_labels(labels[0] > 0, size)
    ys, xs = np.nonzero(gt)
    mid = (xs.min() + xs.max() + 1) // 2
    left = gt.copy()
    left[:, mid:] = False
    return small, np.stack([left, gt & ~left]).astype(np.float32)


def _resize_uint8(frames, size):
    from vosjax.data.transforms import resize_bilinear

    x = resize_bilinear(np.asarray(frames, np.float32), size, axes=(1, 2))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _resize_labels(mask, size):
    from vosjax.data.transforms import resize_nearest

    return resize_nearest(mask, size)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkout", required=True, help="seoungwugoh/STM checkout")
    p.add_argument("--davis", required=True, help="davis2016-mini root")
    p.add_argument("--out", required=True, help="output .npz")
    args = p.parse_args(argv)

    import torch

    from benchmarks.official.stm_original import build, import_original, onehot_k, run_video

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    model_mod = import_original(args.checkout)
    net0 = model_mod.STM()
    names = list(net0.state_dict())
    shapes = [tuple(v.shape) for v in net0.state_dict().values()]
    net = build(model_mod, draw_state_dict(names, shapes))
    out = {"names": np.array(names), "shapes": np.array([str(list(s)) for s in shapes])}

    # One memorize + segment step (soft masks, 3 objects, the official padding).
    frames, masks = step_inputs(args.davis)
    f = torch.from_numpy(frames.astype(np.float32) / 255).permute(0, 3, 1, 2)
    n = torch.tensor([3])
    with torch.no_grad():
        keys, values = net(f[0:1], onehot_k(masks), n)
        logit = net(f[1:2], keys, values, n)
    out["step_keys"] = keys[0, 1:4, :, 0].numpy()          # [3, 128, h, w]
    out["step_values"] = values[0, 1:4, :, 0].numpy()      # [3, 512, h, w]
    out["step_logit"] = logit[0, :4].numpy()               # [4, H, W]
    out["step_logit_empty"] = logit[0, 4:].numpy().max(initial=-np.inf)
    ps = torch.softmax(logit, 1)[0, 1:4]
    print(f"step: logit range {logit[0, :4].min():.3f} .. {logit[0, :4].max():.3f}, "
          f"probs mean {ps.mean():.3f}")

    for prefix, size in (("", PROP_SIZE), ("pad", PAD_SIZE)):
        for clip in CLIPS:
            frames, masks = prop_inputs(args.davis, clip, size)
            fs = torch.from_numpy(frames.astype(np.float32) / 255).permute(3, 0, 1, 2)[None]
            ms = onehot_k(masks)[:, :, None].repeat(1, 1, fs.shape[2], 1, 1)
            es = run_video(net, fs, ms, 2)
            noise = np.random.default_rng(1).uniform(-1e-6, 1e-6, fs.shape).astype(np.float32)
            es2 = run_video(net, fs + torch.from_numpy(noise), ms, 2)
            sub = np.s_[:, :3, ::STRIDE, ::STRIDE]
            out[f"{prefix}prop_{clip}"] = es[sub]
            sens = out[f"{prefix}sens_{clip}"] = np.abs(es2[sub] - es[sub]).max(axis=(1, 2, 3))
            area = (np.argmax(es, axis=1) > 0).mean(axis=(1, 2))
            print(f"{prefix}{clip} {size}: sensitivity per frame "
                  f"{np.array2string(sens, precision=1)}; foreground fraction "
                  f"{np.array2string(area, precision=2)}")
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out} ({os.path.getsize(args.out):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
