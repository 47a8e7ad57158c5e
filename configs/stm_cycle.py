"""STM-cycle as in the paper: STM R50, 240x427, 3-frame clips, DAVIS-17 x5 + YouTube-VOS x1,
Adam lr 1e-5 (betas 0.9/0.999, weight decay 5e-4), 4 clips per update, 240 epochs, cycle loss.

Command (GPU cluster; the roots are the downloaded datasets)::

    python train.py --config configs/stm_cycle.py --workdir runs/stm_cycle \
        --config.data.davis_root=/data/DAVIS --config.data.youtubevos_root=/data/YTVOS \
        --config.train.init_from=ckpt/imagenet_r50   # optional: converted weights

``:r18`` selects the ResNet-18 variant. Numerics: ``config.model.compute`` (``auto`` = bfloat16
on GPUs, float32-highest on CPU; ``--config.model.compute=float32-highest`` for parity runs). Expected result: the paper reports DAVIS-17 val J&F
71.7 (72.3 with gradient correction; baseline 69.7), Table 3. Not yet reproduced by us (this
needs GPUs and the datasets); see docs/experiments.md for what has been measured.

Object slots: each update holds clips of one object count and runs only that many slots
(``train.slot_policy="bucket"``; the official code pads nothing either, it runs one clip at a
time).
"""
import ml_collections

ARCHS = {"r18": "resnet18", "r50": "resnet50", "r101": "resnet101"}


def get_config(arg: str = "r50"):
    if arg not in ARCHS:
        raise ValueError(f"configs/stm_cycle.py:{arg}: expected one of {sorted(ARCHS)}")
    c = ml_collections.ConfigDict()
    c.seed = 0
    # Multi-host runs: jax.distributed.initialize() (coordinator from the environment).
    c.distributed = False
    # Persistent XLA compilation cache (vosjax.compilation_cache): "" = the user cache
    # ($JAX_COMPILATION_CACHE_DIR or ~/.cache/vosjax/xla), "off", or a folder.
    c.compile_cache = ""

    c.model = ml_collections.ConfigDict(dict(
        name="stm", arch=ARCHS[arg], keydim=128, valdim=512, mdim=256,
        # vosjax.compute: "auto" = bfloat16 on GPU/TPU, float32-highest (parity) on CPU.
        compute="auto"))

    c.data = ml_collections.ConfigDict(dict(
        sources=(("davis2017", 5), ("youtubevos", 1)),
        davis_root="", davis_split="train", youtubevos_root="",
        size=(240, 427), clip_len=3, max_objects=5, num_slots=5,
        # Maximum frame gap: +5 every 20 epochs (paper Sec. 4.1).
        gap_start=5, gap_increment=5, gap_every_epochs=20,
        augment=dict(scale=(0.9, 1.3), rotation_deg=15.0, shear_deg=10.0, translate=0.1,
                     mirror=0.5, contrast=(0.8, 1.2), noise_std=0.03),
        # Input pipeline (vosjax.training.input_pipeline): grain worker processes decoding
        # and warping clips (0 = in the training process), and batches buffered ahead.
        num_workers=4, prefetch=2,
        synthetic=dict(num_videos=0, seed=0, height=0, width=0, num_frames=0,
                       distractors=True),
    ))

    # slot_policy: "bucket" = every batch holds clips of one object count n and the step runs
    # n object slots (one compiled step per n, one or several hosts; no compute on empty slots,
    # vosjax.data.sampler.BucketSampler); "trim" = pad to the batch's largest count (one host);
    # "pad" = always num_slots. See vosjax.training.input_pipeline.
    c.train = ml_collections.ConfigDict(dict(
        # 240 epochs of (DAVIS-17 train 60 videos x5 + YouTube-VOS train 3471 x1) clips / 4.
        num_train_steps=240 * (60 * 5 + 3471) // 4,
        batch_size=4, learning_rate=1e-5, schedule="constant", warmup_steps=0,
        milestones=(), gamma=0.1, optimizer="adam", b1=0.9, b2=0.999, weight_decay=5e-4,
        grad_clip=0.0, accumulate_steps=1, cycle=True, bootstrap=0.4, fsdp=1, slot_policy="bucket",
        checkpoint_every=2000, keep_checkpoints=3, log_every=50, init_from=""))

    # Held-out evaluation after training (evaluate.py does full benchmarks).
    c.eval = ml_collections.ConfigDict(dict(
        enabled=False, dataset="davis2017", num_videos=0, mem_every=5, correction=False,
        correction_iters=10, correction_rate=180.0, correction_every=5, reference="mem",
        upsample="nearest", memory_slots=0, compare_untrained=False,
        # Videos segmented together per device (evaluate.py spreads them over all devices).
        videos_per_device=1,
        synthetic=dict(num_videos=0, seed=0, height=0, width=0, num_frames=0,
                       distractors=True)))
    return c
