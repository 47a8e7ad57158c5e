"""GCSeg ablations in miniature (Tables V-VI of the paper; docs/experiments.md).

The CPU demo model of ``configs/gcseg.py:demo`` (ResNet-10 trunk, 64x96 synthetic videos,
stride-4 decoder, batches of 8 reference/target pairs). ``:MODE`` selects the modules of
Table V: ``baseline`` (feature extractor straight to the decoder), ``reference`` (Ref),
``coseg`` (Co-seg), ``both`` (Ref + Co-seg, the paper's network).

Protocols (the argument is ``MODE`` or ``MODE-STAGE``)::

    :MODE             the paper's ablation protocol (Sec. IV-C: "we do not pre-train the
                      networks on other augmented datasets for ablation analysis"): no
                      static-image pre-training, 400 video pair updates.
    :both-recurrent   the recurrent fine-tuning stage (Sec. IV-A, "similar to MaskRNN") on top
                      of a finished ``:both`` run: 100 updates of 4 five-frame clips, the
                      prediction of t-1 fed to t; needs
                      ``--config.train.init_from=RUNS/both-s<seed>``.
    :both-long        beyond the protocol: ``:both`` with 4000 video pair updates instead of
                      400 (same cosine schedule, stretched), to score the judgement rules on a
                      model that segments better than the protocol's. Measured (AMD EPYC,
                      2 cores, 16.5-17 min per run): held-out J&F 27.1 ± 6.2 search off,
                      29.5 ± 7.9 paper's rule, 34.1 ± 6.8 centred rule (seeds 0, 1).
    :MODE-pretrain    the earlier, non-paper protocol (200 static-image pair updates, then the
                      same 400 video pair updates); the runs behind
                      ``experiments/results/gcseg_synthetic.json``, kept for the record.

The judgement module is an inference-time choice (training zeroes ``M_{t-1}`` at random, with
p = 0.5, whatever the rule), so one trained model is scored with both rules
(``model.judgement`` = ``"paper"`` | ``"centred"``) by ``experiments.gcseg_ablations``.

One run per seed (``experiments/run.sh`` runs them all, seeds 0, 1, 2)::

    python train.py --config configs/experiments/gcseg_synthetic.py:both \
        --config.seed=0 --workdir runs/experiments/gcseg-paper/both-s0
    python train.py --config configs/experiments/gcseg_synthetic.py:both-recurrent \
        --config.seed=0 --workdir runs/experiments/gcseg-paper/both+rec-s0 \
        --config.train.init_from=runs/experiments/gcseg-paper/both-s0

Measured wall times and results: docs/experiments.md (generated from
``experiments/results/gcseg_paper_protocol.json``).
"""
from configs import gcseg

MODES = ("baseline", "reference", "coseg", "both")
STAGES = ("", "pretrain", "recurrent", "long")
VIDEO_STEPS = 400        # video pair updates (as the video stage of the demo)
PRETRAIN_STEPS = 200     # static-image pair updates of the ":MODE-pretrain" protocol
RECURRENT_STEPS = 100    # recurrent fine-tuning updates of ":both-recurrent"
LONG_STEPS = 4000        # video pair updates of ":both-long" (10x the protocol)


def get_config(arg: str = "both"):
    mode, _, stage = arg.partition("-")
    if mode not in MODES or stage not in STAGES or (stage in ("recurrent", "long")
                                                     and mode != "both"):
        raise ValueError(f"configs/experiments/gcseg_synthetic.py:{arg}: expected MODE, "
                         f"MODE-pretrain, both-recurrent or both-long with MODE in {MODES}")
    c = gcseg.get_config("demo")
    c.model.mode = mode
    c.eval.num_videos = 16
    c.eval.synthetic.num_videos = 16
    c.eval.compare_untrained = False
    c.data.pretrain_steps = PRETRAIN_STEPS if stage == "pretrain" else 0
    c.train.num_train_steps = c.data.pretrain_steps + VIDEO_STEPS
    if stage == "long":
        # Beyond the paper's protocol: the full model trained 10x longer (same schedule shape),
        # to ask whether the judgement rules help a model that segments better.
        c.train.num_train_steps = LONG_STEPS
        c.train.checkpoint_every = 500
    if stage == "recurrent":
        # Continue a trained ":both" model (--config.train.init_from) on consecutive 5-frame
        # clips, M_{t-1} = the soft prediction of t-1 (zeroed with p = 0.5), frame 0 the
        # reference (vosjax.training.gcseg_objective.make_recurrent_loss_fn).
        c.train.objective = "recurrent"
        c.train.num_train_steps = RECURRENT_STEPS
        c.train.batch_size = 4
        c.train.learning_rate = 1e-4
        c.train.warmup_steps = 0
        c.train.checkpoint_every = 50
    return c
