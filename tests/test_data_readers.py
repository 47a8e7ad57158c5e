"""DAVIS / YouTube-VOS / folder readers, the Video container, writing predictions, and every
bad-input error naming its file."""
import os

import numpy as np
import pytest
from PIL import Image

from data_layouts import H, W, frame_image, make_davis2017, make_youtube_vos
from vosjax.data import masks
from vosjax.data.davis import DavisDataset, davis_sequences, load_davis_video
from vosjax.data.folder import load_folder_video
from vosjax.data.video import video_from_arrays, write_predictions
from vosjax.data.youtube_vos import YouTubeVOSDataset

# --- DAVIS ------------------------------------------------------------------------------------

def test_davis2017_layout(tmp_path):
    want = make_davis2017(tmp_path)
    ds = DavisDataset(tmp_path, "2017", "val")
    assert ds.names == ["alpha", "beta"] and len(ds) == 2
    v = ds["alpha"]
    assert v.num_frames == 4 and v.hw == (H, W) and v.object_ids == (1, 2)
    assert v.frame_names == ("00000", "00001", "00002", "00003")
    np.testing.assert_array_equal(v.labels, want["alpha"])
    np.testing.assert_array_equal(v.first_masks[0], want["alpha"][0])
    f = v.load_frames([2])
    ref = np.asarray(Image.open(tmp_path / "JPEGImages/480p/alpha/00002.jpg"))
    np.testing.assert_array_equal(f[0], ref)
    # JPEG round trip is close to what was written.
    assert np.abs(f[0].astype(int) - frame_image(2)).mean() < 20
    assert ds[1].object_ids == (1,)


def test_davis2016_mini_real_data(davis_mini):
    ds = DavisDataset(davis_mini, "2016", "val")
    assert ds.names == ["blackswan", "car-shadow", "motocross-jump"]
    v = ds["car-shadow"]
    assert v.num_frames == 40 and v.hw == (480, 854) and v.num_objects == 1
    lab = v.load_labels([0, 39])
    raw = np.asarray(Image.open(davis_mini / "Annotations/480p/car-shadow/00039.png"))
    assert set(np.unique(raw)) == {0, 255}
    np.testing.assert_array_equal(lab[1], (raw > 0).astype(np.uint8))
    assert 0.01 < lab.mean() < 0.5
    frames = v.load_frames([0, 5])
    assert frames.shape == (2, 480, 854, 3) and frames.dtype == np.uint8


def test_full_resolution_layout(tmp_path):
    make_davis2017(tmp_path)
    os.rename(tmp_path / "JPEGImages/480p", tmp_path / "JPEGImages/Full-Resolution")
    os.rename(tmp_path / "Annotations/480p", tmp_path / "Annotations/Full-Resolution")
    v = DavisDataset(tmp_path, "2017", "val", "Full-Resolution")[0]
    assert v.num_frames == 4 and v.object_ids == (1, 2)
    with pytest.raises(ValueError, match="resolution"):
        load_davis_video(tmp_path, "alpha", "1080p")


def test_davis2016_on_2017_annotations_merges_objects(tmp_path):
    want = make_davis2017(tmp_path, year="2016")
    v = DavisDataset(tmp_path, "2016", "val")["alpha"]
    assert v.object_ids == (1,)
    np.testing.assert_array_equal(v.labels, (want["alpha"] > 0).astype(np.uint8))


# --- YouTube-VOS ------------------------------------------------------------------------------

def test_youtube_vos_sparse_noncontiguous_ids(tmp_path):
    orig = make_youtube_vos(tmp_path)
    ds = YouTubeVOSDataset(tmp_path, "train")
    assert ds.names == ["vid1"]
    v = ds[0]
    assert v.object_ids == (2, 7) and v.object_first == (0, 2)
    assert v.frame_names == ("00000", "00005", "00010", "00015")
    remapped = np.select([orig == 2, orig == 7], [1, 2], 0)
    np.testing.assert_array_equal(v.labels, remapped)
    fm = v.first_masks
    assert sorted(fm) == [0, 2]
    np.testing.assert_array_equal(fm[0], remapped[0])
    np.testing.assert_array_equal(fm[2], np.where(remapped[2] == 2, 2, 0))  # only the new one
    np.testing.assert_array_equal(v.to_original_ids(remapped), orig)


