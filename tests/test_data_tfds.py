"""TFDS without TensorFlow: our array_record builders round trip, random access decodes only
the frames a clip uses, host splits, and the stock `davis` builder adapter (mock_data)."""
import os

import numpy as np
import pytest

# A required dependency: imported for real, so a broken install fails these tests.
import tensorflow_datasets as tfds

from data_layouts import make_davis2017, make_youtube_vos
from vosjax.data import images
from vosjax.data import tfds_builders as tb
from vosjax.data.davis import DavisDataset
from vosjax.data.sampler import ClipSampler, SamplerConfig
from vosjax.data.synthetic import SyntheticVideos
from vosjax.data.youtube_vos import YouTubeVOSDataset

tfds.disable_progress_bar()


def _same_video(a, b):
    assert (a.name, a.frame_names, a.hw) == (b.name, b.frame_names, b.hw)
    assert (a.object_ids, a.object_first, a.annotated_frames) == \
        (b.object_ids, b.object_first, b.annotated_frames)
    np.testing.assert_array_equal(a.load_frames(), b.load_frames())
    np.testing.assert_array_equal(a.load_labels(), b.load_labels())


def test_synthetic_builder_round_trip(tmp_path):
    kw = dict(height=24, width=32, num_frames=4)
    tb.SyntheticVos(num_videos={"train": 3, "val": 2}, seed=5, video_kwargs=kw,
                    data_dir=str(tmp_path)).download_and_prepare()
    d = tmp_path / "synthetic_vos/1.0.0"
    assert any(f.endswith(".array_record-00000-of-00001") for f in os.listdir(d))
    train = tb.load_videos(d, "train")
    assert len(train) == 3 and len(tb.load_videos(d, "val")) == 2
    ref = {v.name: v for v in SyntheticVideos(3, seed=(5, 0), **kw)}
    for i in range(3):
        _same_video(train[i], ref[train[i].name])   # PNG-encoded: lossless


def test_davis_folder_builder_round_trip(tmp_path):
    make_davis2017(tmp_path / "DAVIS")
    tb.DavisFolder(root=str(tmp_path / "DAVIS"), config="2017-480p",
                   data_dir=str(tmp_path / "tfds")).download_and_prepare()
    vids = tb.load_videos(tmp_path / "tfds/davis_folder/2017-480p/1.0.0", "val")
    src = DavisDataset(tmp_path / "DAVIS", "2017", "val")
    assert sorted(v.name for v in vids) == ["alpha", "beta"]
    for v in vids:
        _same_video(v, src[v.name])        # original JPEG bytes: identical decode
        with open(src[v.name].frame_sources[1], "rb") as f:
            assert v.frame_sources[1] == f.read()


def test_davis_folder_builder_davis2016_mini(davis_mini, tmp_path):
    tb.DavisFolder(root=str(davis_mini), config="2016-480p",
                   data_dir=str(tmp_path)).download_and_prepare()
    vids = tb.load_videos(tmp_path / "davis_folder/2016-480p/1.0.0", "val")
    assert len(vids) == 3
    v = next(v for v in vids if v.name == "blackswan")
    src = DavisDataset(davis_mini, "2016", "val")["blackswan"]
    assert v.binary and v.num_frames == 50
    np.testing.assert_array_equal(v.load_labels([0, 49]), src.load_labels([0, 49]))
    np.testing.assert_array_equal(v.load_frames([7]), src.load_frames([7]))


def test_youtube_vos_builder_round_trip(tmp_path):
    make_youtube_vos(tmp_path / "yt")
    tb.YoutubeVosFolder(root=str(tmp_path / "yt"), data_dir=str(tmp_path / "tfds")) \
        .download_and_prepare()
    (v,) = tb.load_videos(tmp_path / "tfds/youtube_vos_folder/1.0.0", "train")
    _same_video(v, YouTubeVOSDataset(tmp_path / "yt")[0])
    assert v.object_ids == (2, 7) and v.object_first == (0, 2)


def test_sampler_decodes_only_clip_frames(tmp_path, monkeypatch):
    kw = dict(height=24, width=32, num_frames=30)
    tb.SyntheticVos(num_videos={"train": 2}, seed=1, video_kwargs=kw,
                    data_dir=str(tmp_path)).download_and_prepare()
    vids = tb.load_videos(tmp_path / "synthetic_vos/1.0.0", "train")
    calls = []
    real = images.open_rgb          # every decode goes through it (decode_rgb included)
    monkeypatch.setattr(images, "open_rgb", lambda src, name=None: calls.append(1) or
                        real(src, name))
    s = ClipSampler(vids, SamplerConfig(size=(24, 32)), seed=0, global_batch_size=2,
                    process_index=0, process_count=1)
    b = s.batch(0).arrays
    assert b["frames"].shape == (2, 3, 24, 32, 3)
    assert len(calls) == 6                     # 2 clips x 3 frames, of 2 x 30 stored


def test_host_split_is_disjoint_and_covering(tmp_path):
    tb.SyntheticVos(num_videos={"train": 5}, seed=2,
                    video_kwargs=dict(height=16, width=16, num_frames=2),
                    data_dir=str(tmp_path)).download_and_prepare()
    d = tmp_path / "synthetic_vos/1.0.0"
    names = [[v.name for v in tb.load_videos(d, tb.host_split("train", p, 2))]
             for p in range(2)]
    assert not set(names[0]) & set(names[1])
    assert sorted(names[0] + names[1]) == sorted(v.name for v in tb.load_videos(d, "train"))


def _davis_example(name, t=3, h=12, w=16):
    segs = np.zeros((t, h, w, 1), np.uint8)
    segs[:, 2:6, 3:9] = 1
    segs[1:, 7:11, 10:15] = 2
    frames = np.random.default_rng(0).integers(0, 256, (t, h, w, 3), np.uint8)
    return {"video": {"frames": frames, "segmentations": segs},
            "metadata": {"num_frames": np.int64(t), "video_name": name}}


def test_stock_davis_adapter_with_mock_data():
    examples = [_davis_example("bear"), _davis_example("camel", t=4)]
    with tfds.testing.mock_data(num_examples=2,
                                as_data_source_fn=lambda *a, **k: examples):
        vids = tb.tfds_davis_videos("480p", "validation")
    assert len(vids) == 2
    v = vids[1]
    assert v.name == "camel" and v.num_frames == 4 and v.object_ids == (1, 2)
    assert v.object_first == (0, 1)
    np.testing.assert_array_equal(v.labels, examples[1]["video"]["segmentations"][..., 0])
    np.testing.assert_array_equal(v.load_frames([2]), examples[1]["video"]["frames"][2:3])
    with pytest.raises(ValueError, match="full_resolution"):
        tb.tfds_davis_videos("1080p")


def test_stock_davis_adapter_random_mock_rejects_mismatched_sizes():
    # The default mock draws frames and segmentations of unrelated random shapes.
    with tfds.testing.mock_data(num_examples=2):
        vids = tb.tfds_davis_videos("full_resolution", "train")
        assert len(vids) == 2
        with pytest.raises(ValueError, match="annotation size != frame size"):
            vids[0]


def test_stock_davis_adapter_bad_input():
    ex = _davis_example("empty")
    ex["video"]["segmentations"][:] = 0
    with pytest.raises(ValueError, match="empty: empty first mask"):
        tb.video_from_tfds_davis(ex)
    with pytest.raises(ValueError, match="2 objects exceed the configured 1"):
        tb.video_from_tfds_davis(_davis_example("two"), max_objects=1)
