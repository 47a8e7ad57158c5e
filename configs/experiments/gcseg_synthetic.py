"""GCSeg module ablations in miniature (Tables V-VI; docs/experiments.md).

The CPU demo model (``configs/gcseg.py:demo``: ResNet-10 trunk, 64x96 synthetic videos, 200
static-image pair steps then 400 video pair steps) with the reference module only
(``:reference``), the co-segmentation module only (``:coseg``) or both (``:both``, the paper).
One run per seed::

    python train.py --config configs/experiments/gcseg_synthetic.py:both \
        --config.seed=0 --workdir runs/experiments/gcseg/both-s0

``experiments/run.sh`` runs all nine (3 modes x seeds 0, 1, 2);
``experiments/gcseg_ablations.py`` scores each with the adaptive search on and off. Expected
results (docs/experiments.md; mean ± sd over seeds 0-2, held-out J&F, search on):
``:reference`` 18.4 ± 1.8, ``:coseg`` 16.2 ± 2.5, ``:both`` 15.6 ± 0.4. Measured 2026-11-22
on a 2-core "Intel(R) Xeon(R) Processor" shared with another training job: 5.7 / 5.8 / 8.1 min
a run.
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
