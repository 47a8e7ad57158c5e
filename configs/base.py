"""The one config schema: every field a vosjax job reads, with its default.

Every config file starts from ``base.get_config(family)`` (or from a config built on it) and
overrides fields one by one; no sub-config is replaced. The result is locked: assigning a
field the schema does not have is an error, in a config file and on the command line
(``--config.eval.correction_rate=...`` works on every config). The library reads fields
without defaults (``config.eval.mem_every``), so this file is the only home of a config
default.

Defaults that live in the code are read from it: ``config.model`` holds the family's module
fields (``vosjax.models``: architecture defaults), ``config.eval`` the inference options'
defaults (:mod:`vosjax.inference.options`, gradient correction as
:class:`vosjax.correction.GradientCorrection`). The data and training defaults are the
STM-cycle paper's (``configs/stm_cycle.py`` documents them).

This file is the schema, not a runnable experiment; ``python train.py --config
configs/base.py:stm`` would train the default STM R50 on DAVIS + YouTube-VOS as
``configs/stm_cycle.py``.
"""
import dataclasses

import ml_collections

FAMILIES = ("stm", "stm_original", "gcseg")


def _defaults(cls, skip=()) -> dict:
    """The defaults of a dataclass's fields (``None`` -> 0: ml_collections fields are typed)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.name in skip or f.default is dataclasses.MISSING:
            continue
        out[f.name] = 0 if f.default is None else f.default
    return out


def get_config(family: str = "stm"):
    if family not in FAMILIES:
        raise ValueError(f"configs/base.py:{family}: expected one of {FAMILIES}")
    from vosjax import families
    from vosjax.correction import GradientCorrection
    from vosjax.inference.options import GCSegOptions, STMOptions

    c = ml_collections.ConfigDict()
    c.seed = 0
    # Multi-host runs: jax.distributed.initialize() (coordinator from the environment).
    c.distributed = False
    # Persistent XLA compilation cache (vosjax.compilation_cache): "" = the user cache
    # ($JAX_COMPILATION_CACHE_DIR or ~/.cache/vosjax/xla), "off", or a folder.
    c.compile_cache = ""

    # The family (vosjax.families) and its module's architecture fields; compute is the
    # numerics (vosjax.compute): "auto" = bfloat16 on GPU/TPU, float32-highest on CPU.
    fam = families.get(family)
    arch = {f.name: f.default for f in dataclasses.fields(fam.model)
            if f.name in fam.architecture()}
    c.model = ml_collections.ConfigDict(dict(name=family, compute="auto", **arch))

    c.data = ml_collections.ConfigDict(dict(
        # (dataset, repeat) pairs mixed by frequency (vosjax.training.input_pipeline).
        sources=(("davis2017", 5), ("youtubevos", 1)),
        davis_root="", davis_split="train", youtubevos_root="",
        size=(240, 427), clip_len=3, max_objects=5, num_slots=5,
        # Maximum frame gap: +gap_increment every gap_every_epochs epochs (STM paper Sec. 4.1).
        gap_start=5, gap_increment=5, gap_every_epochs=20,
        augment=dict(scale=(0.9, 1.3), rotation_deg=15.0, shear_deg=10.0, translate=0.1,
                     mirror=0.5, contrast=(0.8, 1.2), noise_std=0.03),
        # Input pipeline: grain worker processes decoding and warping clips (0 = in the
        # training process), and batches buffered ahead.
        num_workers=4, prefetch=2,
        # Built-in synthetic videos (source "synthetic"; 0 = unset).
        synthetic=dict(num_videos=0, seed=0, height=0, width=0, num_frames=0,
                       distractors=True),
        # Static-image clips (sources "static:NAME", GCSeg pre-training).
        static=dict(num_frames=12, seed=0, way2_prob=0.5),
        # A first stage of pretrain_steps updates on pretrain_sources (0: none).
        pretrain_steps=0, pretrain_sources=(("static:davis2017", 1),),
    ))

    c.train = ml_collections.ConfigDict(dict(
        # 240 epochs of (DAVIS-17 train 60 videos x5 + YouTube-VOS train 3471 x1) clips / 4.
        num_train_steps=240 * (60 * 5 + 3471) // 4,
        batch_size=4, learning_rate=1e-5, schedule="constant", warmup_steps=0,
        milestones=(), gamma=0.1, optimizer="adam", b1=0.9, b2=0.999, weight_decay=5e-4,
        grad_clip=0.0, accumulate_steps=1, fsdp=1,
        # "bucket": each update holds clips of one object count and runs only that many
        # object slots; "trim": pad to the batch's largest count (one host); "pad": always
        # data.num_slots (vosjax.training.input_pipeline).
        slot_policy="bucket",
        checkpoint_every=2000, keep_checkpoints=3, log_every=50,
        # A model directory whose variables replace the initial ones (fine-tuning).
        init_from="",
        # STM: the cycle term (eq. 3-4) and the bootstrapped cross entropy's top fraction.
        cycle=True, bootstrap=0.4,
        # GCSeg: "pairs" (eq. 3 on reference/target pairs) or "recurrent" fine-tuning; the
        # random zeroing of M_{t-1}; the eq. 3 pixel reduction (sum | mean | balanced).
        objective="pairs", zero_prev_prob=0.5, reduction="sum",
    ))

    corr = _defaults(GradientCorrection, skip=("record_corrected", "unroll"))
    c.eval = ml_collections.ConfigDict(dict(
        # Held-out evaluation after training (train.py); evaluate.py reads the options below.
        enabled=False, dataset="davis2017", num_videos=0, compare_untrained=False,
        synthetic=dict(num_videos=0, seed=0, height=0, width=0, num_frames=0,
                       distractors=True),
        # Inference options (vosjax.inference.options; 0 = None for num_slots/memory_slots).
        **_defaults(STMOptions, skip=("size", "correction")),
        **_defaults(GCSegOptions, skip=("size", "pad", "upsample")),
        # Gradient correction (eq. 5), STM only: N iterations, rate alpha, every K frames.
        correction=False, correction_iters=corr["n_iter"], correction_rate=corr["rate"],
        correction_every=corr["every"],
    ))
    c.lock()
    return c


def synthetic_demo(c):
    """The CPU demos' data and held-out evaluation (configs/demo.py, configs/gcseg.py:demo):
    200 training and 8 held-out synthetic 64x96 videos of 24 frames (disjoint seeds), mild
    augmentation, one input worker, and the trained-vs-untrained evaluation after training."""
    c.data.size = (64, 96)
    c.data.sources = (("synthetic", 1),)
    c.data.num_workers = 1
    c.data.augment.update(dict(scale=(0.95, 1.15), rotation_deg=8.0, shear_deg=5.0,
                               translate=0.05, mirror=0.5, contrast=(0.9, 1.1),
                               noise_std=0.02))
    c.data.synthetic.update(dict(num_videos=200, seed=0, height=64, width=96, num_frames=24))
    c.eval.enabled = True
    c.eval.dataset = "synthetic"
    c.eval.num_videos = 8
    c.eval.compare_untrained = True
    c.eval.synthetic.update(dict(num_videos=8, seed=10_000, height=64, width=96,
                                 num_frames=24))
    return c
