"""STM ablations in miniature (docs/experiments.md, Tables 3-5, Figures 3-4, cycle-ERF).

The demo model (ResNet-10 trunk, 64x96 synthetic videos with look-alike distractors), trained
for 800 steps, with the cycle loss (``:cycle``) or without (``:baseline``). One run per seed::

    python train.py --config configs/experiments/stm_synthetic.py:cycle \
        --config.seed=0 --workdir runs/experiments/stm/cycle-s0

``:finetune-baseline`` / ``:finetune-cycle`` continue a trained baseline for 400 updates
(``--config.train.init_from=runs/experiments/stm/baseline-s<seed>``) without / with the cycle
term. ``experiments/run.sh`` runs all of them (seeds 0, 1, 2); ``experiments.stm_ablations``
then evaluates each trained model under every inference setting of the tables. Expected
results (docs/experiments.md; mean ± sd over seeds 0-2, held-out J&F, MEM reference set):
``:baseline`` 30.9 ± 1.2, ``:cycle`` 20.7 ± 3.2. Measured 2026-11-22 on a 2-core
"Intel(R) Xeon(R) Processor" shared with other jobs: 11.3 / 14.4 min a run (the first
baseline run, with one other job beside it, took 7.4 min).
"""
from configs import demo

VARIANTS = ("baseline", "cycle", "finetune-baseline", "finetune-cycle")


def get_config(arg: str = "cycle"):
    if arg not in VARIANTS:
        raise ValueError(f"configs/experiments/stm_synthetic.py:{arg}: expected one of "
                         f"{VARIANTS}")
    c = demo.get_config()
    c.train.cycle = arg.endswith("cycle")
    c.train.slot_policy = "pad"   # as the demo (the figures were measured with padded slots)
    c.train.num_train_steps = 800
    c.train.checkpoint_every = 400
    c.eval.num_videos = 16
    c.eval.compare_untrained = False
    c.eval.synthetic.num_videos = 16
    if arg.startswith("finetune"):
        # 400 more updates of a trained baseline (--config.train.init_from=WORKDIR), with or
        # without the cycle term: does the term help once the forward task is learned?
        c.train.num_train_steps = 400
        c.train.checkpoint_every = 200
        c.train.learning_rate = 1e-4
        c.train.warmup_steps = 0
    return c
