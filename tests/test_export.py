"""``python -m vosjax.export``: the initial-state and per-frame step programs, serialized with
``jax.export``, run in a fresh process that imports only jax and numpy (vosjax is asserted
absent from ``sys.modules``) and reproduce :func:`vosjax.inference.propagation.propagate`
(same bank capacity) to 1e-5, with and without gradient correction, for both STM families."""
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from stm_helpers import random_video, tiny_stm
from vosjax.correction import GradientCorrection
from vosjax.export import export_model
from vosjax.families import model_spec, save_model
from vosjax.inference.propagation import propagate
from vosjax.models.stm_original import STMOriginal

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The user's side: only jax, numpy and the standard library.
RUNNER = r"""
import sys, zipfile
import numpy as np
import jax
from jax import export
path, video, out = sys.argv[1:4]
z = zipfile.ZipFile(path)
init = export.deserialize(z.read("init.jaxexport"))
step = export.deserialize(z.read("step.jaxexport"))
v = np.load(video)
frames, masks = v["frames"], v["masks"]
state, probs = init.call(frames[0], masks)
result = [np.asarray(probs)]
for frame in frames[1:]:
    state, probs = step.call(state, frame)
    result.append(np.asarray(probs))
assert "vosjax" not in sys.modules, "the exported programs must run without vosjax"
np.save(out, np.stack(result))
"""


def run_fresh(tmp_path, exported, frames, masks):
    video = tmp_path / "video.npz"
    np.savez(video, frames=frames, masks=masks)
    out = tmp_path / "probs.npy"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-c", RUNNER, str(exported), str(video), str(out)],
                       capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return np.load(out)


def test_cli_export_round_trip_original_stm(tmp_path):
    model, v = tiny_stm(1, STMOriginal)
    ckpt = tmp_path / "ckpt"
    save_model(ckpt, model, v)
    frames, masks = random_video(8, 32, 48, seed=4)
    out = tmp_path / "stm.vjx"
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "vosjax.export", "--checkpoint", str(ckpt),
                        "--size", "32x48", "--objects", "2", "--num_slots", "3",
                        "--memory_slots", "4", "--out", str(out)],
                       capture_output=True, text=True, env=env, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    desc = json.loads((tmp_path / "stm.vjx.json").read_text())
    assert desc == json.loads(zipfile.ZipFile(out).read("export.json"))
    assert desc["model"]["model"] == "stm_original" and desc["num_slots"] == 3
    assert desc["compute"] == "float32-highest"
    step = desc["programs"]["step"]
    assert [i["name"] for i in step["inputs"]] == ["state", "frame"]
    assert step["inputs"][1]["shape"] == [32, 48, 3] and step["outputs"][1]["shape"] == [4, 32, 48]
    assert "bank.keys" in [s["name"] for s in step["inputs"][0]["tuple"]]
    got = run_fresh(tmp_path, out, frames, masks)
    # 8 frames, memory every 5: frames 0 and 5 permanent; 4 slots hold them all.
    ref = propagate(model, v, frames, masks, num_slots=3, memory_slots=4).probs
    assert got.shape == ref.shape == (8, 4, 32, 48)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)


def test_export_with_correction_and_ring_buffer(tmp_path):
    """Correction on frame 5 (n_iter 2) and a 2-slot bank that wraps (frames 0, 5, 10)."""
    model, v = tiny_stm(2)
    frames, masks = random_video(12, 32, 48, seed=5)
    corr = GradientCorrection(n_iter=2, rate=180.0, every=5)
    out = tmp_path / "corr.vjx"
    desc = export_model(model, v, out, size=(32, 48), objects=2, memory_slots=2,
                        correction=corr, model_spec=model_spec(model))
    assert desc["correction"] == {"n_iter": 2, "rate": 180.0, "every": 5}
    assert any(s["name"].startswith("ref_query") for s in
               desc["programs"]["init"]["outputs"][0]["tuple"])
    got = run_fresh(tmp_path, out, frames, masks)
    res = propagate(model, v, frames, masks, memory_slots=2, correction=corr)
    assert sorted(res.corrected) == [5, 10]
    np.testing.assert_allclose(got, res.probs, rtol=0, atol=1e-5)
    # The correction changed what was memorized: without it the later frames differ.
    plain = propagate(model, v, frames, masks, memory_slots=2).probs
    assert np.abs(plain[6:] - res.probs[6:]).max() > 1e-4


def test_bad_arguments_are_named(tmp_path):
    model, v = tiny_stm()
    with pytest.raises(ValueError, match="objects"):
        export_model(model, v, tmp_path / "x", size=(32, 48), objects=0)
    with pytest.raises(ValueError, match="memory_slots"):
        export_model(model, v, tmp_path / "x", size=(32, 48), objects=1, memory_slots=0)
    from vosjax.export import main
    assert main(["--checkpoint", str(tmp_path / "nope"), "--size", "32x48", "--objects",
                 "1", "--out", str(tmp_path / "y")]) == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
