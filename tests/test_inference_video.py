"""Raw-video wrapper (resize/pad, non-contiguous ids, late objects, back to the original size)
and the cycle-ERF overlay command."""
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from vosjax import erf as erf_cli
from vosjax.data.masks import write_palette_png
from vosjax.data.transforms import resize_pad_labels, unpad_resize_labels
from vosjax.inference.options import STMOptions
from vosjax.inference.video import objects_from_annotations, segment_video

T, H, W = 4, 24, 40          # fitted into 16x32: resized to 16x27 and padded


def _raw_video():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(T, H, W, 3), dtype=np.uint8)
    ann0 = np.zeros((H, W), np.uint8)
    ann0[3:12, 4:18] = 3
    ann2 = np.zeros((H, W), np.uint8)
    ann2[14:22, 22:36] = 7
    ann2[0, 0] = 255                     # ignore label: not an object
    return frames, {0: ann0, 2: ann2}


def _roundtrip(labels):
    small, info = resize_pad_labels(labels, (16, 32))
    return unpad_resize_labels(small, info)


def test_objects_from_annotations():
    _, ann = _raw_video()
    ids, starts, masks = objects_from_annotations(ann, T)
    assert ids == (3, 7) and starts.tolist() == [0, 2]
    np.testing.assert_array_equal(masks[0], ann[0] == 3)
    np.testing.assert_array_equal(masks[1], ann[2] == 7)
    with pytest.raises(ValueError, match="empty"):
        objects_from_annotations({}, T)
    with pytest.raises(ValueError, match="outside"):
        objects_from_annotations({T: ann[0]}, T)
    with pytest.raises(ValueError, match="no object"):
        objects_from_annotations({0: np.zeros((H, W), np.uint8)}, T)
    with pytest.raises(ValueError, match="one size"):
        objects_from_annotations({0: ann[0], 2: ann[2][:5]}, T)


def test_segment_video_ids_sizes_and_late_object(tiny):
    model, v = tiny
    frames, ann = _raw_video()
    res = segment_video(model, v, frames, ann, STMOptions(size=(16, 32)))
    assert res.labels.shape == (T, H, W) and res.labels.dtype == np.uint8
    assert res.ids == (3, 7) and res.probs.shape == (T, 3, 16, 32)
    assert set(np.unique(res.labels)) <= {0, 3, 7}
    # Frame 0 is the given annotation, resized there and back (nearest both ways).
    np.testing.assert_array_equal(res.labels[0], _roundtrip(ann[0]))
    assert 7 not in res.labels[:2]
    # Frame 2: object 7's given mask is pasted over the prediction.
    pasted = _roundtrip((ann[2] == 7).astype(np.uint8)) == 1
    np.testing.assert_array_equal(res.labels[2] == 7, pasted)
    bil = segment_video(model, v, frames, ann, STMOptions(size=(16, 32), upsample="bilinear"))
    assert bil.labels.shape == (T, H, W)
    np.testing.assert_allclose(np.asarray(bil.probs), np.asarray(res.probs), atol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        segment_video(model, v, frames.astype(np.float32), ann, STMOptions(size=(16, 32)))
    with pytest.raises(ValueError, match="upsample"):
        segment_video(model, v, frames, ann, STMOptions(size=(16, 32), upsample="cubic"))


def test_stm_family_memorizes_the_whole_letterboxed_canvas(tiny):
    """The ``stm`` family memorizes its predictions over the padding too (STM-Training's
    loop); only ``stm_original`` zeroes them outside the image (a content map)."""
    import functools

    import jax

    from vosjax.data.transforms import content_mask, fit_info
    from vosjax.inference.propagation import propagate
    from vosjax.inference.resize import fit_frames

    model, v = tiny
    frames, ann = _raw_video()
    info = fit_info((H, W), (16, 32))
    assert info.resized_hw != (16, 32)                      # letterboxed
    fit = jax.jit(functools.partial(fit_frames, info=info, size=(16, 32), pad="mean"))
    x = [fit(f) for f in frames]
    masks = resize_pad_labels(np.stack([ann[0] == 3, ann[2] == 7]).astype(np.uint8),
                              (16, 32))[0].astype(np.float32)
    kw = dict(start_frames=np.array([0, 2]))
    res = segment_video(model, v, frames, ann, STMOptions(size=(16, 32)))
    whole = propagate(model, v, x, masks, **kw).probs
    boxed = propagate(model, v, x, masks, content=content_mask(info, (16, 32)), **kw).probs
    np.testing.assert_array_equal(res.probs, whole)
    assert np.abs(boxed - whole).max() > 1e-4


def _write_video(root, t=3, h=16, w=32):
    frames_dir = root / "frames"
    frames_dir.mkdir()
    rng = np.random.default_rng(1)
    for i in range(t):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
            frames_dir / f"{i:05d}.jpg")
    mask = np.zeros((h, w), np.uint8)
    mask[4:12, 6:20] = 2
    write_palette_png(root / "00000.png", mask)
    return frames_dir, root / "00000.png"


def test_erf_cli_writes_overlays(tmp_path):
    frames_dir, mask = _write_video(tmp_path)
    out = tmp_path / "erf"
    rc = erf_cli.main(["--frames", str(frames_dir), "--mask", str(mask), "--out", str(out),
                       "--random_weights", "--arch", "resnet18", "--size", "16x32",
                       "--n_iter", "2", "--ref_frames", "1,2"])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["erf.npz", "erf_00001_obj2.png",
                                                     "erf_00002_obj2.png"]
    data = np.load(out / "erf.npz")
    assert data["erf"].shape == (2, 1, 16, 32) and data["erf"].min() >= 0
    assert data["erf"].max() > 0
    assert data["ref_frames"].tolist() == [1, 2] and data["ids"].tolist() == [2]
    assert Image.open(out / "erf_00001_obj2.png").size == (32, 16)
    # An existing output is not overwritten without --overwrite; nothing half-written appears.
    with pytest.raises(SystemExit, match="not empty"):
        erf_cli.main(["--frames", str(frames_dir), "--mask", str(mask), "--out", str(out),
                      "--random_weights", "--size", "16x32"])
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_erf_cli_bad_inputs(tmp_path):
    frames_dir, mask = _write_video(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        erf_cli.main(["--frames", str(tmp_path / "nowhere"), "--mask", str(mask),
                      "--out", str(tmp_path / "o"), "--random_weights"])
    with pytest.raises(SystemExit, match="ref_frames"):
        erf_cli.main(["--frames", str(frames_dir), "--mask", str(mask),
                      "--out", str(tmp_path / "o"), "--random_weights", "--ref_frames", "9"])
    (frames_dir / "00003.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="00003.jpg"):
        erf_cli.read_frames(str(frames_dir))
    assert not (tmp_path / "o").exists()
    h = erf_cli.heat_overlay(np.zeros((2, 2, 3), np.uint8), jnp.array([[0.0, 1.0], [0.5, 0.0]]))
    assert h.dtype == np.uint8 and h[0, 1, 0] > h[0, 1, 2]      # the maximum is red
