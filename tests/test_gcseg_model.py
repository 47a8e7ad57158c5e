"""GCSeg modules (Sec. III): shapes, equations against hand/numpy computations, the
judgement decision, ablation trees, frozen trunk, checkpoints."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gcseg_tiny import tiny_model
from vosjax.models import gcseg as G
from vosjax.models.layers import ResBlock
from vosjax.models.resnet import ResNet

TINY = dict(arch="resnet18", coseg_channels=8, ref_channels=8, decoder_channels=8,
            aspp_rates=(1, 2), gcn_kernel=3)


def run(mod, *args):
    """Jitted init + apply of a small module (eager dispatch is slow on CPU)."""
    variables = jax.jit(lambda *a: mod.init(jax.random.key(0, impl="rbg"), *a))(*args)
    return variables, jax.jit(lambda v, *a: mod.apply(v, *a))(variables, *args)


class lambda_hw:  # noqa: N801 -- binds a static out_hw so run() can jit the module
    def __init__(self, mod, hw):
        self.mod, self.hw = mod, hw

    def init(self, key, *a):
        return self.mod.init(key, *a, self.hw)

    def apply(self, v, *a):
        return self.mod.apply(v, *a, self.hw)


def shapes_of(model, h, w, n=2):
    frame = jax.ShapeDtypeStruct((n, h, w, 3), jnp.float32)
    mask = jax.ShapeDtypeStruct((n, h, w), jnp.float32)
    variables = jax.eval_shape(lambda f, m: model.init(jax.random.PRNGKey(0), f, m, f, m),
                               frame, mask)
    out = jax.eval_shape(model.apply, variables, frame, mask, frame, mask)
    return variables, out


@pytest.mark.parametrize("levels,ref_level,stride", [((2, 3, 4), 4, 4), ((3, 4), 4, 8)])
def test_decoder_stride_follows_the_finest_level(levels, ref_level, stride):
    model = G.GCSeg(mode="both", levels=levels, ref_level=ref_level, **TINY)
    variables, out = shapes_of(model, 64, 96)
    assert out.target.shape == (2, 64, 96, 2)
    # The decoder's first GCN conv runs on the fused map of the finest level's grid.
    feats = jax.eval_shape(lambda v, f, m: model.apply(v, f, m, method=model.extract),
                           variables, jax.ShapeDtypeStruct((2, 64, 96, 3), jnp.float32),
                           jax.ShapeDtypeStruct((2, 64, 96), jnp.float32))
    assert min(feats) == min(levels) and feats[min(levels)].shape[1:3] == (64 // stride,
                                                                           96 // stride)


@pytest.mark.parametrize("mode", G.MODES)
@pytest.mark.parametrize("hw", [(64, 96), (65, 97), (32, 32), (100, 60)])
def test_output_shapes(mode, hw):
    _, out = shapes_of(G.GCSeg(mode=mode, **TINY), *hw)
    assert out.target.shape == (2, *hw, 2) and out.reference.shape == (2, *hw, 2)
    has_aux = mode == "both"
    assert (out.aux_target is not None) == has_aux
    if has_aux:
        assert out.aux_target.shape == out.aux_reference.shape == (2, *hw, 2)


def test_default_paper_model_shapes():
    """R101, levels res3-res5, widths 256: only shapes (no FLOPs)."""
    variables, out = shapes_of(G.GCSeg(), 96, 128, n=1)
    assert out.target.shape == (1, 96, 128, 2)
    p = variables["params"]
    assert p["extractor"]["conv1_mask"]["kernel"].shape == (7, 7, 1, 64)
    assert p["coseg"]["fc_2"]["kernel"].shape == (2048, 2048)        # FC on res5
    assert p["mask_encoder"]["kernel"].shape == (10,)                # 10x1 conv, 10 vectors
    assert p["decoder"]["gcn"]["left_1"]["kernel"].shape == (7, 1, 3 * 256 + 256, 256)
    assert len([k for k in p["decoder"]["aspp"] if k.startswith("b_rate")]) == 3


def test_ablation_parameter_trees():
    trees = {m: set(shapes_of(G.GCSeg(mode=m, **TINY), 32, 32)[0]["params"]) for m in G.MODES}
    assert trees["both"] == {"extractor", "coseg", "mask_encoder", "reference", "decoder",
                             "coseg_decoder"}
    assert trees["reference"] == {"extractor", "mask_encoder", "reference", "decoder"}
    assert trees["coseg"] == {"extractor", "coseg", "decoder"}
    assert trees["baseline"] == {"extractor", "fusion", "decoder"}


def test_extractor_tree_is_resnet_plus_mask_conv():
    """ImageNet weights for ResNet load unchanged: the trees differ only by conv1_mask."""
    x = jnp.zeros((1, 32, 32, 3))
    m = jnp.zeros((1, 32, 32))
    fe = jax.eval_shape(lambda: G.FeatureExtractor("resnet50", 4).init(jax.random.PRNGKey(0),
                                                                         x, m))
    rn = jax.eval_shape(lambda: ResNet("resnet50", 4).init(jax.random.PRNGKey(0), x))
    fe_p = dict(fe["params"])
    assert fe_p.pop("conv1_mask")["kernel"].shape == (7, 7, 1, 64)
    assert jax.tree_util.tree_map(lambda a: a.shape, fe_p) == \
        jax.tree_util.tree_map(lambda a: a.shape, dict(rn["params"]))
    assert jax.tree_util.tree_structure(fe["batch_stats"]) == \
        jax.tree_util.tree_structure(rn["batch_stats"])


def test_bad_config_and_inputs_raise():
    with pytest.raises(ValueError, match="mode="):
        shapes_of(G.GCSeg(mode="ref+coseg", **TINY), 32, 32)
    with pytest.raises(ValueError, match="levels="):
        shapes_of(G.GCSeg(levels=(2, 6), **TINY), 32, 32)
    with pytest.raises(ValueError, match="gcn_kernel"):
        shapes_of(G.GCSeg(**{**TINY, "gcn_kernel": 4}), 32, 32)
    with pytest.raises(ValueError, match="arch="):
        shapes_of(G.GCSeg(**{**TINY, "arch": "resnet7"}), 32, 32)
    model = G.GCSeg(**TINY)
    variables, _ = shapes_of(model, 32, 32)
    with pytest.raises(ValueError, match="mask must be"):
        model.apply(variables, jnp.zeros((1, 32, 32, 3)), jnp.zeros((1, 31, 32)),
                    method=model.extract)


# ----------------------------------------------------------------------------- equations

def test_coseg_product_and_similarity_map():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    v = rng.normal(size=(2, 5)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(G.coseg_product(f, v)), f * v[:, None, None, :],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(G.similarity_map(v, f, "channel")),
                               f * v[:, None, None, :], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(G.similarity_map(v, f, "dot"))[..., 0],
                               (f * v[:, None, None, :]).sum(-1), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="similarity="):
        G.similarity_map(v, f, "cos")


def test_eq1_spatial_softmax_and_eq2_attend():
    d1 = np.random.default_rng(1).normal(size=(2, 3, 4, 5)).astype(np.float32)
    soft = np.asarray(G.spatial_softmax(jnp.asarray(d1)))
    e = np.exp(d1)
    np.testing.assert_allclose(soft, e / e.sum(axis=(1, 2), keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(soft.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(G.attend(soft, d1)), soft * d1, rtol=1e-6)
    fp = np.ones((2, 3, 4, 5), np.float32)
    np.testing.assert_allclose(np.asarray(G.reference_upper_output(fp, soft * d1)),
                               1.0 + soft * d1, rtol=1e-6)


def test_cosine_similarity_hand_values():
    a = jnp.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    b = jnp.array([[0.0, 2.0], [2.0, 2.0], [1.0, 0.0]])
    np.testing.assert_allclose(np.asarray(G.cosine_similarity(a, b)), [0.0, 1.0, 0.0],
                               atol=1e-6)


def _feature_with(channel, value, hf=4, wf=4, c=3, box=(1, 3, 1, 3)):
    f = np.zeros((1, hf, wf, c), np.float32)
    f[0, box[0]:box[1], box[2]:box[3], channel] = value
    return f


def test_judgement_decision_on_constructed_cases():
    mask = np.zeros((1, 32, 32), np.float32)
    mask[0, 8:24, 8:24] = 1.0                                    # = feature pixels 1..2
    f0 = _feature_with(0, 1.0)
    same, keep = G.judge_mask(f0, mask, f0, mask)
    assert bool(keep[0]) and float(same[0]) == pytest.approx(1.0, abs=1e-6)
    orth, keep = G.judge_mask(f0, mask, _feature_with(1, 3.0), mask)
    assert not bool(keep[0]) and float(orth[0]) == pytest.approx(0.0, abs=1e-6)
    # cos = 0.8 and 0.6 around the 0.7 threshold: [1, 0] vs [0.8, 0.6] and [0.6, 0.8]
    for (x, y), expect in (((0.8, 0.6), True), ((0.6, 0.8), False)):
        ft = _feature_with(0, x) + _feature_with(1, y)
        sim, keep = G.judge_mask(f0, mask, ft, mask)
        assert float(sim[0]) == pytest.approx(x, abs=1e-6) and bool(keep[0]) == expect
    # Features outside M_{t-1}'s box do not matter; an empty M_{t-1} is never kept.
    moved = np.zeros_like(mask)
    moved[0, 0:8, 0:8] = 1.0
    sim, keep = G.judge_mask(f0, mask, f0, moved)
    assert float(sim[0]) == pytest.approx(0.0, abs=1e-6) and not bool(keep[0])
    sim, keep = G.judge_mask(f0, mask, f0, np.zeros_like(mask))
    assert float(sim[0]) == 0.0 and not bool(keep[0])
    sim, keep = G.judge_mask(f0, mask, f0 * 0.5 + _feature_with(1, 0.1), mask, threshold=0.99)
    assert bool(keep[0]) == (float(sim[0]) > 0.99)


# ----------------------------------------------------------------------------- modules

def test_coseg_module_matches_hand_computation():
    rng = np.random.default_rng(2)
    f1 = [rng.normal(size=(2, 4, 4, 3)).astype(np.float32),
          rng.normal(size=(2, 2, 2, 5)).astype(np.float32)]
    f2 = [rng.normal(size=(2, 4, 4, 3)).astype(np.float32),
          rng.normal(size=(2, 2, 2, 5)).astype(np.float32)]
    mod = G.CoSegmentation(channels=None)
    variables, (g1, g2) = run(lambda_hw(mod, (4, 4)), f1, f2)
    assert g1.shape == g2.shape == (2, 4, 4, 8)
    p = variables["params"]
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    fc = lambda i, x: sig(x.mean((1, 2)) @ np.asarray(p[f"fc_{i}"]["kernel"])  # noqa: E731
                          + np.asarray(p[f"fc_{i}"]["bias"]))
    # Level 0 is at the output size: G1 = F1 x f2 exactly; G2 = F2 x f1.
    np.testing.assert_allclose(np.asarray(g1[..., :3]), f1[0] * fc(0, f2[0])[:, None, None],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(g2[..., :3]), f2[0] * fc(0, f1[0])[:, None, None],
                               rtol=1e-5, atol=1e-6)
    # Level 1 (2x2) is upsampled: its mean is preserved by the bilinear resize of a 2x2 map.
    lvl1 = f1[1] * fc(1, f2[1])[:, None, None]
    np.testing.assert_allclose(np.asarray(g1[..., 3:]).mean((1, 2)), lvl1.mean((1, 2)),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fuse", ["weighted", "full"])
def test_mask_encoder(fuse):
    rng = np.random.default_rng(3)
    feats = np.abs(rng.normal(size=(2, 4, 6, 5))).astype(np.float32)
    mask = np.zeros((2, 32, 48), np.float32)
    mask[0, 8:24, 8:40] = 1.0                                    # feature rows 1-2, cols 1-4
    variables, r = run(G.MaskEncoder(fuse=fuse), feats, mask)
    r = np.asarray(r)
    assert r.shape == (2, 5)
    p = variables["params"]
    if fuse == "weighted":
        assert float(p["bias"]) == 0.0
        # Whole-box vector = mean of the (pixel-aligned) box, and the 9 cells average to it
        # (equal areas), so with the initial uniform 1/10 kernel r = box mean.
        np.testing.assert_allclose(r[0], feats[0, 1:3, 1:5].mean((0, 1)), rtol=1e-5)
        np.testing.assert_allclose(r[1], 0.0)                    # empty mask -> bias (0)
    else:
        np.testing.assert_allclose(r[1], np.asarray(p["conv"]["bias"]), atol=1e-7)


def test_reference_module_shapes_and_modes():
    rng = np.random.default_rng(4)
    f = rng.normal(size=(2, 3, 5, 6)).astype(np.float32)
    r = rng.normal(size=(2, 6)).astype(np.float32)
    for sim in ("channel", "dot"):
        mod = G.ReferenceModule(channels=4, similarity=sim)
        variables, out = run(mod, np.concatenate([f, f]), np.concatenate([r, -3.0 * r]))
        assert out.shape == (4, 3, 5, 4) and bool(jnp.all(out >= 0))
        assert not np.allclose(np.asarray(out[:2]), np.asarray(out[2:]))  # r matters


def test_decoder_blocks():
    x = jnp.asarray(np.random.default_rng(5).normal(size=(1, 6, 8, 4)).astype(np.float32))
    v, y = run(G.GlobalConvBlock(3, kernel=5), x)
    assert y.shape == (1, 6, 8, 3) and v["params"]["left_1"]["kernel"].shape == (5, 1, 4, 3)
    res = ResBlock(conv_names=G.RESIDUAL_CONV_NAMES)
    v, _ = run(res, x)
    zeroed = jax.tree_util.tree_map(jnp.zeros_like, v)
    np.testing.assert_allclose(np.asarray(res.apply(zeroed, x)), np.asarray(x))  # identity skip
    v, y = run(G.ASPP(4, rates=(2, 3)), x)
    assert y.shape == (1, 6, 8, 4) and v["params"]["b_rate3"]["kernel"].shape == (3, 3, 4, 4)
    _, y = run(lambda_hw(G.Decoder(channels=4, gcn_kernel=3, aspp_rates=(1,)), (24, 32)), x)
    assert y.shape == (1, 24, 32, 2)


# ----------------------------------------------------------------------------- whole model

@pytest.fixture(scope="module")
def tiny():
    return tiny_model(32, 32)


def test_freeze_backbone_stops_extractor_gradients(tiny):
    model, variables = tiny
    frame = jnp.asarray(np.random.default_rng(6).normal(size=(1, 32, 32, 3)), jnp.float32)
    mask = jnp.zeros((1, 32, 32)).at[:, 8:20, 4:16].set(1.0)

    def grads(m):
        def f(params):
            feats = m.apply({**variables, "params": params}, frame, mask, method=m.extract)
            return sum(jnp.sum(v ** 2) for v in feats.values())
        return jax.jit(jax.grad(f))(variables["params"])["extractor"]

    free = grads(model)
    frozen = grads(model.clone(freeze_backbone=True))
    norm = lambda t: sum(float(jnp.sum(x ** 2)) for x in jax.tree_util.tree_leaves(t))  # noqa
    assert norm(free["conv1_mask"]) > 0 and norm(free["conv1"]) > 0
    assert norm(frozen) == 0.0


def test_mask_channel_changes_features(tiny):
    model, variables = tiny
    frame = jnp.asarray(np.random.default_rng(7).normal(size=(1, 32, 32, 3)), jnp.float32)
    mask = jnp.zeros((1, 32, 32)).at[:, 8:20, 4:16].set(1.0)
    a = model.apply(variables, frame, mask, method=model.extract)[4]
    b = model.apply(variables, frame, jnp.zeros_like(mask), method=model.extract)[4]
    assert float(jnp.max(jnp.abs(a - b))) > 1e-4


def test_checkpoint_round_trip(tiny, tmp_path):
    from vosjax.families import load_model, save_model
    model, variables = tiny
    save_model(tmp_path / "m", model, variables)
    model2, variables2 = load_model(tmp_path / "m")
    assert model2 == model and hash(model2) == hash(model)
    for a, b in zip(jax.tree_util.tree_leaves(variables), jax.tree_util.tree_leaves(variables2)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_inference_head_equals_training_forward(tiny):
    """extract + reference_vector + segment_target (the inference path, no reference-stream
    decoding) gives the training forward's M_t."""
    model, variables = tiny
    rng = np.random.default_rng(8)
    tf, rf = (jnp.asarray(rng.normal(size=(2, 32, 32, 3)), jnp.float32) for _ in range(2))
    pm = jnp.zeros((2, 32, 32)).at[:, 6:20, 8:24].set(1.0)
    rm = jnp.zeros((2, 32, 32)).at[:, 4:18, 10:26].set(1.0)
    full = jax.jit(model.apply)(variables, tf, pm, rf, rm)

    @jax.jit
    def infer(v):
        ft = model.apply(v, tf, pm, method=model.extract)
        fr = model.apply(v, rf, rm, method=model.extract)
        r = model.apply(v, fr, rm, method=model.reference_vector)
        return model.apply(v, ft, fr, r, (32, 32), method=model.segment_target)

    np.testing.assert_allclose(np.asarray(infer(variables)), np.asarray(full.target),
                               rtol=1e-4, atol=1e-4)
