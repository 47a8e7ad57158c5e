"""Golden outputs of one memorize + segment step of the official STM-Training code
(lyxok1/STM-Training, branch ``cycle``) with ResNet-50 trunks -> ``tests/golden/r50_step.npz``
(checked by ``tests/test_convert.py``, which needs neither torch nor the checkout).

    pip install torch        # CPU wheel is enough
    python tests/golden/make_r50_step.py --official ../stm-official

Weights: ``stm_r50.stm_r50_state_dict(manifest, np.random.default_rng(0))`` with the manifest
of ``../shared/golden/stm_training/manifest.json`` (``--manifest``); inputs:
``stm_r50.golden_inputs()``; both regenerated from seeds by the test. The official model runs
in float32 on the CPU (eval mode: frozen BatchNorm, as the official scripts).
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [os.path.dirname(HERE), REPO]      # tests/ (stm_r50) and the benchmarks package

from benchmarks.official import stm_training as official  # noqa: E402  (imports the checkout)
from stm_r50 import golden_inputs, stm_r50_state_dict  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--official", default=os.path.join(os.path.dirname(REPO), "stm-official"),
                    help="an STM-Training checkout (branch cycle)")
    ap.add_argument("--manifest", default=os.path.join(os.path.dirname(REPO), "shared", "golden",
                                                       "stm_training", "manifest.json"))
    ap.add_argument("--out", default=os.path.join(HERE, "r50_step.npz"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)        # deterministic reduction order on the CPU
    models, _ = official.import_official(args.official)
    with open(args.manifest) as f:
        sd = stm_r50_state_dict(json.load(f), np.random.default_rng(0))
    net = official.build_model(models, "resnet50", sd)
    frames, masks = golden_inputs()
    o = masks.shape[0]
    fr = torch.from_numpy(frames.transpose(0, 3, 1, 2).copy())            # NHWC -> NCHW
    onehot = np.concatenate([np.clip(1 - masks.sum(0, keepdims=True), 0, 1), masks])[None]
    with torch.no_grad():
        keys, values, _ = net(frame=fr[0:1], mask=torch.from_numpy(onehot), num_objects=o)
        logit, ps = net(frame=fr[1:2], keys=keys, values=values, num_objects=o, max_obj=o)
    out = {"keys": keys.numpy(), "values": values.numpy(), "ps": ps.numpy(),
           "logit": logit.numpy()}
    np.savez_compressed(args.out, **out)
    for k, v in out.items():
        print(f"{k:7s} {v.shape} max abs {np.abs(v).max():.4g}")
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
