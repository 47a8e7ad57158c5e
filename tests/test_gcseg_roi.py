"""Pyramid ROI pooling and mask boxes (GCSeg Fig. 3 / Fig. 6) against plain numpy loops."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vosjax.models.roi import box_pool, mask_box, pyramid_roi_pool


def np_box(mask, thr=0.5):
    ys, xs = np.nonzero(mask > thr)
    if len(ys) == 0:
        return None
    h, w = mask.shape
    return (ys.min() / h, (ys.max() + 1) / h, xs.min() / w, (xs.max() + 1) / w)


def np_pyramid(feats, box, grid=3, mode="avg"):
    """Loop reference: region weight of feature pixel (h, w) = area of overlap."""
    hf, wf, c = feats.shape
    if box is None:
        return np.zeros((grid * grid + 1, c), np.float32)
    top, bot, left, right = box
    regions = []
    for i in range(grid):
        for j in range(grid):
            dy, dx = (bot - top) / grid, (right - left) / grid
            regions.append((top + dy * i, top + dy * (i + 1), left + dx * j, left + dx * (j + 1)))
    regions.append((top, bot, left, right))
    out = []
    for (a, b, l, r) in regions:
        num, den, best = np.zeros(c), 0.0, np.full(c, -np.inf)
        for h in range(hf):
            oy = max(0.0, min(h + 1, b * hf) - max(h, a * hf))
            for w in range(wf):
                ox = max(0.0, min(w + 1, r * wf) - max(w, l * wf))
                if oy * ox > 0:
                    num += oy * ox * feats[h, w]
                    den += oy * ox
                    if oy > 1e-4 and ox > 1e-4:
                        best = np.maximum(best, feats[h, w])
        out.append(num / den if mode == "avg" else best)
    return np.stack(out).astype(np.float32)


def make_mask(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), np.float32)
    m[y0:y1, x0:x1] = 1.0
    return m


CASES = {
    "interior": (5, 20, 7, 31),
    "top_left_border": (0, 9, 0, 12),
    "bottom_right_border": (30, 37, 41, 50),
    "whole_image": (0, 37, 0, 50),
    "one_pixel_interior": (17, 18, 23, 24),
    "one_pixel_corner": (36, 37, 49, 50),
    "one_row": (0, 1, 3, 44),
}


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_pyramid_matches_numpy_loop(case, mode):
    h, w = 37, 50                      # stride that does not divide the image: 37/5, 50/7
    feats = np.random.default_rng(1).normal(size=(5, 7, 4)).astype(np.float32)
    mask = make_mask(h, w, *CASES[case])
    box, valid = jax.jit(mask_box)(jnp.asarray(mask))
    assert bool(valid)
    np.testing.assert_allclose(np.asarray(box), np_box(mask), atol=1e-7)
    got = jax.jit(lambda f, b, v: pyramid_roi_pool(f, b, v, mode=mode))(feats, box, valid)
    assert got.shape == (10, 4)
    np.testing.assert_allclose(np.asarray(got), np_pyramid(feats, np_box(mask), mode=mode),
                               rtol=1e-5, atol=1e-5)


def test_soft_mask_box_uses_threshold():
    mask = np.zeros((10, 10), np.float32)
    mask[2:4, 3:6] = 0.9
    mask[7, 8] = 0.3                     # below the 0.5 threshold: ignored
    box, valid = mask_box(jnp.asarray(mask))
    np.testing.assert_allclose(np.asarray(box), [0.2, 0.4, 0.3, 0.6], atol=1e-7)
    box, _ = mask_box(jnp.asarray(mask), threshold=0.2)
    np.testing.assert_allclose(np.asarray(box), [0.2, 0.8, 0.3, 0.9], atol=1e-7)


@pytest.mark.parametrize("mode", ["avg", "max"])
def test_empty_mask_gives_zeros_and_invalid(mode):
    feats = np.random.default_rng(2).normal(size=(4, 6, 3)).astype(np.float32) + 5.0
    box, valid = mask_box(jnp.zeros((32, 48)))
    assert not bool(valid)
    np.testing.assert_array_equal(np.asarray(box), [0, 1, 0, 1])
    out = pyramid_roi_pool(jnp.asarray(feats), box, valid, mode=mode)
    np.testing.assert_array_equal(np.asarray(out), np.zeros((10, 3)))
    np.testing.assert_array_equal(np.asarray(box_pool(jnp.asarray(feats), box, valid)),
                                  np.zeros(3))


def test_pixel_aligned_box_is_plain_mean():
    """Hand check: a box covering feature pixels rows 1-2, cols 2-4 exactly."""
    feats = np.arange(4 * 6 * 2, dtype=np.float32).reshape(4, 6, 2)
    mask = make_mask(32, 48, 8, 24, 16, 40)      # stride 8: rows 1..2, cols 2..4
    box, valid = mask_box(jnp.asarray(mask))
    whole = box_pool(jnp.asarray(feats), box, valid)
    np.testing.assert_allclose(np.asarray(whole), feats[1:3, 2:5].mean((0, 1)), rtol=1e-6)
    whole_max = box_pool(jnp.asarray(feats), box, valid, mode="max")
    np.testing.assert_allclose(np.asarray(whole_max), feats[2, 4], rtol=1e-6)


def test_vmap_over_batch_and_grid_size():
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(3, 5, 7, 2)).astype(np.float32)
    masks = np.stack([make_mask(37, 50, *CASES[k]) for k in ("interior", "one_row",
                                                               "one_pixel_corner")])
    masks[2] = 0.0                                                 # one empty mask in the batch
    boxes, valid = jax.vmap(mask_box)(jnp.asarray(masks))
    out = jax.vmap(lambda f, b, v: pyramid_roi_pool(f, b, v, grid=2))(feats, boxes, valid)
    assert out.shape == (3, 5, 2)
    for i in range(3):
        np.testing.assert_allclose(np.asarray(out[i]), np_pyramid(feats[i], np_box(masks[i]),
                                                                  grid=2), rtol=1e-5, atol=1e-5)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="mask must be"):
        mask_box(jnp.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="mode="):
        pyramid_roi_pool(jnp.zeros((2, 2, 1)), jnp.array([0, 1, 0, 1.0]), True, mode="median")
    with pytest.raises(ValueError, match="feats must be"):
        pyramid_roi_pool(jnp.zeros((2, 2)), jnp.array([0, 1, 0, 1.0]), True)


@pytest.mark.parametrize("hw,out", [((32, 48), (4, 6)), ((37, 50), (5, 7)), ((5, 7), (5, 7))])
def test_area_downsample_matches_numpy_loop(hw, out):
    from vosjax.models.roi import area_downsample
    mask = (np.random.default_rng(4).uniform(size=(1,) + hw) > 0.6).astype(np.float32)
    h, w = hw
    ref = np.zeros(out, np.float32)
    for i in range(out[0]):
        for j in range(out[1]):
            num = den = 0.0
            for y in range(h):
                oy = max(0.0, min((y + 1) * out[0] / h, i + 1) - max(y * out[0] / h, i))
                for x in range(w):
                    ox = max(0.0, min((x + 1) * out[1] / w, j + 1) - max(x * out[1] / w, j))
                    num += oy * ox * mask[0, y, x]
                    den += oy * ox
            ref[i, j] = num / den
    got = np.asarray(area_downsample(jnp.asarray(mask), out))[0]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
