"""Propagation: semantics vs a plain eager loop, reference sets, memory cap, late objects,
streaming, errors. A tiny STM (R10 trunk) at 16x32: 2 memory positions per frame."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stm_helpers import random_video
from vosjax.correction import masks_to_probs
from vosjax.inference import Propagator, propagate
from vosjax.inference.propagation import SLOT_BUCKET, merge_new_objects
from vosjax.models.stm import soft_aggregate

H, W = 16, 32
P = 2          # memory positions per frame at 16x32 (stride 16)


def _eager_loop(model, v, frames, masks, keep, read_prev=True, cap=None, memory_masks=None,
                content=None):
    """The official loop with a Python list of memory frames (no jit, growing memory).

    ``keep(f)``: frame f becomes permanent. With ``cap``, the list keeps the first frame and
    the ``cap - 1`` most recent, trimmed when a frame is kept (before that step's read).
    ``memory_masks[t]`` ``[O, H, W]`` is memorized instead of the prediction on kept frames.
    ``content`` ``[H, W]``: every memorized mask is multiplied by it (the original STM's loop
    crops the prediction and pads it with zeros when memorizing).
    """
    o = masks.shape[0]
    memorize = jax.jit(functools.partial(model.apply, method=model.memorize))
    query = jax.jit(functools.partial(model.apply, method=model.encode_query))
    read = jax.jit(functools.partial(model.apply, method=model.read))   # cheap per memory size
    decode = jax.jit(functools.partial(model.apply, method=model.decode), static_argnums=3)

    def segment(v, frame, keys, vals):
        q = query(v, frame)
        return jax.nn.softmax(decode(v, read(v, keys, vals, q.key)[0], q, (H, W)), axis=-1)[..., 1]

    prev = masks_to_probs(jnp.asarray(masks), o)
    out, bank, sizes = [prev], [], []
    for t in range(1, len(frames)):
        k, val = memorize(v, frames[t - 1], prev[1:] if content is None else prev[1:] * content)
        if keep(t - 1):
            bank.append((k, val))
            if cap is not None and len(bank) > cap:
                bank = bank[:1] + bank[len(bank) - cap + 1:]
            mem = bank
        else:
            mem = bank + ([(k, val)] if read_prev else [])
        keys = jnp.concatenate([m[0] for m in mem], axis=1)
        vals = jnp.concatenate([m[1] for m in mem], axis=1)
        ps = segment(v, frames[t], keys, vals)
        prev = jax.nn.softmax(soft_aggregate(ps, o), axis=0)
        out.append(prev)
        sizes.append(keys.shape[1])
        if memory_masks is not None and keep(t):
            prev = masks_to_probs(jnp.asarray(memory_masks[t]), o)
    return np.stack(out), np.array(sizes)


# "mem" is covered uncapped by the golden parity test and here by the memory-cap test.
@pytest.mark.parametrize("reference,keep,read_prev", [
    ("first", lambda f: f == 0, False),
    ("prev", lambda f: False, True),
    ("first+prev", lambda f: f == 0, True),
])
def test_reference_sets_match_eager_loop(tiny, reference, keep, read_prev):
    model, v = tiny
    frames, masks = random_video(7)
    res = propagate(model, v, frames, masks, mem_every=2, reference=reference)
    want, sizes = _eager_loop(model, v, frames, masks, keep, read_prev)
    np.testing.assert_allclose(np.asarray(res.probs), want, atol=2e-5)
    np.testing.assert_array_equal(np.asarray(res.memory_positions), sizes)


def test_mem_with_cap_keeps_first_and_most_recent(tiny):
    model, v = tiny
    frames, masks = random_video(12)
    res = propagate(model, v, frames, masks, mem_every=2, memory_slots=3)
    want, sizes = _eager_loop(model, v, frames, masks, lambda f: f % 2 == 0, cap=3)
    np.testing.assert_allclose(np.asarray(res.probs), want, atol=2e-5)
    np.testing.assert_array_equal(np.asarray(res.memory_positions), sizes)
    assert sizes.max() == 4 * P          # 3 permanent + the previous frame (uncapped: 6)


def test_memory_masks_replace_the_memorized_prediction(tiny):
    """Table 5's low-quality references: kept frames memorize the given masks."""
    model, v = tiny
    frames, masks = random_video(9)
    rng = np.random.default_rng(3)
    low = (rng.random((9,) + masks.shape) > 0.7).astype(np.float32)
    res = propagate(model, v, frames, masks, mem_every=3, memory_masks=low)
    want, _ = _eager_loop(model, v, frames, masks, lambda f: f % 3 == 0, memory_masks=low)
    np.testing.assert_allclose(np.asarray(res.probs), want, atol=2e-5)
    plain = np.asarray(propagate(model, v, frames, masks, mem_every=3).probs)
    # Frame 3 is the first replaced memory frame: frames 0..3 are unchanged, frame 4 is not.
    np.testing.assert_allclose(np.asarray(res.probs)[:4], plain[:4], atol=1e-6)
    assert np.abs(np.asarray(res.probs)[4] - plain[4]).max() > 1e-3
    with pytest.raises(ValueError, match="memory_masks must be"):
        propagate(model, v, frames, masks, memory_masks=low[:3])


def test_content_zeroes_memorized_masks_outside(tiny):
    """``content``: memorized masks are 0 on the padding (the original STM's loop); all ones
    gives today's results bit for bit."""
    model, v = tiny
    frames, masks = random_video(8)
    content = np.zeros((H, W), np.float32)
    content[:, 2:W - 2] = 1.0      # 2 padded columns a side (the masks lie inside)
    res = propagate(model, v, frames, masks, mem_every=3, content=content)
    want, _ = _eager_loop(model, v, frames, masks, lambda f: f % 3 == 0, content=content)
    np.testing.assert_allclose(np.asarray(res.probs), want, atol=2e-5)
    plain = np.asarray(propagate(model, v, frames, masks, mem_every=3).probs)
    np.testing.assert_array_equal(res.probs[:2], plain[:2])    # frame 0's mask is 0 there
    assert np.abs(res.probs[2:] - plain[2:]).max() > 1e-4
    ones = propagate(model, v, frames, masks, mem_every=3, content=np.ones((H, W), bool))
    np.testing.assert_array_equal(ones.probs, plain)
    with pytest.raises(ValueError, match="content must be"):
        propagate(model, v, frames, masks, content=content[:, :8])


def test_num_slots_pads_empty_channels(tiny):
    model, v = tiny
    frames, masks = random_video(4)
    res = propagate(model, v, frames, masks, num_slots=4)
    probs = np.asarray(res.probs)
    assert probs.shape == (4, 5, H, W)
    np.testing.assert_array_equal(probs[0], np.asarray(masks_to_probs(masks, 4)))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # Empty slots carry the clamp's logit log(1e-7 / (1 - 1e-7)): tiny but non-zero.
    assert (probs[1:, 3:] < 1e-6).all() and (probs[1:, 3:] > 0).all()


def test_streaming_matches_eager_loop(tiny):
    """Frame-by-frame ``Propagator.step`` and whole-video ``propagate`` each against the plain
    eager loop (the official schedule: every 5th frame kept, the previous frame read)."""
    model, v = tiny
    frames, masks = random_video(7)
    want, _ = _eager_loop(model, v, frames, masks, lambda f: f % 5 == 0)
    prop = Propagator(model, v, frames[0], masks, max_frames=7)
    got = [prop.probs0] + [prop.step(f) for f in frames[1:]]
    np.testing.assert_allclose(np.stack(got), want, atol=2e-5)
    np.testing.assert_allclose(np.asarray(propagate(model, v, frames, masks).probs), want,
                               atol=2e-5)


def test_streaming_uncapped_bank_grows(tiny):
    model, v = tiny
    frames, masks = random_video(2 * SLOT_BUCKET + 4)     # 10 kept frames > 8 slots
    prop = Propagator(model, v, frames[0], masks, mem_every=2)     # no max_frames: grows
    got = [prop.probs0] + [prop.step(f) for f in frames[1:]]
    assert prop.bank.num_slots == 2 * SLOT_BUCKET
    want, _ = _eager_loop(model, v, frames, masks, lambda f: f % 2 == 0)
    np.testing.assert_allclose(np.stack(got), want, atol=2e-5)


def test_late_objects_are_merged_at_their_frame(tiny):
    model, v = tiny
    frames, masks = random_video(6)
    res = propagate(model, v, frames, masks, start_frames=[0, 3])
    probs = np.asarray(res.probs)
    # Before frame 3 object 2 does not exist: its channel sits at the clamp.
    assert probs[:3, 2].max() < 1e-6
    # Frames 1-2 equal a one-object run (object 2's channel aside).
    solo = np.asarray(propagate(model, v, frames[:3], masks[:1], num_slots=2).probs)
    np.testing.assert_allclose(probs[1:3, :2], solo[1:3, :2], atol=1e-5)
    # Frame 3: the new mask pasted over the running prediction.
    inside = masks[1] > 0
    np.testing.assert_array_equal(probs[3, 2][inside], 1.0)
    np.testing.assert_array_equal(probs[3, :2][:, inside], 0.0)
    # From frame 4 on the object is predicted, and its annotated frame 3 stays in memory
    # (frames kept: 0 by mem_every=5, 3 as annotated; t=5 reads both plus frame 4).
    assert probs[4:, 2].max() > 1e-3
    np.testing.assert_array_equal(np.asarray(res.memory_positions), [P, 2 * P, 2 * P, 2 * P, 3 * P])
    # Streaming with explicit new masks gives the same.
    prop = Propagator(model, v, frames[0], masks * np.array([1, 0])[:, None, None],
                      active=[True, False], max_frames=6)
    got = [prop.probs0]
    for t in range(1, 6):
        got.append(prop.step(frames[t], masks if t == 3 else None,
                             [False, True] if t == 3 else None))
    np.testing.assert_allclose(np.stack(got), probs, atol=1e-6)


def test_merge_new_objects_by_hand():
    probs = jnp.array(np.full((3, 1, 4), 1 / 3, np.float32))
    masks = jnp.array([[[0, 0, 0, 0]], [[0, 1, 1, 0]]], jnp.float32)
    got = np.asarray(merge_new_objects(probs, masks, jnp.array([False, True])))
    want = np.full((3, 1, 4), 1 / 3, np.float32)
    want[:, 0, 1:3] = [[0, 0], [0, 0], [1, 1]]
    np.testing.assert_allclose(got, want)


@pytest.mark.parametrize("kwargs,match", [
    (dict(reference="last"), "reference"),
    (dict(mem_every=0), "mem_every"),
    (dict(num_slots=1), "num_slots"),
    (dict(start_frames=[0, 9]), "start_frames"),
    (dict(memory_slots=0), "memory_slots"),
    (dict(correction="yes"), "GradientCorrection"),
])
def test_bad_config_raises(tiny, kwargs, match):
    model, v = tiny
    frames, masks = random_video(3)
    with pytest.raises((ValueError, TypeError), match=match):
        propagate(model, v, frames, masks, **kwargs)


def test_bad_shapes_raise(tiny):
    model, v = tiny
    frames, masks = random_video(3)
    with pytest.raises(ValueError, match="frames must be"):
        propagate(model, v, frames[0], masks)
    with pytest.raises(ValueError, match="first_masks"):
        propagate(model, v, frames, masks[:, :8])
    prop = Propagator(model, v, frames[0], masks, max_frames=3)
    with pytest.raises(ValueError, match="frame 1 has shape"):
        prop.step(frames[1, :8])
