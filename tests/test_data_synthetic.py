"""Synthetic videos and the GCSeg static-image clips."""
import time

import numpy as np
import pytest

from vosjax.data.synthetic import (
    SyntheticVideos,
    inpaint_background,
    static_image_clip,
    synthetic_video,
)


def test_deterministic_and_seed_dependent():
    a, b, c = synthetic_video(7), synthetic_video(7), synthetic_video(8)
    np.testing.assert_array_equal(a.load_frames(), b.load_frames())
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.load_frames(), c.load_frames())


@pytest.mark.parametrize("seed", range(4))
def test_targets_visible_first_frame_and_labels_dense(seed):
    v = synthetic_video(seed, height=48, width=80, num_frames=12)
    assert v.load_frames().shape == (12, 48, 80, 3)
    lab = v.labels
    assert lab.shape == (12, 48, 80) and 1 <= v.num_objects <= 3
    assert v.object_first == (0,) * v.num_objects     # every target labelled at frame 0
    assert set(np.unique(lab)) <= set(range(v.num_objects + 1))
    # Things move: the label maps change over time.
    assert (lab[0] != lab[-1]).mean() > 0.01


def test_leaving_and_reentering_target():
    v = synthetic_video(3, num_objects=1, leave_prob=1.0, distractors=False, num_frames=12)
    area = (v.labels == 1).sum(axis=(1, 2))
    gone = np.flatnonzero(area == 0)
    assert area[0] > 0 and len(gone) > 0 and area[gone[-1] + 1:].max() > 0


def test_distractor_is_an_unlabelled_lookalike():
    on = synthetic_video(5, num_objects=1, distractors=True, leave_prob=0.0)
    off = synthetic_video(5, num_objects=1, distractors=False, leave_prob=0.0)
    f_on, f_off, l_on, l_off = on.load_frames(), off.load_frames(), on.labels, off.labels
    # Same targets and background; the distractor only adds unlabelled pixels / occludes.
    assert ((l_on == 0) | (l_on == l_off)).all()
    np.testing.assert_array_equal(f_on[l_on > 0], f_off[l_on > 0])
    added = (f_on != f_off).any(-1) & (l_on == 0)
    assert added.sum() > 50
    # Look-alike: its colours match the target's far better than the background's do.
    target_mean = f_off[l_off == 1].astype(float).mean(0)
    bg_mean = f_off[l_off == 0].astype(float).mean(0)
    d_mean = f_on[added].astype(float).mean(0)
    assert np.abs(d_mean - target_mean).sum() < 0.5 * np.abs(bg_mean - target_mean).sum()


def test_fast_and_any_size():
    synthetic_video(0)
    t = time.perf_counter()
    synthetic_video(1, height=64, width=96, num_frames=10)
    assert time.perf_counter() - t < 1.0
    v = synthetic_video(2, height=17, width=200, num_frames=2, num_objects=2)
    assert v.load_frames().shape == (2, 17, 200, 3) and v.num_objects == 2


def test_synthetic_videos_sequence():
    vids = SyntheticVideos(3, seed=4, height=32, width=40, num_frames=3)
    assert len(vids) == 3 and vids[1].name == "synthetic-4-00001"
    np.testing.assert_array_equal(vids[2].labels, vids[-1].labels)
    with pytest.raises(IndexError):
        vids[3]


def _image_and_mask():
    v = synthetic_video(11, num_objects=2, distractors=False)
    return v.load_frames([0])[0], v.labels[0]


def test_gcseg_way1_same_background_small_motion():
    img, mask = _image_and_mask()
    clip = static_image_clip(img, mask, seed=0, num_frames=4, way=1)
    frames, labels = clip.load_frames(), clip.labels
    np.testing.assert_array_equal(labels[0], mask)
    np.testing.assert_array_equal(frames[0][mask > 0], img[mask > 0])
    bg = inpaint_background(img, mask > 0)
    for t in range(1, 4):
        both_bg = (labels[t] == 0) & (mask == 0)
        np.testing.assert_array_equal(frames[t][both_bg], bg[both_bg])   # same background
        assert 0.5 < (labels[t] > 0).sum() / (mask > 0).sum() < 1.5       # small change
    assert (labels[3] != labels[0]).any()


def test_gcseg_way2_other_background():
    img, mask = _image_and_mask()
    other = np.full((30, 50, 3), (10, 200, 30), np.uint8)
    clip = static_image_clip(img, mask, seed=1, num_frames=3, way=2, background=other)
    frames, labels = clip.load_frames(), clip.labels
    assert labels[0].any()
    np.testing.assert_array_equal(frames[labels == 0], np.broadcast_to((10, 200, 30),
                                                                       frames[labels == 0].shape))
    with pytest.raises(ValueError, match="background"):
        static_image_clip(img, mask, way=2)
    with pytest.raises(ValueError, match="empty first mask"):
        static_image_clip(img, np.zeros_like(mask))


def test_synthetic_videos_cache_is_bounded_and_transparent():
    kw = dict(height=16, width=24, num_frames=4)
    per_video = 4 * 16 * 24 * 4
    vids = SyntheticVideos(3, seed=1, cache_mb=2.5 * per_video / 2 ** 20, **kw)
    a0, a1 = vids[0], vids[1]
    assert vids[0] is a0 and vids[1] is a1               # cached
    vids[2]                                               # evicts the least recently used (0)
    assert vids[1] is a1 and vids[0] is not a0
    fresh = SyntheticVideos(3, seed=1, cache_mb=0, **kw)
    assert fresh[0] is not fresh[0]
    np.testing.assert_array_equal(fresh[0].load_frames(), a0.load_frames())
    with pytest.raises(ValueError, match="cache_mb"):
        SyntheticVideos(3, seed=1, cache_mb=-1, **kw)
