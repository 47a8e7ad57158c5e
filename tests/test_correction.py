"""Gradient correction (eq. 5) against the official step-by-step loop, the propagate option
that records corrected masks, settings validation."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stm_helpers import official_loop, random_video
from vosjax.correction import GradientCorrection, correct_mask, default_unroll, masks_to_probs
from vosjax.inference import propagate

H, W = 16, 32


def test_correct_mask_equals_the_official_loop(tiny, clip):
    model, v = tiny
    frames, masks = clip
    ref_probs = masks_to_probs(masks, 2)
    ref_query = model.apply(v, frames[0], method=model.encode_query)
    probs = jax.nn.softmax(jnp.asarray(np.random.default_rng(2).normal(size=(3, H, W)),
                                       jnp.float32), axis=0)
    fn = jax.jit(functools.partial(correct_mask, model, n_iter=2, rate=50.0),
                 static_argnames="unroll")
    got, losses = fn(v, frames[1], probs, ref_query, ref_probs, unroll=2)
    want, want_losses = official_loop(model, v, frames[1], probs[1:3], frames[0], ref_probs, 2,
                                     50.0)
    np.testing.assert_allclose(np.asarray(got[1:3]), np.asarray(want), atol=1e-4)
    np.testing.assert_allclose(np.asarray(losses), want_losses, rtol=1e-5)
    # The background is not memorized, hence never changes (nor would unused slots).
    np.testing.assert_array_equal(np.asarray(got)[0], np.asarray(probs)[0])
    assert np.abs(np.asarray(got - probs)).max() > 1e-4       # the mask did move
    rolled, rolled_losses = fn(v, frames[1], probs, ref_query, ref_probs, unroll=1)
    np.testing.assert_allclose(np.asarray(rolled), np.asarray(got), atol=1e-5)
    np.testing.assert_allclose(np.asarray(rolled_losses), np.asarray(losses), rtol=1e-6)


def test_propagate_record_corrected_option(tiny, clip):
    model, v = tiny
    frames, masks = clip
    corr = GradientCorrection(n_iter=2, rate=50.0, every=2, record_corrected=True)
    res = propagate(model, v, frames, masks, correction=corr)
    assert sorted(res.corrected) == [2]
    np.testing.assert_array_equal(np.asarray(res.probs[2]), np.asarray(res.corrected[2]))
    assert res.correction_losses[2].shape == (2,)


def test_correction_reference_follows_new_annotations(tiny):
    """With a late object the newest annotated frame (its merged mask) becomes the reference,
    and the annotated frame itself is not corrected."""
    model, v = tiny
    frames, masks = random_video(5, H, W, seed=4)
    corr = GradientCorrection(n_iter=2, rate=50.0, every=2)
    res = propagate(model, v, frames, masks, correction=corr, start_frames=[0, 3])
    assert sorted(res.corrected) == [2, 4]
    probs = res.probs
    fn = jax.jit(functools.partial(correct_mask, model, n_iter=2, rate=50.0, num_objects=2))
    for t, ref in ((2, 0), (4, 3)):
        q = model.apply(v, jnp.asarray(frames[ref]), method=model.encode_query)
        want, losses = fn(v, jnp.asarray(frames[t]), probs[t], q, probs[ref])
        np.testing.assert_allclose(np.asarray(res.corrected[t]), np.asarray(want), atol=1e-5)
        np.testing.assert_allclose(np.asarray(res.correction_losses[t]), np.asarray(losses),
                                   rtol=1e-5)


def test_masks_to_probs_by_hand():
    m = jnp.array([[[1.0, 0.0, 0.25]], [[0.0, 0.0, 0.5]]])
    got = np.asarray(masks_to_probs(m, 3))
    want = np.array([[[0, 1, 0.25]], [[1, 0, 0.25]], [[0, 0, 0.5]], [[0, 0, 0]]], np.float32)
    np.testing.assert_allclose(got, want)
    with pytest.raises(ValueError, match="num_slots"):
        masks_to_probs(m, 1)


@pytest.mark.parametrize("kwargs,field", [
    (dict(n_iter=0), "n_iter"), (dict(every=0), "every"), (dict(rate=-1.0), "rate"),
    (dict(unroll=0), "unroll"), (dict(n_iter=2.5), "n_iter")])
def test_settings_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        GradientCorrection(**kwargs)


def test_default_unroll_per_backend():
    assert default_unroll(10, "cpu") == 10 and default_unroll(50, "cpu") == 10
    assert default_unroll(10, "gpu") == 1
    assert GradientCorrection(unroll=3).resolved_unroll() == 3
