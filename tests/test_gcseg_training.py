"""GCSeg training pieces: eq. (3) loss on hand-computed inputs, pair sampling, previous-mask
zeroing, the pure loss functions and an overfitting smoke test."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gcseg_tiny import tiny_model
from vosjax import losses as L
from vosjax.data import pairs as S
from vosjax.models.gcseg import GCSegOutput
from vosjax.training import gcseg_objective as O


def logits_for(p):
    """2-way logits whose softmax foreground probability is ``p``."""
    p = np.asarray(p, np.float32)
    return np.stack([np.zeros_like(p), np.log(p / (1 - p))], -1)


def test_bce_two_way_hand_values():
    p = np.array([[[0.75, 0.25], [0.5, 0.9]]], np.float32)        # [1, 2, 2]
    y = np.array([[[1.0, 1.0], [0.0, 0.0]]], np.float32)
    hand = -(math.log(0.75) + math.log(0.25) + math.log(0.5) + math.log(0.1))
    got = L.bce_two_way(jnp.asarray(logits_for(p)), jnp.asarray(y))
    assert got.shape == (1,)
    assert float(got[0]) == pytest.approx(hand, rel=1e-5)
    assert float(L.bce_two_way(jnp.asarray(logits_for(p)), jnp.asarray(y), "mean")[0]) == \
        pytest.approx(hand / 4, rel=1e-5)
    # Soft target 0.5 on p = 0.75: -(0.5 log .75 + 0.5 log .25)
    got = L.bce_two_way(jnp.asarray(logits_for(p[:, :1, :1])), jnp.full((1, 1, 1), 0.5))
    assert float(got[0]) == pytest.approx(-0.5 * (math.log(0.75) + math.log(0.25)), rel=1e-5)
    # Saturated logits stay finite.
    big = jnp.array([[[[0.0, 200.0]]]])
    assert float(L.bce_two_way(big, jnp.zeros((1, 1, 1)))[0]) == pytest.approx(200.0)


def test_eq3_sums_four_terms():
    rng = np.random.default_rng(0)
    ps = [rng.uniform(0.05, 0.95, size=(2, 3, 4)) for _ in range(4)]
    gt_t = (rng.uniform(size=(2, 3, 4)) > 0.5).astype(np.float32)
    gt_r = (rng.uniform(size=(2, 3, 4)) > 0.5).astype(np.float32)

    def hand(p, y):
        return -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(axis=(1, 2))

    out = GCSegOutput(*[jnp.asarray(logits_for(p)) for p in ps])
    loss, terms = L.gcseg_loss(out, gt_t, gt_r)
    expect = hand(ps[0], gt_t) + hand(ps[1], gt_r) + hand(ps[2], gt_t) + hand(ps[3], gt_r)
    np.testing.assert_allclose(np.asarray(loss), expect, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(terms["aux_reference"]), hand(ps[3], gt_r), rtol=1e-5)
    # Ablation modes have no M' heads: two terms only.
    loss2, terms2 = L.gcseg_loss(out._replace(aux_target=None, aux_reference=None), gt_t, gt_r)
    assert set(terms2) == {"target", "reference"}
    np.testing.assert_allclose(np.asarray(loss2), hand(ps[0], gt_t) + hand(ps[1], gt_r),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="reduction"):
        L.gcseg_loss(out, gt_t, gt_r, reduction="max")


def test_sample_pairs_deterministic_and_in_range():
    lengths = [2, 3, 8, 30, 100] * 40
    a = S.sample_pairs(lengths, seed=5)
    b = S.sample_pairs(lengths, seed=5)
    c = S.sample_pairs(lengths, seed=6)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    t_len = np.asarray(lengths)
    assert np.all(a["target"] - a["gap"] == a["reference"]) and np.all(a["reference"] >= 0)
    assert np.all(a["previous"] == a["target"] - 1) and np.all(a["target"] < t_len)
    g = S.GapRanges()
    for kind, (lo, hi) in enumerate((g.short, g.middle, g.long)):
        sel = a["kind"] == kind
        assert sel.any()
        assert np.all(a["gap"][sel] >= lo) and (hi is None or np.all(a["gap"][sel] <= hi))
    # A 2-frame clip only fits short gaps; 100-frame clips see all three kinds.
    assert set(a["kind"][t_len == 2]) == {0}
    assert set(a["kind"][t_len == 100]) == {0, 1, 2}


def test_sample_pairs_errors_and_custom_ranges():
    with pytest.raises(ValueError, match="needs >= 2 frames"):
        S.sample_pairs([1, 5], seed=0)
    with pytest.raises(ValueError, match="GapRanges.middle"):
        S.GapRanges(middle=(5, 3))
    only_long = S.GapRanges(probs=(0, 0, 1))
    with pytest.raises(ValueError, match="fits no gap range"):
        S.sample_pairs([5], seed=0, gaps=only_long)
    pairs = S.sample_pairs([40] * 20, seed=0, gaps=only_long)
    assert np.all(pairs["gap"] >= 11)


def test_gather_pair_batch():
    frames = np.arange(2 * 4 * 2 * 2 * 3, dtype=np.float32).reshape(2, 4, 2, 2, 3)
    masks = np.zeros((2, 4, 2, 2), np.float32)
    masks[:, :, 0, 0] = np.arange(4)                   # mask value encodes the frame index
    pairs = {"reference": np.array([0, 1]), "target": np.array([3, 2]),
             "previous": np.array([2, 1])}
    batch = S.gather_pair_batch(frames, masks, pairs)
    np.testing.assert_array_equal(batch["ref_frame"][1], frames[1, 1])
    np.testing.assert_array_equal(batch["target_frame"][0], frames[0, 3])
    np.testing.assert_array_equal(batch["prev_mask"][:, 0, 0], [2, 1])
    np.testing.assert_array_equal(batch["target_mask"][:, 0, 0], [3, 2])
    with pytest.raises(ValueError, match="out of range"):
        S.gather_pair_batch(frames, masks, {**pairs, "target": np.array([4, 0])})


def test_zero_previous_mask():
    m = jnp.ones((400, 3, 3))
    same, dropped = S.zero_previous_mask(jax.random.PRNGKey(0), m, 0.0)
    assert not bool(dropped.any()) and bool(jnp.all(same == 1))
    zero, dropped = S.zero_previous_mask(jax.random.PRNGKey(0), m, 1.0)
    assert bool(dropped.all()) and bool(jnp.all(zero == 0))
    half, dropped = S.zero_previous_mask(jax.random.PRNGKey(1), m, 0.5)
    # Whole masks are zeroed or kept, matching `dropped`; about half of them.
    np.testing.assert_array_equal(np.asarray(half[:, 0, 0]) == 0, np.asarray(dropped))
    assert bool(jnp.all(half.min(axis=(1, 2)) == half.max(axis=(1, 2))))
    assert 150 < int(dropped.sum()) < 250
    with pytest.raises(ValueError, match="zero_prev_prob"):
        S.zero_previous_mask(jax.random.PRNGKey(0), m, 1.5)


# ----------------------------------------------------------------------------- objectives



def square_pair(h=32, w=32, shift=2):
    """A bright square on a dark textured background, moved by ``shift`` pixels."""
    rng = np.random.default_rng(0)
    bg = rng.normal(0, 0.3, size=(h, w, 3)).astype(np.float32)
    frames, masks = [], []
    for s in (0, shift, 2 * shift):
        f, m = bg.copy(), np.zeros((h, w), np.float32)
        m[8 + s:20 + s, 6 + s:18 + s] = 1.0
        f[m > 0] = [1.5, -1.0, 0.5]
        frames.append(f)
        masks.append(m)
    return {"ref_frame": frames[0][None], "ref_mask": masks[0][None],
            "prev_mask": masks[1][None], "target_frame": frames[2][None],
            "target_mask": masks[2][None]}


@pytest.fixture(scope="module")
def tiny():
    return tiny_model(32, 32)


def test_loss_fn_weights_and_batch_checks(tiny):
    model, variables = tiny
    pair = square_pair()
    batch = {k: np.concatenate([v, v[:, ::-1]]) for k, v in pair.items()}
    loss_fn = jax.jit(O.make_loss_fn(model, variables["batch_stats"], zero_prev_prob=0.0))
    _, m_both = loss_fn(variables["params"], {**batch, "weight": np.ones(2, np.float32)},
                        jax.random.PRNGKey(0))
    garbage = {k: v.copy() for k, v in batch.items()}
    garbage["target_frame"][1] = 7.0
    l1, m1 = loss_fn(variables["params"], {**batch, "weight": np.array([1.0, 0.0], np.float32)},
                     jax.random.PRNGKey(0))
    l2, _ = loss_fn(variables["params"], {**garbage, "weight": np.array([1.0, 0.0], np.float32)},
                    jax.random.PRNGKey(0))
    assert float(l1) == pytest.approx(float(l2), rel=1e-6)          # weight-0 clip ignored
    assert set(m1) >= {"loss", "iou", "prev_dropped", "loss_target", "loss_reference",
                       "loss_aux_target", "loss_aux_reference"}
    terms = sum(float(m1[f"loss_{k}"]) for k in ("target", "reference", "aux_target",
                                                  "aux_reference"))
    assert float(m1["loss"]) == pytest.approx(terms, rel=1e-5)
    assert float(m_both["prev_dropped"]) == 0.0
    with pytest.raises(KeyError, match="lacks"):
        O.make_loss_fn(model)(variables["params"], {"target_frame": batch["target_frame"]},
                              jax.random.PRNGKey(0))


def test_overfit_one_pair_reduces_loss(tiny):
    """A few dozen Adam steps on one tiny pair (prev mask zeroed half the time) cut eq. 3."""
    model, variables = tiny
    batch = square_pair()
    loss_fn = O.make_loss_fn(model, variables["batch_stats"], reduction="mean")
    opt = optax.adam(3e-3)

    @jax.jit
    def step(params, state, rng):
        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch, rng)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss, metrics

    params, state = variables["params"], opt.init(variables["params"])
    eval_fn = jax.jit(O.make_loss_fn(model, variables["batch_stats"], zero_prev_prob=0.0,
                                     reduction="mean"))
    before, _ = eval_fn(params, batch, jax.random.PRNGKey(0))
    for i in range(40):
        params, state, _, _ = step(params, state, jax.random.PRNGKey(i))
    after, metrics = eval_fn(params, batch, jax.random.PRNGKey(0))
    assert float(after) < 0.5 * float(before), (float(before), float(after))
    assert float(metrics["iou"]) > 0.5


@pytest.mark.slow  # ~40 s on a loaded 2-core CPU (scan + grad compile)
def test_recurrent_loss_fn_runs_and_differentiates(tiny):
    model, variables = tiny
    pair = square_pair()
    frames = np.stack([pair["ref_frame"][0], pair["target_frame"][0],
                       pair["target_frame"][0]])[None]
    masks = np.stack([pair["ref_mask"][0], pair["prev_mask"][0], pair["target_mask"][0]])[None]
    loss_fn = O.make_recurrent_loss_fn(model, variables["batch_stats"])
    (loss, metrics), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
        variables["params"], {"frames": frames, "masks": masks}, jax.random.PRNGKey(0))
    assert np.isfinite(float(loss)) and float(loss) > 0
    gnorm = optax.tree.norm(grads)
    assert np.isfinite(float(gnorm)) and float(gnorm) > 0
    with pytest.raises(ValueError, match="L>=2"):
        loss_fn(variables["params"], {"frames": frames[:, :1], "masks": masks[:, :1]},
                jax.random.PRNGKey(0))


def test_loss_fn_sharded_over_clips_matches_single_device(tiny):
    """The pure loss shards over the clip axis (8 fake CPU devices) with the same value."""
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P
    model, variables = tiny
    if len(jax.devices()) < 4:
        pytest.skip("needs the conftest's fake CPU devices")
    devices = np.array(jax.devices()[:4])
    pair = square_pair()
    rng = np.random.default_rng(0)
    batch = {k: np.concatenate([v] * 4) for k, v in pair.items()}
    batch["target_frame"] = batch["target_frame"] + rng.normal(0, 0.1, batch["target_frame"].shape
                                                               ).astype(np.float32)
    loss_fn = jax.jit(O.make_loss_fn(model, variables["batch_stats"], zero_prev_prob=0.5))
    key = jax.random.PRNGKey(3)
    single, m_single = loss_fn(variables["params"], batch, key)
    mesh = Mesh(devices, ("data",))
    sharded = {k: jax.device_put(v, NamedSharding(mesh, P("data"))) for k, v in batch.items()}
    params = jax.device_put(variables["params"], NamedSharding(mesh, P()))
    multi, m_multi = loss_fn(params, sharded, key)
    assert float(multi) == pytest.approx(float(single), rel=1e-4)
    assert float(m_multi["prev_dropped"]) == float(m_single["prev_dropped"])
