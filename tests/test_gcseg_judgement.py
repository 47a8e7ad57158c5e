"""The judgement module's rules (Sec. III-B; docs/gcseg.md "The judgement module"): values
against a numpy reference, a constructed case where the paper's rule accepts a wrong mask and
the centred rule rejects it, the skipped re-encoding of empty rejected masks, and the option's
path from a config to the model and its checkpoint."""
import jax
import ml_collections
import numpy as np
import pytest

from gcseg_tiny import TINY, tiny_model
from vosjax.inference import gcseg as I
from vosjax.models import gcseg as G


def _ref_similarity(f0, b0, ft, bt, rule):
    """numpy reference: box mean over feature pixels ``b = (r0, r1, c0, c1)``, optionally
    minus the frame mean (and over the frame std), then the cosine."""
    def vec(f, b):
        v = f[b[0]:b[1], b[2]:b[3]].mean(axis=(0, 1))
        if rule != "paper":
            v = v - f.mean(axis=(0, 1))
            if rule == "standardised":
                v = v / (f.std(axis=(0, 1)) + 1e-6)
        return v
    a, b = vec(f0, b0), vec(ft, bt)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-8))


def _box_mask(hw, b, stride):
    m = np.zeros(hw, np.float32)
    m[b[0] * stride:b[1] * stride, b[2] * stride:b[3] * stride] = 1.0
    return m


@pytest.mark.parametrize("rule", G.JUDGEMENTS)
def test_similarity_matches_numpy_reference(rule):
    rng = np.random.default_rng(0)
    stride, hf, wf, c = 8, 5, 6, 7
    f0 = rng.uniform(0, 2, (2, hf, wf, c)).astype(np.float32)
    ft = rng.uniform(0, 2, (2, hf, wf, c)).astype(np.float32)
    boxes0, boxest = [(0, 2, 1, 4), (2, 5, 0, 3)], [(1, 3, 2, 6), (0, 1, 0, 1)]
    m0 = np.stack([_box_mask((hf * stride, wf * stride), b, stride) for b in boxes0])
    mt = np.stack([_box_mask((hf * stride, wf * stride), b, stride) for b in boxest])
    sim, valid = G.judgement_similarity(f0, m0, ft, mt, rule=rule)
    expect = [_ref_similarity(f0[i], boxes0[i], ft[i], boxest[i], rule) for i in range(2)]
    np.testing.assert_allclose(np.asarray(sim), expect, atol=1e-5)
    assert bool(np.all(valid))


def test_paper_rule_accepts_a_wrong_mask_that_the_centred_rule_rejects():
    """Post-ReLU-like features: channel 0 is a component common to every position (2.0),
    channel 1 marks the object (1.0 on its 2x2 feature pixels). M_{t-1} on a same-size box of
    background: the paper's cosine is [2, 1, 0].[2, 0, 0] / (sqrt 5 * 2) = 2 / sqrt 5 = 0.894
    > 0.7, accepted; centred by the frame means (2, 4/36, 0) the vectors are (0, 8/9, 0) and
    (0, -1/9, 0): cosine -1, rejected. The correct mask scores 1 under both rules."""
    stride, hf, wf = 8, 6, 6
    f = np.zeros((1, hf, wf, 3), np.float32)
    f[..., 0] = 2.0
    f[0, 0:2, 0:2, 1] = 1.0
    right = _box_mask((48, 48), (0, 2, 0, 2), stride)[None]
    wrong = _box_mask((48, 48), (4, 6, 4, 6), stride)[None]
    sim, keep = G.judge_mask(f, right, f, wrong, threshold=0.7, rule="paper")
    assert float(sim[0]) == pytest.approx(2 / np.sqrt(5), abs=1e-6) and bool(keep[0])
    sim, keep = G.judge_mask(f, right, f, wrong, threshold=0.7, rule="centred")
    assert float(sim[0]) == pytest.approx(-1.0, abs=1e-6) and not bool(keep[0])
    for rule in ("paper", "centred"):
        sim, keep = G.judge_mask(f, right, f, right, threshold=0.7, rule=rule)
        assert float(sim[0]) == pytest.approx(1.0, abs=1e-6) and bool(keep[0])


@pytest.mark.parametrize("rule", G.JUDGEMENTS)
def test_empty_mask_is_invalid_and_never_kept(rule):
    f = np.random.default_rng(1).uniform(0, 1, (1, 4, 4, 3)).astype(np.float32)
    m = _box_mask((32, 32), (1, 3, 1, 3), 8)[None]
    sim, keep = G.judge_mask(f, m, f, np.zeros_like(m), threshold=-2.0, rule=rule)
    assert float(sim[0]) == 0.0 and not bool(keep[0])
    with pytest.raises(ValueError, match="judgement="):
        G.judgement_similarity(f, m, f, m, rule="cosine")


