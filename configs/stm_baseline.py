"""The paper's baseline: configs/stm_cycle.py without the cycle term (eq. 3 forward part only).

Command::

    python train.py --config configs/stm_baseline.py --workdir runs/stm_baseline \
        --config.data.davis_root=/data/DAVIS --config.data.youtubevos_root=/data/YTVOS

Expected result: the paper reports DAVIS-17 val J&F 69.7 (70.3 with gradient correction),
Table 3. Not yet reproduced by us.
"""
from configs import stm_cycle


def get_config(arg: str = "r50"):
    c = stm_cycle.get_config(arg)
    c.train.cycle = False
    return c
