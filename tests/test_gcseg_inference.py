"""GCSeg video inference: fragment references, object merging, one compilation per
resolution, adaptive search, objects on the batch axis."""
import jax.numpy as jnp
import numpy as np
import pytest

from gcseg_tiny import tiny_model
from vosjax.inference import gcseg as I


def test_reference_indices():
    rng = np.random.default_rng(0)
    for t in (1, 2, 3, 7, 50):
        for n in (0, 1, 3):
            idx, w = I.reference_indices(t, n, rng)
            assert idx.shape == w.shape == (n + 1,) and idx[0] == 0 and w[0] == 1
            edges = [(k * t) // max(n, 1) for k in range(n + 1)]
            for k in range(n):
                lo, hi = edges[k], edges[k + 1]
                if hi > lo:
                    assert lo <= idx[k + 1] < hi and w[k + 1] == 1
                else:
                    assert idx[k + 1] == 0 and w[k + 1] == 0
            assert np.all(idx < t)
    # t=1 with 3 fragments: only the last fragment {0} is non-empty.
    _, w = I.reference_indices(1, 3, rng)
    np.testing.assert_array_equal(w, [1, 0, 0, 1])
    a = I.reference_indices(40, 4, np.random.default_rng(3))
    b = I.reference_indices(40, 4, np.random.default_rng(3))
    np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(ValueError, match="t=0"):
        I.reference_indices(0, 3, rng)


def test_merge_objects_hand_values():
    p = jnp.array([[[0.9, 0.3, 0.2]], [[0.6, 0.1, 0.7]]])               # [O=2, 1, 3]
    merged = np.asarray(I.merge_objects(p))
    # pixel 0: scores (0.1, 0.9, 0.6) / 1.6; pixel 1: (0.7, 0.3, 0.1) / 1.1
    np.testing.assert_allclose(merged[:, 0, 0], np.array([0.1, 0.9, 0.6]) / 1.6, rtol=1e-6)
    np.testing.assert_allclose(merged[:, 0, 1], np.array([0.7, 0.3, 0.1]) / 1.1, rtol=1e-6)
    np.testing.assert_array_equal(np.argmax(merged, 0)[0], [1, 0, 2])
    hard = np.asarray(I.hard_masks(jnp.asarray(merged)))
    np.testing.assert_array_equal(hard[:, 0], [[1, 0, 0], [0, 0, 1]])
    one = np.asarray(I.merge_objects(jnp.array([[[0.4, 0.6]]])))
    np.testing.assert_array_equal(np.argmax(one, 0)[0], [0, 1])        # one object: p > 0.5


@pytest.fixture(scope="module")
def tiny():
    return tiny_model(32, 32)


def video(t, h, w, o):
    rng = np.random.default_rng(1)
    frames = rng.normal(size=(t, h, w, 3)).astype(np.float32)
    first = np.zeros((o, h, w), np.float32)
    for i in range(o):
        first[i, 2 + 6 * i:8 + 6 * i, 3:3 + w // 2] = 1.0
    return frames, first


def test_segment_video_shapes_and_one_compile_per_resolution(tiny):
    model, variables = tiny
    base = I.frame_step._cache_size()
    frames, first = video(4, 32, 48, 2)
    probs = I.segment_video(model, variables, frames, first, num_fragments=2, seed=0)
    assert probs.shape == (4, 3, 32, 48) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(np.argmax(probs[0], 0), first[0] + 2 * first[1])
    assert I.frame_step._cache_size() == base + 1                      # 3 frames, 1 compile
    # Same resolution, different length / seed: no new compilation. New resolution: one.
    again = I.segment_video(model, variables, *video(6, 32, 48, 2), num_fragments=2, seed=4)
    assert again.shape == (6, 3, 32, 48) and I.frame_step._cache_size() == base + 1
    other = I.segment_video(model, variables, *video(3, 40, 40, 2), num_fragments=2)
    assert other.shape == (3, 3, 40, 40) and I.frame_step._cache_size() == base + 2
    # Deterministic given the seed.
    np.testing.assert_array_equal(
        I.segment_video(model, variables, frames, first, num_fragments=2, seed=0), probs)


def test_adaptive_search_zeroes_rejected_masks(tiny):
    """judge_threshold > 1 rejects every M_{t-1}: the step must equal the search-off step fed
    all-zero previous masks. Target = frame 0 with M_0 as M_{t-1}: similarity 1, kept, equal
    to search off."""
    model, variables = tiny
    frames, first = video(3, 32, 48, 2)
    args = (frames[1], first, frames[[0, 0, 0]], np.stack([first] * 3),
            np.array([1, 1, 0], np.float32))
    off = I.frame_step(model, variables, *args, adaptive_search=False)[0]
    off_zero = I.frame_step(model, variables, args[0], np.zeros_like(first), *args[2:],
                            adaptive_search=False)[0]
    reject = model.clone(judge_threshold=1.5)
    p, keep, sim = I.frame_step(reject, variables, *args, adaptive_search=True)
    assert not bool(keep.any())
    np.testing.assert_allclose(np.asarray(p), np.asarray(off_zero), atol=1e-5)
    same = (frames[0],) + args[1:]
    p, keep, sim = I.frame_step(model, variables, *same, adaptive_search=True)
    assert bool(keep.all()) and np.allclose(np.asarray(sim), 1.0, atol=1e-5)
    off_same = I.frame_step(model, variables, *same, adaptive_search=False)[0]
    np.testing.assert_allclose(np.asarray(p), np.asarray(off_same), atol=1e-5)
    assert not np.allclose(np.asarray(off), np.asarray(off_zero), atol=1e-5)  # M_{t-1} matters
    _, info = I.segment_video(reject, variables, frames, first, num_fragments=1,
                              return_info=True)
    assert info["keep"][0].all() and not info["keep"][1:].any()


def test_objects_on_batch_axis_equal_separate_runs(tiny):
    model, variables = tiny
    frames, first = video(2, 32, 48, 2)
    refs = frames[[0, 1, 0]]
    wts = np.array([1, 1, 0], np.float32)
    joint = I.frame_step(model, variables, frames[1], first, refs, np.stack([first] * 3), wts)[0]
    for o in range(2):
        single = I.frame_step(model, variables, frames[1], first[o:o + 1], refs,
                              np.stack([first[o:o + 1]] * 3), wts)[0]
        np.testing.assert_allclose(np.asarray(joint[o]), np.asarray(single[0]), atol=1e-5)


def test_segment_video_bad_inputs(tiny):
    model, variables = tiny
    frames, first = video(2, 32, 48, 1)
    with pytest.raises(ValueError, match="frames must be"):
        I.segment_video(model, variables, frames[..., :2], first)
    with pytest.raises(ValueError, match="first_masks must be"):
        I.segment_video(model, variables, frames, first[:, :10])
