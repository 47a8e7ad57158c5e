"""The original STM (:class:`~vosjax.models.stm_original.STMOriginal`) through every path written
against STM's public methods, unchanged: gradient correction (eq. 5), cycle-ERF (eq. 6),
streaming, bounded memory, the cycle loss (eq. 3) through the training task. Tiny weights, small
sizes. References: the official mask-gradient loop written step by step
(:func:`stm_helpers.official_loop`) and the batch paths (``propagate``)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stm_helpers import official_loop, random_video, tiny_stm
from vosjax.correction import correct_mask, cycle_erf, masks_to_probs, reconstruction_loss
from vosjax.inference.propagation import Propagator, propagate
from vosjax.models.stm_original import STMOriginal

H, W = 16, 32


@pytest.fixture(scope="module")
def orig():
    return tiny_stm(3, STMOriginal)


@pytest.fixture(scope="module")
def video():
    frames, masks = random_video(12, H, W, seed=6)
    return jnp.asarray(frames), jnp.asarray(masks)


def test_correction_equals_official_loop_and_uses_other_channel(orig, video):
    model, v = orig
    frames, masks = video
    ref_probs = masks_to_probs(masks, 2)
    ref_query = model.apply(v, frames[0], method=model.encode_query)
    probs = jax.nn.softmax(jnp.asarray(np.random.default_rng(2).normal(size=(3, H, W)),
                                       jnp.float32), axis=0)
    fn = jax.jit(functools.partial(correct_mask, model, n_iter=2, rate=50.0, unroll=2))
    got, losses = fn(v, frames[1], probs, ref_query, ref_probs)
    want, want_losses = official_loop(model, v, frames[1], probs[1:3], frames[0], ref_probs, 2,
                                      50.0)
    np.testing.assert_allclose(np.asarray(got[1:3]), np.asarray(want), atol=1e-4)
    np.testing.assert_allclose(np.asarray(losses), want_losses, rtol=1e-5)
    # The gradient reaches each mask through the other objects' memory too (conv1_o).
    g = jax.jit(jax.grad(lambda m, v: reconstruction_loss(model, v, frames[1], m, ref_query,
                                                          ref_probs)))
    v_no = jax.tree_util.tree_map(lambda x: x, v)
    v_no["params"]["Encoder_M"]["conv1_o"]["kernel"] = jnp.zeros_like(
        v["params"]["Encoder_M"]["conv1_o"]["kernel"])
    assert float(jnp.abs(g(probs[1:3], v) - g(probs[1:3], v_no)).max()) > 1e-6


def test_cycle_erf_is_relu_of_official_loop_from_empty(orig, video):
    model, v = orig
    frames, masks = video
    erf = jax.jit(functools.partial(cycle_erf, model, n_iter=3, rate=50.0, unroll=3))(
        v, frames[3], frames[0], masks)
    m, _ = official_loop(model, v, frames[3], jnp.zeros((2, H, W)), frames[0],
                         masks_to_probs(masks, 2), 3, 50.0)
    np.testing.assert_allclose(np.asarray(erf), np.maximum(np.asarray(m), 0), atol=1e-4)
    assert float(erf.max()) > 0 and float(erf.min()) >= 0


def test_streaming_and_bounded_memory(orig, video):
    """11 object slots as the official code; a 2-frame bank that wraps (frames 0, 5, 10)."""
    model, v = orig
    frames, masks = video
    batch = propagate(model, v, frames, masks, num_slots=10, memory_slots=2)
    assert batch.probs.shape == (12, 11, H, W)
    prop = Propagator(model, v, frames[0], masks, num_slots=10, memory_slots=2)
    streamed = [prop.probs0] + [prop.step(f) for f in frames[1:]]
    np.testing.assert_allclose(np.stack(jax.device_get(streamed)), batch.probs, atol=1e-6)
    # Read positions: 2 permanent frames + the previous one at most (2 x 4 positions each).
    assert batch.memory_positions.max() == 3 * (H // 16) * (W // 16)
    assert prop.bank.num_slots == 2


def test_cycle_loss_through_the_training_task(orig, video):
    """config.model.name = "stm_original" builds the variant; the task's loss (eq. 3 with the
    cycle term, :func:`vosjax.training.objective.cycle_loss`) differentiates into the "other
    objects" stem."""
    import ml_collections

    from vosjax.families import get as get_family

    model_cfg = ml_collections.ConfigDict(dict(
        name="stm_original", arch="resnet10", keydim=16, valdim=32, mdim=32,
        compute="float32-highest"))
    cfg = ml_collections.ConfigDict(dict(model=model_cfg, train=dict(cycle=True, bootstrap=0.4)))
    task = get_family(model_cfg.name)
    model = task.build_model(model_cfg)
    assert type(model) is STMOriginal
    _, v = orig
    frames, masks = video
    onehot = jnp.stack([masks_to_probs(masks, 2)] * 2)
    batch = {"frames": frames[None, :2], "masks": onehot[None], "num_objects": jnp.array([2])}
    loss_fn = task.loss(model, cfg)
    (loss, _), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
        v["params"], v["batch_stats"], batch, jax.random.PRNGKey(0))
    assert np.isfinite(float(loss)) and float(loss) > 0
    assert float(jnp.abs(grads["Encoder_M"]["conv1_o"]["kernel"]).max()) > 0
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(grads))
