"""STM forward parity with the official STM-Cycle code (../shared/golden/stm_training).

Tolerances are the golden README's suggested checks.
"""
import jax.numpy as jnp
import numpy as np
import pytest

from vosjax.convert import load_stm_training
from vosjax.models.stm import soft_aggregate


@pytest.fixture(scope="module")
def golden(golden_dir):
    w = np.load(golden_dir / "weights_r18.npz")
    sd = {k: w[k].astype(np.float32) for k in w.files}
    model, variables = load_stm_training(sd)
    inputs = dict(np.load(golden_dir / "inputs.npz"))
    outputs = dict(np.load(golden_dir / "outputs.npz"))
    frames = jnp.asarray(inputs["frames"].transpose(0, 2, 3, 1))   # NCHW -> NHWC
    masks = jnp.asarray(inputs["masks"])
    return model, variables, frames, masks, outputs


def nchw(x):
    return np.asarray(x).transpose(0, 3, 1, 2)


def assert_rel_maxabs(actual, ref, rtol=1e-5):
    actual, ref = np.asarray(actual), np.asarray(ref)
    assert actual.shape == ref.shape
    err = np.abs(actual - ref).max()
    assert err <= rtol * np.abs(ref).max(), f"max abs diff {err:.3g} vs max {np.abs(ref).max():.3g}"


def test_arch_inferred(golden):
    model = golden[0]
    assert (model.arch, model.keydim, model.valdim) == ("resnet18", 128, 512)


def test_memorize(golden):
    model, v, frames, masks, out = golden
    objs = masks[0, 1:3]
    r4 = model.apply(v, frames[0], objs, method=model.encode_memory)
    assert_rel_maxabs(nchw(r4), out["mem0_r4"])
    keys, values = model.apply(v, frames[0], objs, method=model.memorize)
    assert keys.shape == (2, 60, 128) and values.shape == (2, 60, 512)
    assert_rel_maxabs(keys, out["mem0_keys"])
    assert_rel_maxabs(values, out["mem0_values"])


def test_query_features(golden):
    model, v, frames, _, out = golden
    _, r2, r3, r4 = model.apply(v, frames[1], method=model.query_backbone)
    assert_rel_maxabs(nchw(r4), out["seg1_q_r4"])
    assert_rel_maxabs(nchw(r3), out["seg1_q_r3"])
    assert_rel_maxabs(nchw(r2), out["seg1_q_r2"])
    q = model.apply(v, frames[1], method=model.encode_query)
    assert_rel_maxabs(q.key.T.reshape(1, 128, 6, 10), out["seg1_q_key"])
    assert_rel_maxabs(nchw(q.value[None]), out["seg1_q_value"])


def test_memory_read_and_decoder(golden):
    model, v, frames, _, out = golden
    keys, values = jnp.asarray(out["mem0_keys"]), jnp.asarray(out["mem0_values"])
    q = model.apply(v, frames[1], method=model.encode_query)
    read, attn = model.apply(v, keys, values, q.key, method=model.read)
    np.testing.assert_allclose(attn, out["seg1_attn"], rtol=0, atol=2e-6)
    assert_rel_maxabs(np.asarray(read).reshape(2, 6, 10, 512).transpose(0, 3, 1, 2),
                      out["seg1_mem_read"])
    logits = model.apply(v, read, q, (96, 160), method=model.decode)
    np.testing.assert_allclose(nchw(logits), out["seg1_decoder_logits"], rtol=0, atol=2e-5)


def test_segment_and_soft_aggregation(golden):
    model, v, frames, _, out = golden
    keys, values = jnp.asarray(out["mem0_keys"]), jnp.asarray(out["mem0_values"])
    ps = model.apply(v, frames[1], keys, values, method=model.segment)
    np.testing.assert_allclose(ps, out["seg1_ps"], rtol=0, atol=1e-5)
    logit = soft_aggregate(ps, num_slots=3)
    assert logit.shape == (4, 96, 160)
    np.testing.assert_allclose(logit[None], out["seg1_logit"], rtol=0, atol=5e-5)
    # The empty slot carries log(1e-7 / (1 - 1e-7)).
    np.testing.assert_allclose(logit[3], np.log(1e-7 / (1 - 1e-7)), rtol=1e-6)


def test_end_to_end_memorize_then_segment(golden):
    """The public API chained as a user would: memorize frame 0, segment frame 1."""
    model, v, frames, masks, out = golden
    keys, values = model.apply(v, frames[0], masks[0, 1:3], method=model.memorize)
    ps = model.apply(v, frames[1], keys, values, method=model.segment)
    np.testing.assert_allclose(ps, out["seg1_ps"], rtol=0, atol=1e-5)


def test_memory_validity_mask_ignores_invalid_slots(golden):
    """Invalid memory positions (a fixed-capacity bank's empty slots) get no weight."""
    model, v, frames, _, out = golden
    keys, values = jnp.asarray(out["mem0_keys"]), jnp.asarray(out["mem0_values"])
    junk_k = jnp.full_like(keys, 3.0)
    junk_v = jnp.full_like(values, -7.0)
    big_k = jnp.concatenate([keys, junk_k], axis=1)
    big_v = jnp.concatenate([values, junk_v], axis=1)
    valid = jnp.arange(120) < 60
    ps = model.apply(v, frames[1], big_k, big_v, valid, method=model.segment)
    np.testing.assert_allclose(ps, out["seg1_ps"], rtol=0, atol=1e-5)
