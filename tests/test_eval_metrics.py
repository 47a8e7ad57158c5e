"""J and F against hand-computed cases, and the bit-packed path against the dense one."""
import numpy as np
import pytest

from vosjax.data.synthetic import blob_video, perturb_video
from vosjax.evaluation import bitplanes, metrics


def _both(gt, pred, th=metrics.BOUND_TH):
    """(J, F) of one frame from the dense definitions and from the packed path."""
    j, f = metrics.region_similarity(gt, pred), metrics.boundary_f_measure(gt, pred, th)
    stack = lambda m: np.stack([m] * 3).astype(np.uint8)  # noqa: E731
    jp, fp = bitplanes.sequence_scores(stack(gt), stack(pred), 1, th)
    np.testing.assert_array_equal(jp[0], [j] * 3)
    np.testing.assert_array_equal(fp[0], [f] * 3)
    return float(j), float(f)


def test_tolerance_and_disk():
    assert metrics.boundary_tolerance(480, 854) == 8  # ceil(0.008 * 979.8)
    assert metrics.boundary_tolerance(5, 7) == 1
    assert metrics.boundary_tolerance(480, 854, bound_th=3) == 3
    with pytest.raises(ValueError, match="whole number"):
        metrics.boundary_tolerance(10, 10, bound_th=2.5)
    # r = 8: rows of the disk {dx^2 + dy^2 <= 64}.
    np.testing.assert_array_equal(metrics.disk_half_widths(8)[8:],
                                  [8, 7, 7, 7, 6, 6, 5, 3, 0])


def test_empty_masks():
    z = np.zeros((9, 11), bool)
    one = z.copy()
    one[3:6, 4:8] = True
    assert _both(z, z) == (1.0, 1.0)          # both empty: J = 1, P = R = 1
    assert _both(one, z) == (0.0, 0.0)        # missed object: P = 1, R = 0
    assert _both(z, one) == (0.0, 0.0)        # spurious object: P = 0, R = 1
    assert _both(one, one) == (1.0, 1.0)


def test_boundary_map_edges_odd_size():
    # 5 x 7: a pixel in the bottom-right corner; the corner itself is never a boundary.
    m = np.zeros((5, 7), bool)
    m[4, 6] = True
    assert sorted(map(tuple, np.argwhere(metrics.boundary_map(m)))) == [(3, 5), (3, 6), (4, 5)]
    # The last column filled: its left neighbour column is the boundary, itself is not.
    m = np.zeros((5, 7), bool)
    m[:, 6] = True
    expect = np.zeros((5, 7), bool)
    expect[:, 5] = True
    np.testing.assert_array_equal(metrics.boundary_map(m), expect)
    # A full image has no boundary at all.
    assert not metrics.boundary_map(np.ones((5, 7), bool)).any()


def test_one_pixel_object():
    # 10 x 10: tolerance ceil(0.008 * 14.1) = 1. The boundary of pixel (5, 5) is the 2x2
    # square rows 4..5, cols 4..5.
    gt = np.zeros((10, 10), bool)
    gt[5, 5] = True
    b = np.zeros((10, 10), bool)
    b[4:6, 4:6] = True
    np.testing.assert_array_equal(metrics.boundary_map(gt), b)
    assert _both(gt, gt) == (1.0, 1.0)
    shifted = lambda d: np.roll(gt, d, axis=1)  # noqa: E731
    assert _both(gt, shifted(1)) == (0.0, 1.0)   # boundaries 1 px apart: all matched
    assert _both(gt, shifted(2)) == (0.0, 0.5)   # half of each boundary within 1 px
    assert _both(gt, shifted(3)) == (0.0, 0.0)   # 2 px apart: nothing matched


def test_shift_just_inside_and_outside_tolerance():
    # 480 x 854 (tolerance 8 px): a 100 x 200 rectangle shifted right.
    gt = np.zeros((480, 854), bool)
    gt[100:200, 100:300] = True
    j8, f8 = _both(gt, np.roll(gt, 8, axis=1))
    assert j8 == pytest.approx(100 * 192 / (100 * 208))
    assert f8 == 1.0  # every boundary pixel within 8 px
    j9, f9 = _both(gt, np.roll(gt, 9, axis=1))
    assert j9 == pytest.approx(100 * 191 / (100 * 209))
    # Boundary rings of 600 px; unmatched predicted pixels: 2 corners + 83 on the left side
    # (more than 8 px from the top and bottom) + 99 on the right side; the same for the
    # ground truth by symmetry: P = R = F = 416 / 600.
    assert f9 == pytest.approx(416 / 600, abs=1e-15)


def test_diagonal_match_uses_the_disk():
    # Single pixels offset diagonally around the tolerance (5 px): F must equal a brute-force
    # count of boundary pixels with a partner at squared distance <= 25.
    gt = np.zeros((40, 40), bool)
    gt[10, 10] = True
    for dy, dx in ((3, 4), (4, 4), (4, 5), (2, 6)):
        pred = np.zeros_like(gt)
        pred[10 + dy, 10 + dx] = True
        j, f = _both(gt, pred, th=5)
        gpts = np.argwhere(metrics.boundary_map(gt))
        ppts = np.argwhere(metrics.boundary_map(pred))
        d2 = ((ppts[:, None, :] - gpts[None, :, :]) ** 2).sum(-1)
        precision = (d2.min(1) <= 25).mean()
        recall = (d2.min(0) <= 25).mean()
        expect = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
        assert f == pytest.approx(expect, abs=1e-15)
        assert j == 0.0


@pytest.mark.parametrize("shape", [(1, 5), (2, 2), (37, 91), (64, 128), (65, 63), (33, 200)])
def test_packed_equals_dense_on_random_videos(shape):
    rng = np.random.default_rng(sum(shape))
    gt = blob_video(rng, 7, 3, *shape)
    pred = perturb_video(rng, gt, 3, max_shift=6, drop_prob=0.2, spurious_prob=0.5)
    noise = (rng.random(gt.shape) < 0.05) * rng.integers(0, 4, gt.shape)
    pred = np.where(noise > 0, noise, pred).astype(np.uint8)
    for th in (metrics.BOUND_TH, 0.05, 3):
        # chunk=2 crops frames in groups: exercises per-chunk extents.
        j, f = bitplanes.sequence_scores(gt, pred, 3, th, chunk=2)
        for k in range(1, 4):
            np.testing.assert_array_equal(j[k - 1], metrics.region_similarity(gt == k, pred == k))
            np.testing.assert_array_equal(
                f[k - 1], metrics.boundary_f_measure(gt == k, pred == k, th))


def test_dilate_disk_matches_brute_force():
    rng = np.random.default_rng(0)
    m = rng.random((23, 31)) < 0.02
    r = 4
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = yy ** 2 + xx ** 2 <= r * r
    expect = np.zeros_like(m)
    for y, x in np.argwhere(m):
        for dy, dx in np.argwhere(disk) - r:
            if 0 <= y + dy < 23 and 0 <= x + dx < 31:
                expect[y + dy, x + dx] = True
    np.testing.assert_array_equal(metrics.dilate_disk(m, r), expect)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.region_similarity(np.zeros((3, 4)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="must be equal"):
        bitplanes.sequence_scores(np.zeros((2, 3, 4), np.uint8), np.zeros((2, 4, 3), np.uint8), 1)
