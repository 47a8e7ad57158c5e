"""Weight import from PyTorch STM-Training state dicts: mapping, formats, errors, CLI."""
import json
import os
import pickle
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stm_r50 import golden_inputs, stm_r50_state_dict
from vosjax.convert import CheckpointError, load_stm_training
from vosjax.families import load_model, save_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def manifest(golden_dir):
    return json.loads((golden_dir / "manifest.json").read_text())


@pytest.fixture(scope="module")
def r18_sd(golden_dir):
    w = np.load(golden_dir / "weights_r18.npz")
    return {k: w[k] for k in w.files}


def test_r50_state_dict_loads_and_runs(manifest):
    sd = stm_r50_state_dict(manifest, np.random.default_rng(0))
    model, v = load_stm_training(sd)
    assert model.arch == "resnet50"
    # A conv lands transposed OIHW -> HWIO; a BN's running stats land in batch_stats.
    np.testing.assert_array_equal(v["params"]["Encoder_Q"]["res3_0"]["conv2"]["kernel"],
                                  sd["Encoder_Q.res3.0.conv2.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(v["batch_stats"]["Encoder_M"]["res4_5"]["bn3"]["var"],
                                  sd["Encoder_M.res4.5.bn3.running_var"])
    np.testing.assert_array_equal(v["params"]["Encoder_M"]["res2_0"]["downsample_1"]["scale"],
                                  sd["Encoder_M.res2.0.downsample.1.weight"])
    frame = jnp.asarray(np.random.default_rng(1).normal(size=(64, 96, 3)), jnp.float32)
    masks = jnp.zeros((2, 64, 96)).at[0, 10:30, 20:50].set(1.0).at[1, 35:60, 5:40].set(1.0)
    keys, values = model.apply(v, frame, masks, method=model.memorize)
    assert keys.shape == (2, 4 * 6, 128) and values.shape == (2, 24, 512)
    probs = model.apply(v, frame, keys, values, method=model.segment)
    assert probs.shape == (2, 64, 96)
    assert bool(jnp.all(jnp.isfinite(probs))) and bool(jnp.all((probs >= 0) & (probs <= 1)))


def test_r50_step_equals_the_official_code(manifest):
    """ResNet-50 parity: the seeded R50 weights converted, one memorize (frame 0, 2 objects) +
    segment (frame 1) step against the official code's outputs (tests/golden/r50_step.npz, made
    by tests/golden/make_r50_step.py). A single step: random R50 weights amplify float noise
    frame after frame, so propagation is not compared here."""
    gold = np.load(os.path.join(REPO, "tests", "golden", "r50_step.npz"))
    model, v = load_stm_training(stm_r50_state_dict(manifest, np.random.default_rng(0)))
    frames, masks = golden_inputs()
    keys, values = model.apply(v, jnp.asarray(frames[0]), jnp.asarray(masks),
                               method=model.memorize)
    for got, name in ((keys, "keys"), (values, "values")):
        ref = gold[name]
        assert got.shape == ref.shape
        err = np.abs(np.asarray(got) - ref).max()
        assert err <= 1e-5 * np.abs(ref).max(), (name, err, np.abs(ref).max())
    ps = model.apply(v, jnp.asarray(frames[1]), keys, values, method=model.segment)
    # These random R50 activations are large (keys up to ~4e3), so float32 rounding of the
    # keys (~1e-6 relative, matched above) moves the attention and the few unsaturated
    # probabilities by ~1e-4 (e.g. 9.6e-5 at p = 0.85 in the first run of this test).
    assert ((gold["ps"] > 0.01) & (gold["ps"] < 0.99)).sum() >= 10
    np.testing.assert_allclose(np.asarray(ps), gold["ps"], rtol=0, atol=5e-4)
    from vosjax.models.stm import soft_aggregate
    np.testing.assert_allclose(np.asarray(soft_aggregate(ps, num_slots=2))[None], gold["logit"],
                               rtol=0, atol=5e-3)


def test_arch_mismatch_raises(r18_sd):
    with pytest.raises(CheckpointError, match="resnet50.*resnet18"):
        load_stm_training(r18_sd, arch="resnet50")


def test_missing_extra_misshaped_keys_are_named(r18_sd):
    sd = dict(r18_sd)
    del sd["Decoder.pred2.bias"]
    with pytest.raises(CheckpointError, match=r"missing key 'Decoder\.pred2\.bias'"):
        load_stm_training(sd)
    sd = dict(r18_sd, **{"Decoder.extra_head.weight": np.zeros((2, 2, 3, 3), np.float32)})
    with pytest.raises(CheckpointError, match=r"unexpected key 'Decoder\.extra_head\.weight'"):
        load_stm_training(sd)
    sd = dict(r18_sd)
    sd["KV_Q_r4.Value.bias"] = np.zeros((511,), np.float32)
    with pytest.raises(CheckpointError, match=r"'KV_Q_r4\.Value\.bias' has shape \(511,\)"):
        load_stm_training(sd)


def test_npz_and_safetensors_files(tmp_path, r18_sd):
    from safetensors.numpy import save_file

    npz = tmp_path / "w.npz"
    np.savez(npz, **r18_sd)
    st = tmp_path / "w.safetensors"
    save_file({k: np.ascontiguousarray(v) for k, v in r18_sd.items()}, str(st))
    _, v1 = load_stm_training(str(npz))
    _, v2 = load_stm_training(st)
    for a, b in zip(jax.tree_util.tree_leaves(v1), jax.tree_util.tree_leaves(v2)):
        np.testing.assert_array_equal(a, b)


def test_official_checkpoint_wrapping_is_unwrapped(r18_sd):
    """Training checkpoints hold {'state_dict': ...}; DataParallel adds 'module.'."""
    wrapped = {"state_dict": {"module." + k: v for k, v in r18_sd.items()}, "epoch": 3}
    model, _ = load_stm_training(wrapped)
    assert model.arch == "resnet18"


class _Payload:
    """Unpickling this would create a marker file (stands for arbitrary code)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_with_code_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pth"
    with open(bad, "wb") as f:
        pickle.dump({"state_dict": {"x": _Payload(str(marker))}}, f)
    with pytest.raises(CheckpointError) as e:
        load_stm_training(bad)
    assert str(bad) in str(e.value)
    try:
        import torch  # noqa: F401
        assert "weights_only" in str(e.value)
    except ImportError:
        assert "vosjax[torch]" in str(e.value)
    assert not marker.exists(), "the pickle's code ran"


def test_pickled_npz_is_refused(tmp_path):
    bad = tmp_path / "obj.npz"
    np.savez(bad, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="obj.npz"):
        load_stm_training(bad)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pth: no such checkpoint file"):
        load_stm_training(tmp_path / "nope.pth")
    odd = tmp_path / "w.bin"
    odd.write_bytes(b"\0" * 8)
    with pytest.raises(CheckpointError, match="unknown checkpoint type"):
        load_stm_training(odd)


def test_pth_without_torch_names_the_extra(tmp_path, monkeypatch):
    """With torch absent, a .pth gets an error naming the 'torch' extra (simulated absence)."""
    import builtins
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    f = tmp_path / "w.pth"
    f.write_bytes(b"PK\x03\x04")
    with pytest.raises(CheckpointError, match=r"w\.pth.*'torch' extra"):
        load_stm_training(f)


def test_convert_cli_round_trip(tmp_path, golden_dir, r18_sd):
    npz = tmp_path / "w.npz"
    np.savez(npz, **r18_sd)
    out = tmp_path / "ckpt"
    cmd = [sys.executable, "-m", "vosjax.convert", "--from", "stm-training", str(npz),
           "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "resnet18" in r.stdout
    model, variables = load_model(out)
    ref_model, ref_vars = load_stm_training(str(npz))
    assert (model.arch, model.keydim, model.valdim) == ("resnet18", 128, 512)
    for a, b in zip(jax.tree_util.tree_leaves(variables), jax.tree_util.tree_leaves(ref_vars)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # A second conversion into the same directory is refused and leaves it intact.
    r2 = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    assert r2.returncode == 2 and "not empty" in r2.stderr
    assert (out / "model.json").exists()


def test_save_model_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(TypeError):
        save_model(tmp_path / "x", object(), {})
    assert not (tmp_path / "x").exists()
    assert [p for p in tmp_path.iterdir()] == []
