"""``--from stm``: importing original STM (seoungwugoh/STM) weights, safely, into the checkpoint
format ``evaluate.py --checkpoint`` reads, with the family recorded in ``model.json``.

The state dicts are the STM-Training golden weights (R18) renamed to the original layout
(``Encoder_M.conv1_bg`` -> ``Encoder_M.conv1_o``) under the ``module.`` prefix of the official
``DataParallel`` checkpoint; their shapes are the official ones apart from the trunk depth.
"""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vosjax.convert import CheckpointError, load_stm_original, load_stm_training
from vosjax.families import load_model
from vosjax.models.stm import STM
from vosjax.models.stm_original import STMOriginal, other_objects

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def original_sd(golden_dir):
    w = np.load(golden_dir / "weights_r18.npz")
    sd = {}
    for k in w.files:
        name = k.replace("Encoder_M.conv1_bg.", "Encoder_M.conv1_o.")
        sd["module." + name] = w[k].astype(np.float32) if w[k].dtype.kind == "f" else w[k]
    return sd


def test_loads_as_original_and_maps_conv1_o(original_sd):
    model, v = load_stm_original(original_sd)
    assert type(model) is STMOriginal and model.arch == "resnet18"
    np.testing.assert_array_equal(
        v["params"]["Encoder_M"]["conv1_o"]["kernel"],
        original_sd["module.Encoder_M.conv1_o.weight"].transpose(2, 3, 1, 0))
    assert "conv1_bg" not in v["params"]["Encoder_M"]


def test_other_objects_channel_reaches_the_encoder(original_sd):
    """The memory of object 1 depends on object 2's mask (through conv1_o) -- and matches a
    direct evaluation of the stem formula with the official clamp(sum of others, 0, 1)."""
    model, v = load_stm_original(original_sd)
    rng = np.random.default_rng(0)
    frame = jnp.asarray(rng.normal(size=(32, 48, 3)), jnp.float32)
    masks = jnp.asarray(rng.uniform(0, 1, (3, 32, 48)), jnp.float32)
    k1, _ = model.apply(v, frame, masks, method=model.memorize)
    k2, _ = model.apply(v, frame, masks.at[2].set(0.0), method=model.memorize)
    assert float(jnp.abs(k1[0] - k2[0]).max()) > 1e-3
    others = np.asarray(other_objects(masks))
    m = np.asarray(masks)
    np.testing.assert_allclose(others[0], np.clip(m[1] + m[2], 0, 1), rtol=0, atol=1e-6)
    np.testing.assert_allclose(other_objects(masks[:1]), 0.0)


def test_wrong_family_is_named(original_sd, golden_dir):
    with pytest.raises(CheckpointError, match=r"not a 'stm-training' checkpoint.*--from stm\b"):
        load_stm_training(original_sd)
    w = np.load(golden_dir / "weights_r18.npz")
    with pytest.raises(CheckpointError, match=r"not a 'stm' checkpoint.*--from stm-training"):
        load_stm_original({k: w[k] for k in w.files})


def test_safetensors_and_pth(tmp_path, original_sd):
    from safetensors.numpy import save_file

    st = tmp_path / "STM_weights.safetensors"
    save_file({k: np.ascontiguousarray(x) for k, x in original_sd.items()}, str(st))
    _, v1 = load_stm_original(st)
    torch = pytest.importorskip("torch")
    pth = tmp_path / "STM_weights.pth"
    torch.save({k: torch.from_numpy(np.ascontiguousarray(x)) for k, x in original_sd.items()},
               pth)
    _, v2 = load_stm_original(str(pth))      # torch.load(weights_only=True)
    for a, b in zip(jax.tree_util.tree_leaves(v1), jax.tree_util.tree_leaves(v2)):
        np.testing.assert_array_equal(a, b)


def test_cli_from_stm_records_the_family(tmp_path, original_sd):
    npz = tmp_path / "STM_weights.npz"
    np.savez(npz, **original_sd)
    out = tmp_path / "ckpt"
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "vosjax.convert", "--from", "stm", str(npz),
                        "--out", str(out)], capture_output=True, text=True, env=env, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "STMOriginal resnet18" in r.stdout
    assert json.loads((out / "model.json").read_text())["model"] == "stm_original"
    model, variables = load_model(out)
    assert type(model) is STMOriginal and not isinstance(model, type(None))
    _, ref = load_stm_original(str(npz))
    for a, b in zip(jax.tree_util.tree_leaves(variables), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # The wrong family on the command line: a clear error, exit status 2, nothing written.
    r = subprocess.run([sys.executable, "-m", "vosjax.convert", "--from", "stm-training",
                        str(npz), "--out", str(tmp_path / "x")], capture_output=True, text=True,
                       env=env, cwd=REPO)
    assert r.returncode == 2 and "--from stm" in r.stderr and not (tmp_path / "x").exists()
    assert issubclass(STMOriginal, STM)
