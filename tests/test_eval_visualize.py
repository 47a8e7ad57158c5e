"""Overlays, GIFs and the bar chart are produced with the expected pixels."""
import numpy as np
import pytest
from PIL import Image

from vosjax.evaluation import visualize


def test_overlay_pixels():
    image = np.full((8, 10, 3), 100, np.uint8)
    labels = np.zeros((8, 10), np.uint8)
    labels[2:6, 3:8] = 1  # palette colour of id 1: (128, 0, 0)
    out = visualize.overlay(image, labels, alpha=0.5)
    assert out.dtype == np.uint8 and out.shape == (8, 10, 3)
    np.testing.assert_array_equal(out[0, 0], [100, 100, 100])   # background untouched
    np.testing.assert_array_equal(out[3, 5], [114, 50, 50])     # interior: half blend
    np.testing.assert_array_equal(out[2, 5], [128, 0, 0])       # outline: full colour
    no_contour = visualize.overlay(image, labels, alpha=0.5, contour=False)
    np.testing.assert_array_equal(no_contour[2, 5], [114, 50, 50])
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        visualize.overlay(image, labels[:4])


def test_overlay_pngs_and_gif(tmp_path):
    frames = [np.full((12, 16, 3), 40 * t, np.uint8) for t in range(3)]
    labels = [np.zeros((12, 16), np.uint8) for _ in range(3)]
    for t, lab in enumerate(labels):
        lab[2:6, 2 + 3 * t:6 + 3 * t] = t + 1
    gif = tmp_path / "seq.gif"
    paths = visualize.write_overlays(tmp_path / "ov", frames, labels, ["00000", "00001", "00002"],
                                     gif_path=gif)
    assert [p.rsplit("/", 1)[1] for p in paths] == ["00000.png", "00001.png", "00002.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(paths[1])),
                                  visualize.overlay(frames[1], labels[1]))
    anim = Image.open(gif)
    assert anim.format == "GIF" and anim.n_frames == 3 and anim.size == (16, 12)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ov", "seq.gif"]  # no temp files


def test_bar_chart(tmp_path):
    rows = [("blackswan_1", 0.9, 0.7), ("car_1", 0.5, 0.3), ("car_2", 0.0, 0.0)]
    path = tmp_path / "chart.png"
    visualize.jf_bar_chart(rows, path, bar_width=18)
    img = np.asarray(Image.open(path).convert("RGB"))
    # Geometry of the chart: plot 300 px high from y = 40, first bar at x = 50.
    base, left = 40 + 300, 50
    blue = [31, 119, 180]
    np.testing.assert_array_equal(img[base - 10, left + 2], blue)           # J&F 0.8 bar
    np.testing.assert_array_equal(img[base - 230, left + 2], blue)          # below 0.8 * 300
    assert tuple(img[base - 250, left + 2]) != tuple(blue)                  # above the bar
    assert tuple(img[base - 10, left + 24 + 2]) == tuple(blue)              # car_1 J&F 0.4
    assert tuple(img[base - 130, left + 24 + 2]) != tuple(blue)
    with pytest.raises(ValueError, match="no rows"):
        visualize.jf_bar_chart([], tmp_path / "empty.png")
