"""STM-cycle as in the paper: STM R50, 240x427, 3-frame clips, DAVIS-17 x5 + YouTube-VOS x1,
Adam lr 1e-5 (betas 0.9/0.999, weight decay 5e-4), 4 clips per update, 240 epochs, cycle loss.

Command (GPU cluster; the roots are the downloaded datasets)::

    python train.py --config configs/stm_cycle.py --workdir runs/stm_cycle \
        --config.data.davis_root=/data/DAVIS --config.data.youtubevos_root=/data/YTVOS \
        --config.train.init_from=ckpt/imagenet_r50   # optional: converted weights

``:r18`` selects the ResNet-18 variant. Numerics: ``config.model.compute`` (``auto`` = bfloat16
on GPUs, float32-highest on CPU; ``--config.model.compute=float32-highest`` for parity runs).
Expected result: the paper reports DAVIS-17 val J&F
71.7 (72.3 with gradient correction; baseline 69.7), Table 3. Not yet reproduced by us (this
needs GPUs and the datasets); see docs/experiments.md for what has been measured.

Object slots: each update holds clips of one object count and runs only that many slots
(``train.slot_policy="bucket"``; the official code pads nothing either, it runs one clip at a
time).
"""
from configs import base

ARCHS = {"r18": "resnet18", "r50": "resnet50", "r101": "resnet101"}


def get_config(arg: str = "r50"):
    if arg not in ARCHS:
        raise ValueError(f"configs/stm_cycle.py:{arg}: expected one of {sorted(ARCHS)}")
    # The schema's data / train / eval defaults are this paper's (configs/base.py).
    c = base.get_config("stm")
    c.model.arch = ARCHS[arg]
    c.model.keydim, c.model.valdim, c.model.mdim = 128, 512, 256
    c.train.cycle = True
    c.train.slot_policy = "bucket"
    return c
