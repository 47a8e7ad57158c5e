"""Parity of propagation and gradient correction with the official test loop (golden data).

Tolerances are the golden README's: probabilities atol 1e-5 (uncorrected) / 3e-4 (after
correction), loop losses rtol 3e-5, corrected masks mean-abs < 2e-3 and 99th pct < 1e-2.
"""
import numpy as np
import pytest

from vosjax.convert import load_stm_training
from vosjax.correction import GradientCorrection
from vosjax.inference import propagate


@pytest.fixture(scope="module")
def golden(golden_dir):
    w = {k: (v.astype(np.float32) if v.dtype == np.float16 else v)
         for k, v in np.load(golden_dir / "weights_r18.npz").items()}
    model, variables = load_stm_training(w)
    inp = dict(np.load(golden_dir / "inputs.npz"))
    out = dict(np.load(golden_dir / "outputs.npz"))
    frames = inp["frames"].transpose(0, 2, 3, 1)          # NCHW -> [T, H, W, 3]
    first = inp["masks"][0, 1:int(inp["num_objects"]) + 1]
    return model, variables, frames, first, int(inp["max_obj"]), inp, out


def test_infer_probs_and_memory_sizes(golden):
    model, variables, frames, first, max_obj, inp, out = golden
    res = propagate(model, variables, frames, first, num_slots=max_obj,
                    mem_every=int(inp["save_freq"]))
    probs = np.asarray(res.probs)
    assert probs.shape == out["infer_probs"].shape == (11, 4, 96, 160)
    np.testing.assert_array_equal(probs[0], inp["masks"][0])       # frame 0 = the given one-hot
    np.testing.assert_allclose(probs, out["infer_probs"], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(res.memory_positions), out["infer_mem_len"])
    assert res.corrected == {}


def test_gradient_correction(golden):
    model, variables, frames, first, max_obj, inp, out = golden
    corr = GradientCorrection(n_iter=int(inp["loop"]), rate=float(inp["correction_rate"]),
                              every=int(inp["save_freq"]))
    res = propagate(model, variables, frames, first, num_slots=max_obj, correction=corr)
    probs = np.asarray(res.probs)
    # Frames up to 5 are recorded before any correction reaches the memory.
    np.testing.assert_allclose(probs[:6], out["infer_probs"][:6], rtol=0, atol=1e-5)
    np.testing.assert_allclose(probs[6:], out["infer_corr_probs_from6"], rtol=0, atol=3e-4)
    assert sorted(res.corrected) == [5, 10]
    for t in (5, 10):
        got = np.asarray(res.corrected[t])
        want = out[f"infer_corr_out_t{t}"][0]
        diff = np.abs(got - want)
        assert diff.mean() < 2e-3 and np.percentile(diff, 99) < 1e-2, (t, diff.mean())
        # Only the object channels move; background and the empty slot are untouched.
        np.testing.assert_array_equal(got[[0, 3]], probs[t][[0, 3]])
        np.testing.assert_allclose(np.asarray(res.correction_losses[t]),
                                   out[f"infer_corr_loop_loss_t{t}"], rtol=3e-5)
    # The official default records the uncorrected output; the corrected one only feeds memory.
    assert np.abs(np.asarray(res.corrected[5]) - probs[5]).max() > 1e-3