def test_youtube_vos_valid_only_first_annotations(tmp_path):
    orig = make_youtube_vos(tmp_path, split="valid")
    ad = tmp_path / "valid/Annotations/vid1"
    for n in ("00005", "00015"):
        os.remove(ad / f"{n}.png")
    # Frame 00010's annotation of a valid split holds only the newly appearing object.
    masks.write_palette_png(ad / "00010.png", np.where(orig[2] == 7, 7, 0))
    v = YouTubeVOSDataset(tmp_path, "valid")[0]
    assert v.annotated_frames == (0, 2) and v.labels is None
    np.testing.assert_array_equal(v.first_masks[2], np.where(orig[2] == 7, 2, 0))
    with pytest.raises(ValueError, match="no ground-truth"):
        v.load_labels([1])


def test_write_predictions_restores_original_ids(tmp_path):
    orig = make_youtube_vos(tmp_path / "yt")
    v = YouTubeVOSDataset(tmp_path / "yt", "train")[0]
    out = write_predictions(tmp_path / "out", v, v.labels)
    assert sorted(os.listdir(out)) == [f"{n}.png" for n in v.frame_names]
    for t, n in enumerate(v.frame_names):
        im = Image.open(os.path.join(out, f"{n}.png"))
        assert im.mode == "P"
        assert im.getpalette()[:9] == masks.davis_palette()[:3].reshape(-1).tolist()
        np.testing.assert_array_equal(np.asarray(im), orig[t])
    # Overwrite in place; no temp folders left behind.
    write_predictions(tmp_path / "out", v, np.zeros_like(v.labels))
    assert os.listdir(tmp_path / "out") == ["vid1"]
    assert not np.asarray(Image.open(os.path.join(out, "00000.png"))).any()


# --- plain folder -----------------------------------------------------------------------------

def test_folder_video(tmp_path):
    fd = tmp_path / "myvideo"
    fd.mkdir()
    for t in range(3):
        Image.fromarray(frame_image(t)).save(fd / f"img_{t:03d}.png")
    lab = np.zeros((H, W), np.uint8)
    lab[3:9, 4:12] = 5
    lab[12:20, 20:28] = 9
    masks.write_palette_png(tmp_path / "img_001.png", lab)
    v = load_folder_video(fd, tmp_path / "img_001.png")
    assert v.name == "myvideo" and v.num_frames == 3 and v.object_ids == (5, 9)
    assert v.object_first == (1, 1) and v.annotated_frames == (1,)
    np.testing.assert_array_equal(v.load_frames([2])[0], frame_image(2))  # PNG: lossless
    np.testing.assert_array_equal(v.first_masks[1], np.select([lab == 5, lab == 9], [1, 2]))
    v0 = load_folder_video(fd, tmp_path / "img_001.png", name="x", mask_frame=0)
    assert v0.object_first == (0, 0) and v0.name == "x"


def test_video_from_arrays_objects_appearing_later():
    frames = np.zeros((3, 4, 5, 3), np.uint8)
    labels = np.zeros((3, 4, 5), np.uint8)
    labels[0, 0, 0] = 4
    labels[2, 1, 1] = 6
    v = video_from_arrays("v", frames, labels)
    assert v.object_ids == (4, 6) and v.object_first == (0, 2)
    assert v.labels[2, 1, 1] == 2


# --- bad input --------------------------------------------------------------------------------

def test_missing_split_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ImageSets/2017/train\.txt"):
        davis_sequences(tmp_path, "2017", "train")
    with pytest.raises(FileNotFoundError, match=r"valid/meta\.json"):
        YouTubeVOSDataset(tmp_path, "valid")


def test_missing_frame_gap(tmp_path):
    make_davis2017(tmp_path)
    os.remove(tmp_path / "JPEGImages/480p/alpha/00002.jpg")
    os.remove(tmp_path / "Annotations/480p/alpha/00002.png")
    with pytest.raises(FileNotFoundError, match=r"alpha/00002\.jpg: missing frame"):
        DavisDataset(tmp_path)["alpha"]


def test_missing_frame_for_annotation(tmp_path):
    make_davis2017(tmp_path)
    os.remove(tmp_path / "JPEGImages/480p/beta/00003.jpg")
    with pytest.raises(FileNotFoundError, match=r"beta/00003\.\*: missing frame"):
        DavisDataset(tmp_path)["beta"]