EXTRACT_BATCHES = []


class CountingGCSeg(G.GCSeg):
    """Records the batch size of every executed feature-extractor pass (at run time)."""

    def extract(self, frame, mask):
        jax.debug.callback(lambda n: EXTRACT_BATCHES.append(int(n)), frame.shape[0])
        return super().extract(frame, mask)


def _step_args(o=2, h=32, w=48):
    rng = np.random.default_rng(2)
    frames = rng.normal(size=(2, h, w, 3)).astype(np.float32)
    first = np.zeros((o, h, w), np.float32)
    for i in range(o):
        first[i, 2 + 8 * i:8 + 8 * i, 4:20] = 1.0
    refs = frames[[0, 0, 0]]
    return frames[1], first, refs, np.stack([first] * 3), np.array([1, 1, 0], np.float32)


def test_rejected_empty_masks_skip_the_second_extractor_pass():
    """K = 3 references x O = 2 objects: the reference pass has batch 6, the target pass
    batch 2; a second batch-2 pass runs only when a rejected M_{t-1} is non-empty."""
    model = CountingGCSeg(**TINY, judge_threshold=1.5)              # rejects everything
    variables = jax.jit(lambda k: G.init_gcseg(model, k, 32, 32))(jax.random.key(0, impl="rbg"))
    frame, first, refs, ref_masks, wts = _step_args()

    def passes(prev):
        EXTRACT_BATCHES.clear()
        out = I.frame_step(model, variables, frame, prev, refs, ref_masks, wts,
                           adaptive_search=True)
        jax.block_until_ready(out)
        jax.effects_barrier()
        return sorted(EXTRACT_BATCHES), out

    empty, (p_empty, keep, _) = passes(np.zeros_like(first))
    assert empty == [2, 6] and not bool(keep.any())
    full, (p_full, keep, _) = passes(first)
    assert full == [2, 2, 6] and not bool(keep.any())
    one_empty = first.copy()
    one_empty[1] = 0.0                                                # one rejected, non-empty
    assert passes(one_empty)[0] == [2, 2, 6]
    # Rejecting everything = search off with zero previous masks, whichever branch ran.
    off = I.frame_step(model, variables, frame, np.zeros_like(first), refs, ref_masks, wts,
                       adaptive_search=False)[0]
    np.testing.assert_allclose(np.asarray(p_empty), np.asarray(off), atol=1e-5)
    np.testing.assert_allclose(np.asarray(p_full), np.asarray(off), atol=1e-5)


def test_frame_step_uses_the_models_rule():
    """frame_step's similarity = judgement_similarity of the model's own ref_level features
    under the rule the model names."""
    frame, first, refs, ref_masks, wts = _step_args()
    prev = np.roll(first, 6, axis=2)                                  # a shifted M_{t-1}
    paper, variables = tiny_model(32, 32)
    lvl = paper.ref_level
    f0 = paper.apply(variables, refs[:1].repeat(2, 0), first, method=paper.extract)[lvl]
    ft = paper.apply(variables, np.stack([frame] * 2), prev, method=paper.extract)[lvl]
    for rule in G.JUDGEMENTS:
        model = paper.clone(judgement=rule)
        sim = I.frame_step(model, variables, frame, prev, refs, ref_masks, wts)[2]
        expect = G.judgement_similarity(f0, first, ft, prev, rule=rule)[0]
        np.testing.assert_allclose(np.asarray(sim), np.asarray(expect), atol=1e-5)
    sims = {r: np.asarray(I.frame_step(paper.clone(judgement=r), variables, frame, prev, refs,
                                       ref_masks, wts)[2]) for r in ("paper", "centred")}
    assert not np.allclose(sims["paper"], sims["centred"], atol=1e-3)


def test_judgement_option_from_config_to_checkpoint(tmp_path):
    from configs import gcseg as gcseg_config
    from vosjax.families import build_model, load_model, model_spec, save_model

    cfg = gcseg_config.get_config("demo")
    assert cfg.model.judgement == "paper" and cfg.model.judge_threshold == 0.7
    m = ml_collections.ConfigDict(dict(cfg.model))
    m.update(dict(arch="resnet18", levels=(3, 4), ref_level=4, judgement="centred",
                  judge_threshold=0.25))
    model = build_model(m)
    assert (model.judgement, model.judge_threshold) == ("centred", 0.25)
    assert model_spec(model)["fields"]["judgement"] == "centred"
    small, variables = tiny_model(32, 32, judgement="standardised", judge_threshold=-0.1)
    save_model(tmp_path / "m", small, variables)
    loaded, _ = load_model(tmp_path / "m")
    assert (loaded.judgement, loaded.judge_threshold) == ("standardised", -0.1)
    with pytest.raises(ValueError, match="judgement="):
        tiny_model(32, 32, judgement="cosine")
