"""configs/stm_original.py: the official evaluation protocol wired through evaluate.py (480p
padded with black to a multiple of 16, K = 11 channels, memory every 5 + previous)."""
import os
import subprocess
import sys

import numpy as np

from launch import env
from vosjax.data.transforms import IMAGENET_MEAN, IMAGENET_STD, denormalize, resize_pad_frames
from vosjax.models.stm_original import pad_to_multiple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_config_gives_the_official_protocol():
    from configs import stm_original
    from vosjax.families import get as get_family
    from vosjax.families import inference_options

    c = stm_original.get_config()
    opts = inference_options(c)
    assert opts.size == (480, 864) == pad_to_multiple(480, 854)
    assert (opts.pad, opts.num_slots, opts.mem_every, opts.reference) == ("black", 10, 5, "mem")
    assert opts.correction is None
    assert get_family(c.model.name).name == "stm_original"
    with c.unlocked():
        c.eval.correction = True
    assert inference_options(c).correction.n_iter == 10


def test_black_padding_is_the_official_letterbox():
    """DAVIS 480x854 -> 480x864: 5 black columns a side (pad_divide_by), content unchanged."""
    frames = np.random.default_rng(0).integers(0, 256, (1, 480, 854, 3), dtype=np.uint8)
    x, info = resize_pad_frames(frames, (480, 864), pad="black")
    assert info.offsets == (0, 5) and info.resized_hw == (480, 854)
    np.testing.assert_allclose(x[0, :, :5], np.broadcast_to(-IMAGENET_MEAN / IMAGENET_STD,
                                                            (480, 5, 3)), rtol=1e-6)
    assert (denormalize(x[0, :, 859:]) == 0).all()
    np.testing.assert_array_equal(denormalize(x[0, :, 5:859]), frames[0])
    mean_pad, _ = resize_pad_frames(frames, (480, 864))
    assert np.abs(mean_pad[0, :, :5]).max() == 0.0


def test_evaluate_original_checkpoint_on_davis_mini(tmp_path, davis_mini, golden_dir):
    """convert --from stm, then evaluate.py with configs/stm_original.py (size reduced)."""
    w = np.load(golden_dir / "weights_r18.npz")
    sd = {"module." + k.replace("conv1_bg", "conv1_o"): w[k] for k in w.files}
    npz = tmp_path / "STM_weights.npz"
    np.savez(npz, **sd)
    child_env = env()

    def run(args):
        return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                              env=child_env, cwd=REPO, timeout=900)

    ckpt, out = tmp_path / "ckpt", tmp_path / "out"
    r = run(["-m", "vosjax.convert", "--from", "stm", str(npz), "--out", str(ckpt)])
    assert r.returncode == 0, r.stderr[-3000:]
    r = run(["evaluate.py", "--config", "configs/stm_original.py", "--checkpoint", str(ckpt),
             "--dataset", f"davis2016:{davis_mini}", "--split", "val", "--output", str(out),
             "--config.data.size=(48, 80)"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert "J&F-Mean" in r.stdout and (out / "global_results-val.csv").exists()
    for seq, n in (("blackswan", 50), ("car-shadow", 40), ("motocross-jump", 40)):
        assert len(os.listdir(out / seq)) == n
