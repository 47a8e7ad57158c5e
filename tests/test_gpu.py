"""GPU backend checks (``VOSJAX_TEST_BACKEND=gpu python -m pytest -n 0 -m gpu``; skipped elsewhere):
a training step and a video's propagation on the GPU equal the CPU's at float32 "highest"
precision, and a step sharded over several GPUs equals one GPU. (bf16 / precision-mode checks
live with the precision code.)"""
import jax
import numpy as np
import pytest

from loop_helpers import flat, run_steps, tiny_config
from stm_helpers import random_video, tiny_stm

pytestmark = pytest.mark.gpu


def _gpus():
    return jax.devices("gpu")


def test_train_step_on_gpu_equals_cpu():
    cfg = tiny_config(learning_rate=1e-5)
    pg, mg = run_steps(cfg, _gpus()[:1], 2)
    pc, mc = run_steps(cfg, jax.devices("cpu")[:1], 2)
    np.testing.assert_allclose(float(mg["loss"]), float(mc["loss"]), rtol=1e-5)
    a, b = flat(pg), flat(pc)
    assert np.linalg.norm(a - b) <= 1e-5 * np.linalg.norm(b)


def test_sharded_step_on_gpus_equals_one_gpu():
    gpus = _gpus()
    if len(gpus) < 2:
        pytest.skip(f"needs 2+ GPUs for sharding, JAX sees {len(gpus)}")
    n = 8 if len(gpus) >= 8 else (4 if len(gpus) >= 4 else 2)
    cfg = tiny_config(learning_rate=1e-5)
    pn, mn = run_steps(cfg, gpus[:n], 3)
    p1, m1 = run_steps(cfg, gpus[:1], 3)
    np.testing.assert_allclose(float(mn["loss"]), float(m1["loss"]), rtol=1e-5)
    a, b = flat(pn), flat(p1)
    assert np.linalg.norm(a - b) <= 1e-5 * np.linalg.norm(b)


def test_propagation_on_gpu_equals_cpu():
    from vosjax.inference import propagate

    model, variables = tiny_stm()
    frames, masks = random_video(6, 32, 48, seed=2)
    out = {}
    for name, dev in (("gpu", _gpus()[0]), ("cpu", jax.devices("cpu")[0])):
        with jax.default_device(dev):
            v = jax.device_put(variables, dev)
            out[name] = propagate(model, v, jax.device_put(frames, dev),
                                  jax.device_put(masks, dev), num_slots=2, mem_every=2).probs
    # Only the first frames: random weights amplify float differences frame by frame.
    np.testing.assert_allclose(out["gpu"][:4], out["cpu"][:4], atol=1e-4)
