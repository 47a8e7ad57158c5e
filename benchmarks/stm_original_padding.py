"""The original STM on padded frames against the official loop: max abs probability difference
per frame with the whole canvas memorized (``content=None``) and with the memorized masks zeroed
outside the image (``content``, what the official ``eval_DAVIS.py`` loop does).

Command (numpy + JAX only; the golden file is ``benchmarks/golden_stm_original.py``'s)::

    python -m benchmarks.stm_original_padding --davis ../shared/data/davis2016-mini
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from benchmarks import golden_stm_original as gen

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "tests", "data", "stm_original_golden.npz")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--davis", required=True, help="davis2016-mini root")
    p.add_argument("--golden", default=GOLDEN)
    args = p.parse_args(argv)
    from vosjax.convert import load_stm_original
    from vosjax.data.transforms import content_mask, resize_pad_frames
    from vosjax.inference.propagation import propagate
    from vosjax.models.stm_original import NUM_SLOTS

    g = dict(np.load(args.golden))
    shapes = [tuple(int(s) for s in x.strip("[]").split(",") if s.strip()) for x in g["shapes"]]
    model, v = load_stm_original(gen.draw_state_dict(g["names"], shapes))
    h, w = gen.PAD_SIZE
    for clip in gen.CLIPS:
        frames, masks = gen.prop_inputs(args.davis, clip, gen.PAD_SIZE)
        x, info = resize_pad_frames(frames, gen.PAD_CANVAS, pad="black")
        top, left = info.offsets
        padded = np.zeros((2,) + gen.PAD_CANVAS, np.float32)
        padded[:, top:top + h, left:left + w] = masks
        crop = np.s_[:, :3, top:top + h:gen.STRIDE, left:left + w:gen.STRIDE]
        ref = g[f"padprop_{clip}"]
        for name, content in (("whole canvas", None),
                              ("content box", content_mask(info, gen.PAD_CANVAS))):
            probs = propagate(model, v, x, padded, num_slots=NUM_SLOTS, mem_every=5,
                              content=content).probs
            d = np.abs(probs[crop] - ref).max(axis=(1, 2, 3))
            print(f"{clip} {name}: max {d.max():.2e}; per frame "
                  f"{np.array2string(d, precision=1)}")
        print(f"{clip} official sensitivity (1e-6 input noise): max "
              f"{g[f'padsens_{clip}'].max():.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
