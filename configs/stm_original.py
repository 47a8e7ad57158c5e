"""The original STM (seoungwugoh/STM, ``STM_weights.pth``, ResNet-50) with its official
evaluation loop (``eval_DAVIS.py``): 480p frames zero-padded (black, centred) to a multiple of
16, memory every 5 frames plus the previous frame, all objects at once with K = 11 output
channels (background + 10 object slots).

Commands (the roots are the downloaded datasets)::

    python -m vosjax.convert --from stm STM_weights.pth --out ckpt/stm_original
    python evaluate.py --config configs/stm_original.py --checkpoint ckpt/stm_original \
        --dataset davis2017:/data/DAVIS --split val --output out/stm_original_d17
    python evaluate.py --config configs/stm_original.py --checkpoint ckpt/stm_original \
        --dataset davis2016:/data/DAVIS --split val --output out/stm_original_d16
    python evaluate.py --config configs/stm_original.py --checkpoint ckpt/stm_original \
        --dataset youtubevos:/data/YTVOS --split valid --output out/stm_original_yv

Numerics follow ``config.model.compute`` (inherited ``"auto"``: bfloat16 on GPU/TPU,
float32-highest on CPU); ``--config.model.compute=float32-highest`` gives the parity numerics
on a GPU too. Add ``--config.eval.correction=True`` for STM-Cycle's gradient correction
(eq. 5) on the original weights (docs/stm_original.md compares the two). Fine-tuning with the
cycle loss uses the STM-Cycle training settings; ``data.size`` is shared with evaluation, so
train at the paper's 240x427 and evaluate with this config::

    python train.py --config configs/stm_original.py --workdir runs/stm_original_cycle \
        --config.data.size="(240, 427)" --config.train.init_from=ckpt/stm_original \
        --config.data.davis_root=/data/DAVIS --config.data.youtubevos_root=/data/YTVOS

Working size: a fixed 480x864 (one compiled step for the whole benchmark). DAVIS 480p frames
(480x854) are padded by 5 columns each side exactly as the official ``pad_divide_by(.., 16)``;
YouTube-VOS 720x1280 frames are resized to 480x853 and padded to 480x864 (the official STM
released no YouTube-VOS loop; 480p is the resolution of its DAVIS loop). As the official loop,
which crops each prediction and pads its mask with zeros when memorizing it, the masks we
memorize are zeroed outside the image content (``segment_video`` gives the ``stm_original``
propagation the content box). Measured against the official code on random R50 weights (the
first 20 frames of the three davis2016-mini clips at 64x107, padded to 64x112;
``python -m benchmarks.stm_original_padding --davis ../shared/data/davis2016-mini``, Intel
Xeon, 2 cores shared with other jobs): max abs probability difference 5.4e-7 / 6.6e-7 / 6.6e-7
(blackswan / car-shadow / motocross-jump) on every frame, against 4.7e-4 / 6.2e-4 / 5.7e-4 when
the whole padded canvas was memorized; without padding the loop agrees to 6e-7
(tests/test_golden_stm_original.py checks both).

Expected result (published, not reproduced here: this needs the real weights, the datasets and
a GPU): the STM paper (Oh et al., ICCV 2019, arXiv:1904.00607) reports DAVIS-17 val J&F 81.8
(J 79.2), DAVIS-16 val J&F 89.3 (J 88.7) and YouTube-VOS 2018 val overall 79.4, all with
YouTube-VOS in training. What we did measure is parity with the official code on random
weights (tests/test_golden_stm_original.py, docs/stm_original.md).
"""
from configs import stm_cycle

#: Working size of the official loop on 480p video (480x854 padded to a multiple of 16).
SIZE_480P = (480, 864)


def get_config(arg: str = ""):
    if arg:
        raise ValueError(f"configs/stm_original.py:{arg}: takes no argument")
    c = stm_cycle.get_config("r50")
    c.model.name = "stm_original"
    c.data.size = SIZE_480P
    c.eval.pad = "black"            # the official letterbox (before normalisation)
    c.eval.num_slots = 10           # K = 11 channels as the official DAVIS loop
    c.eval.mem_every = 5
    c.eval.reference = "mem"
    return c
