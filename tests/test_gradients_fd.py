"""The mask gradients of gradient correction (eq. 5) and cycle-ERF (eq. 6) against central
finite differences of the reconstruction loss, in float64 on a tiny random STM.

The reference loss is written here from the model's public methods (memorize -> segment ->
soft aggregation -> softmax -> CE + IoU, stm_helpers._official_loss); the code under test
computes it through its own path (memory stem reuse, query features) and differentiates with
``jax.grad``. Every pixel of the mask is perturbed (one vmapped batch of +-eps masks).

The model casts its decoder logits to float32 for the softmaxes (and ``masks_to_probs`` its
masks), which would leave float32 rounding (~1e-7 of the loss) in a float64 run and swamp the
differences; the ``float64`` fixture maps those casts to float64 inside this module's tests."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stm_helpers import _official_loss, random_video, tiny_stm
from vosjax.correction import correct_mask, cycle_erf, masks_to_probs

EPS = 1e-7   # the bootstrapped CE is piecewise smooth: its top-40% set must not change


class _Float64Numpy:
    """``jax.numpy`` with ``float32`` meaning ``float64`` (for the modules' explicit casts)."""

    def __getattr__(self, name):
        return jnp.float64 if name == "float32" else getattr(jnp, name)


@pytest.fixture
def float64(monkeypatch):
    import vosjax.correction
    import vosjax.models.stm

    for mod in (vosjax.models.stm, vosjax.correction):
        monkeypatch.setattr(mod, "jnp", _Float64Numpy())
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)


def _f64(tree):
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), tree)


def _fd_gradient(loss, m, forward=False):
    """Central (``forward``: one-sided, m + eps) differences of ``loss`` w.r.t. every entry
    of ``m`` (vmapped in chunks)."""
    n = m.size
    eye = jnp.eye(n, dtype=m.dtype).reshape((n,) + m.shape)
    vloss = jax.jit(jax.vmap(loss))
    out = []
    for i in range(0, n, 128):
        d = eye[i:i + 128]
        if forward:
            out.append((vloss(m + EPS * d) - loss(m)) / EPS)
        else:
            out.append((vloss(m + EPS * d) - vloss(m - EPS * d)) / (2 * EPS))
    return np.concatenate([np.asarray(x) for x in out]).reshape(m.shape)


def _close(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert np.abs(want).max() > 1e-6, "zero gradient: the check would prove nothing"
    assert np.linalg.norm(got - want) <= 1e-5 * np.linalg.norm(want), (
        np.linalg.norm(got - want) / np.linalg.norm(want))


def test_correction_gradient_equals_finite_differences(float64):
    """One eq. 5 step with rate r: (mask - corrected) / r is dL/dmask."""
    model, v = tiny_stm(seed=1)
    v = _f64(v)
    frames, masks = random_video(2, 16, 16, seed=4)
    frames = jnp.asarray(frames, jnp.float64)
    rng = np.random.default_rng(5)
    ref_probs = _f64(masks_to_probs(jnp.asarray(masks), 2))
    # A soft prediction to correct (not the one-hot truth: a non-trivial loss).
    soft = jnp.asarray(np.clip(masks * 0.7 + rng.uniform(0, 0.3, masks.shape), 0, 1))
    probs = jnp.concatenate([jnp.clip(1 - soft.sum(0, keepdims=True), 0, 1), soft])
    ref_query = model.apply(v, frames[0], method=model.encode_query)
    rate = 3.0
    corrected, losses = correct_mask(model, v, frames[1], probs, ref_query, ref_probs,
                                     n_iter=1, rate=rate, unroll=1)
    assert corrected.dtype == jnp.float64
    grad = (probs[1:] - corrected[1:]) / rate

    def loss(m):
        return _official_loss(model, v, frames[1], m, frames[0], ref_probs, 2)

    np.testing.assert_allclose(float(losses[0]), float(loss(soft)), rtol=1e-6)
    _close(grad, _fd_gradient(loss, soft))


def test_cycle_erf_gradient_equals_finite_differences(float64):
    """Eq. 6 with one step from the empty mask: ERF = ReLU(-rate * dL/dY at Y = 0). At Y = 0
    the memory encoder's background input clamp(1 - Y, 0, 1) sits at its upper bound, where
    the official (torch) clamp passes the gradient of the inside: one-sided differences into
    Y > 0 are that gradient, a central difference would not be."""
    model, v = tiny_stm(seed=2)
    v = _f64(v)
    frames, masks = random_video(2, 16, 16, seed=6)
    frames = jnp.asarray(frames, jnp.float64)
    target = jnp.asarray(masks[:1], jnp.float64)                 # one object
    rate = 5.0
    erf = cycle_erf(model, v, frames[1], frames[0], target, n_iter=1, rate=rate, unroll=1)
    target_probs = _f64(masks_to_probs(target, 1))

    def loss(m):
        return _official_loss(model, v, frames[1], m, frames[0], target_probs, 1)

    fd = _fd_gradient(loss, jnp.zeros((1, 16, 16), jnp.float64), forward=True)
    want = np.maximum(-rate * fd, 0)
    assert (want > 0).any() and (want == 0).any()               # both sides of the ReLU
    _close(np.asarray(erf), want)