def test_missing_frame_youtube_meta(tmp_path):
    make_youtube_vos(tmp_path)
    os.remove(tmp_path / "train/JPEGImages/vid1/00010.jpg")
    os.remove(tmp_path / "train/Annotations/vid1/00010.png")
    with pytest.raises(FileNotFoundError, match=r"vid1/00010\.jpg: missing frame"):
        YouTubeVOSDataset(tmp_path)[0]


def test_missing_frames_folder(tmp_path):
    make_davis2017(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"480p/gamma: frames folder not found"):
        load_davis_video(tmp_path, "gamma")


def test_annotation_size_differs(tmp_path):
    make_davis2017(tmp_path)
    bad = tmp_path / "Annotations/480p/alpha/00002.png"
    masks.write_palette_png(bad, np.ones((H + 2, W), np.uint8))
    with pytest.raises(ValueError, match=r"alpha/00002\.png: annotation size"):
        DavisDataset(tmp_path)["alpha"]
    v = DavisDataset(tmp_path, validate=False)["alpha"]        # lazily, on decoding
    with pytest.raises(ValueError, match=r"alpha/00002\.png: annotation size"):
        v.load_labels([2])


def test_unreadable_image(tmp_path):
    make_davis2017(tmp_path)
    bad = tmp_path / "JPEGImages/480p/alpha/00001.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(ValueError, match=r"alpha/00001\.jpg: unreadable image"):
        DavisDataset(tmp_path)["alpha"]
    v = DavisDataset(tmp_path, validate=False)["alpha"]
    with pytest.raises(ValueError, match=r"alpha/00001\.jpg: unreadable image"):
        v.load_frames([0, 1])
    (tmp_path / "Annotations/480p/beta/00002.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match=r"beta/00002\.png: unreadable"):
        DavisDataset(tmp_path)["beta"]


def test_empty_first_mask(tmp_path):
    make_davis2017(tmp_path)
    masks.write_palette_png(tmp_path / "Annotations/480p/beta/00000.png",
                            np.zeros((H, W), np.uint8))
    with pytest.raises(ValueError, match=r"beta/00000\.png: empty first mask"):
        DavisDataset(tmp_path)["beta"]
    # YouTube-VOS: an object listed in meta.json but absent from its first annotation.
    orig = make_youtube_vos(tmp_path / "yt")
    masks.write_palette_png(tmp_path / "yt/train/Annotations/vid1/00010.png",
                            np.where(orig[2] == 7, 0, orig[2]))
    with pytest.raises(ValueError, match=r"vid1/00010\.png: empty first mask .*\[7\]"):
        YouTubeVOSDataset(tmp_path / "yt")[0].first_masks


def test_more_objects_than_slots(tmp_path):
    make_davis2017(tmp_path)
    with pytest.raises(ValueError, match=r"alpha/00000\.png: 2 objects exceed the configured 1"):
        DavisDataset(tmp_path, max_objects=1)["alpha"]
    assert DavisDataset(tmp_path, max_objects=1)["beta"].num_objects == 1
    with pytest.raises(ValueError, match="3 objects exceed"):
        lab = np.zeros((1, 4, 4), np.uint8)
        lab[0, 0, :3] = [1, 2, 3]
        video_from_arrays("v", np.zeros((1, 4, 4, 3), np.uint8), lab, max_objects=2)


def test_apply_lut_equals_take_and_checks_its_inputs():
    from vosjax.data.masks import apply_lut

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 256, (3, 17, 29), dtype=np.uint8)
    lut = rng.integers(0, 256, 256, dtype=np.uint8)
    out = apply_lut(lut, labels)
    np.testing.assert_array_equal(out, np.take(lut, labels))
    assert out.shape == labels.shape and out.flags.writeable
    np.testing.assert_array_equal(apply_lut(lut, labels[:, ::2, 1:]), lut[labels[:, ::2, 1:]])
    with pytest.raises(ValueError, match="uint8"):
        apply_lut(lut, labels.astype(np.int32))
    with pytest.raises(ValueError, match=r"\[256\]"):
        apply_lut(lut[:10], labels)
