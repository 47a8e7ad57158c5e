"""GCSeg module ablations in miniature (Tables V-VI; docs/experiments.md).

The CPU demo model (``configs/gcseg.py:demo``: ResNet-10 trunk, 64x96 synthetic videos, 200
static-image pair steps then 400 video pair steps) with the reference module only
(``:reference``), the co-segmentation module only (``:coseg``) or both (``:both``, the paper).
One run per seed::

    python train.py --config configs/experiments/gcseg_synthetic.py:both \
        --config.seed=0 --workdir runs/experiments/gcseg/both-s0

``experiments/run.sh`` runs all nine (3 modes x seeds 0, 1, 2);
``experiments/gcseg_ablations.py`` scores each with the adaptive search on and off. Expected
results: the GCSeg tables of docs/experiments.md (~4-6 min a run on a 2-core CPU).
"""
from configs import gcseg

MODES = ("reference", "coseg", "both")


def get_config(arg: str = "both"):
    if arg not in MODES:
        raise ValueError(f"configs/experiments/gcseg_synthetic.py:{arg}: expected one of {MODES}")
    c = gcseg.get_config("demo")
    c.model.mode = arg
    c.eval.num_videos = 16
    c.eval.synthetic.num_videos = 16
    c.eval.compare_untrained = False
    return c
