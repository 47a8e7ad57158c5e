"""Parity of :class:`~vosjax.models.stm_original.STMOriginal` with the official original STM code
(seoungwugoh/STM), from golden outputs made by ``python -m benchmarks.golden_stm_original`` (torch
and the official checkout needed there, not here).

Weights: ResNet-50 STM drawn from a seeded numpy generator (the golden file holds the official
state-dict names and shapes; :func:`draw_state_dict` redraws the values), imported through
:func:`vosjax.convert.load_stm_original`. Inputs: davis2016-mini frames downscaled with vosjax's
transforms (as the generator did), so the test needs ../shared.

* One memorize + segment step: 3 overlapping soft masks (their "other" sums exceed 1, so the
  clamp matters), a 80x136 frame that both codes pad (black) to 80x144; within 1e-4 of the
  largest value (keys, values, logits).
* Whole propagation (the official ``eval_DAVIS.py`` loop, memory every 5 frames + previous,
  K = 11) on the first 20 frames of the three clips at 64x112, two objects. The generator
  measured the official code's own sensitivity: perturbing every input frame by 1e-6 moves its
  probabilities by at most 7.7e-7 on every frame, so the random network is not chaotic here and
  every frame is compared, to 1e-5 absolute (measured: <= 6.0e-7; frames where that sensitivity
  exceeded 1e-5 would be skipped; there are none).
* The same loop on frames narrower than a multiple of 16 (64x107), which the official code pads
  to 64x112 (black, 2 columns left, 3 right) at every ``memorize`` / ``segment`` and crops back,
  so the masks it memorizes are 0 on the padding: run through ``segment_video`` (the
  ``stm_original`` family passes the content box to the propagation), compared on the content
  with the same tolerance. Without the content box (the whole canvas memorized) the difference
  exceeds that tolerance: the test would catch a regression.
"""
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import golden_stm_original as gen
from vosjax.convert import load_stm_original
from vosjax.data.transforms import content_mask, resize_pad_frames
from vosjax.models.stm import soft_aggregate
from vosjax.models.stm_original import NUM_SLOTS, STMOriginal, pad_to_multiple

REPO = pathlib.Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "data" / "stm_original_golden.npz"

SENSITIVE = 1e-5


@pytest.fixture(scope="module")
def golden():
    g = dict(np.load(GOLDEN))
    shapes = [tuple(int(s) for s in x.strip("[]").split(",") if s.strip()) for x in g["shapes"]]
    sd = gen.draw_state_dict(g["names"], shapes)
    model, variables = load_stm_original(sd)
    return model, variables, g


def rel_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_converted_model_is_the_original_r50(golden):
    model = golden[0]
    assert type(model) is STMOriginal
    assert (model.arch, model.keydim, model.valdim, model.mdim) == ("resnet50", 128, 512, 256)


def test_one_memorize_and_segment_step(golden, davis_mini):
    model, v, g = golden
    frames, masks = gen.step_inputs(str(davis_mini))
    size = pad_to_multiple(*frames.shape[1:3])
    assert size == (80, 144)
    x, info = resize_pad_frames(frames, size, pad="black")
    top, left = info.offsets
    h, w = frames.shape[1:3]
    padded = np.zeros((3,) + size, np.float32)
    padded[:, top:top + h, left:left + w] = masks
    keys, values = model.apply(v, jnp.asarray(x[0]), jnp.asarray(padded), method=model.memorize)
    hh, ww = g["step_keys"].shape[2:]
    ref_k = g["step_keys"].reshape(3, 128, hh * ww).transpose(0, 2, 1)
    ref_v = g["step_values"].reshape(3, 512, hh * ww).transpose(0, 2, 1)
    assert rel_err(keys, ref_k) < 1e-4
    assert rel_err(values, ref_v) < 1e-4
    ps = model.apply(v, jnp.asarray(x[1]), keys, values, method=model.segment)
    logit = np.asarray(soft_aggregate(ps, NUM_SLOTS))[:, top:top + h, left:left + w]
    assert rel_err(logit[:4], g["step_logit"]) < 1e-4
    np.testing.assert_allclose(logit[4:].max(), g["step_logit_empty"], rtol=1e-6)


def test_whole_propagation_matches_official_loop(golden, davis_mini):
    from vosjax.inference.propagation import propagate

    model, v, g = golden
    for clip in gen.CLIPS:
        frames, masks = gen.prop_inputs(str(davis_mini), clip)
        x, info = resize_pad_frames(frames, gen.PROP_SIZE, pad="black")
        assert info.offsets == (0, 0)
        out = propagate(model, v, x, masks, num_slots=NUM_SLOTS, mem_every=5).probs
        ours = out[:, :3, ::gen.STRIDE, ::gen.STRIDE]
        ref, sens = g[f"prop_{clip}"], g[f"sens_{clip}"]
        keep = sens <= SENSITIVE
        assert keep.all(), f"{clip}: official code sensitive on frames {np.flatnonzero(~keep)}"
        err = np.abs(ours[keep] - ref[keep]).max()
        assert err < 1e-5, f"{clip}: max abs diff {err:.3g}"


def test_padded_propagation_matches_official_loop(golden, davis_mini):
    from vosjax.inference.options import STMOptions
    from vosjax.inference.propagation import propagate
    from vosjax.inference.video import segment_video

    model, v, g = golden
    h, w = gen.PAD_SIZE
    for clip in gen.CLIPS:
        frames, masks = gen.prop_inputs(str(davis_mini), clip, gen.PAD_SIZE)
        labels = (masks[0] + 2 * masks[1]).astype(np.uint8)
        opts = STMOptions(size=gen.PAD_CANVAS, pad="black", num_slots=NUM_SLOTS, mem_every=5)
        res = segment_video(model, v, frames, {0: labels}, opts)
        assert res.pad.offsets == (0, 2) and res.pad.resized_hw == gen.PAD_SIZE
        crop = np.s_[:, :3, 0:h:gen.STRIDE, 2:2 + w:gen.STRIDE]
        ref, sens = g[f"padprop_{clip}"], g[f"padsens_{clip}"]
        keep = sens <= SENSITIVE
        assert keep.all(), f"{clip}: official code sensitive on frames {np.flatnonzero(~keep)}"
        err = np.abs(res.probs[crop] - ref).max()
        assert err < 1e-5, f"{clip}: max abs diff {err:.3g}"
        if clip == gen.CLIPS[0]:    # the whole canvas memorized: off by more than the tolerance
            x, info = resize_pad_frames(frames, gen.PAD_CANVAS, pad="black")
            padded = np.zeros((2,) + gen.PAD_CANVAS, np.float32)
            padded[:, :, 2:2 + w] = masks
            whole = propagate(model, v, x, padded, num_slots=NUM_SLOTS, mem_every=5).probs
            assert np.abs(whole[crop] - ref).max() > 1e-5
            boxed = propagate(model, v, x, padded, num_slots=NUM_SLOTS, mem_every=5,
                              content=content_mask(info, gen.PAD_CANVAS)).probs
            np.testing.assert_array_equal(boxed, res.probs)
