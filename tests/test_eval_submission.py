"""Submission zips: YouTube-VOS and DAVIS test-dev layouts, completeness checks."""
import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from vosjax.data.synthetic import write_davis_layout
from vosjax.evaluation import submission

META = {"videos": {
    "v1": {"objects": {"1": {"category": "cat", "frames": ["00000", "00005", "00010"]},
                       "2": {"category": "dog", "frames": ["00005", "00010", "00015"]}}},
    "v2": {"objects": {"1": {"category": "car", "frames": ["00000", "00005"]}}},
}}


def _labels(value, shape=(6, 9)):
    out = np.zeros(shape, np.uint8)
    out[1:3, 2:5] = value
    return out


def _zip_png(zf, name):
    im = Image.open(io.BytesIO(zf.read(name)))
    assert im.mode == "P"
    return np.asarray(im)


def test_youtubevos_layout(tmp_path):
    meta_path = tmp_path / "meta.json"
    meta_path.write_text(json.dumps(META))
    assert submission.youtubevos_expected_frames(meta_path) == {
        "v1": ["00000", "00005", "00010", "00015"], "v2": ["00000", "00005"]}
    # Predictions for every frame 00000..00019; only the meta frames are submitted.
    preds = {v: {f"{t:05d}": _labels(t % 3) for t in range(20)} for v in ("v1", "v2")}
    path = submission.write_youtubevos_submission(tmp_path / "sub.zip", preds, meta_path)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == sorted(
            [f"Annotations/v1/{f}.png" for f in ("00000", "00005", "00010", "00015")]
            + [f"Annotations/v2/{f}.png" for f in ("00000", "00005")])
        np.testing.assert_array_equal(_zip_png(zf, "Annotations/v1/00010.png"), _labels(1))
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".json"] == ["sub.zip"]


def test_youtubevos_incomplete_leaves_no_zip(tmp_path):
    preds = {"v1": {f: _labels(1) for f in ("00000", "00005", "00010", "00015")}}
    with pytest.raises(ValueError, match="sequence\\(s\\) missing .*v2"):
        submission.write_youtubevos_submission(tmp_path / "sub.zip", preds, META)
    preds["v2"] = {"00000": _labels(1)}
    with pytest.raises(ValueError, match="'v2': 1 expected frame\\(s\\) missing: 00005"):
        submission.write_youtubevos_submission(tmp_path / "sub.zip", preds, META)
    with pytest.raises(ValueError, match="not part of this split"):
        submission.write_youtubevos_submission(tmp_path / "sub.zip", {"v9": {}}, META)
    assert list(tmp_path.iterdir()) == []


def test_davis_testdev_layout(tmp_path):
    root = tmp_path / "davis"
    write_davis_layout(root, {"a": np.zeros((3, 4, 5), np.uint8), "b": np.zeros((4, 4, 5),
                                                                                 np.uint8)},
                       year=2017, split="test-dev")
    expected = submission.davis_expected_frames(root, "test-dev")
    assert expected == {"a": ["00000", "00001", "00002"],
                        "b": ["00000", "00001", "00002", "00003"]}
    preds = {seq: {f: _labels(2, (4, 5)) for f in frames} for seq, frames in expected.items()}
    out = tmp_path / "testdev.zip"
    # The streaming writer: one sequence at a time, as (name, labels) pairs.
    with submission.SubmissionZip(out, "davis", expected) as sub:
        for seq, frames in preds.items():
            sub.add_sequence(seq, iter(frames.items()))
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == sorted(f"{s}/{f}.png" for s, fr in expected.items()
                                               for f in fr)
        np.testing.assert_array_equal(_zip_png(zf, "b/00003.png"), _labels(2, (4, 5)))
    del preds["b"]["00003"]
    with pytest.raises(ValueError, match="'b': 1 expected frame"):
        submission.write_davis_submission(tmp_path / "bad.zip", preds, expected)
    assert not (tmp_path / "bad.zip").exists()


def test_bad_labels_and_failed_sequences(tmp_path):
    with pytest.raises(ValueError, match="a/00000: labels must be"):
        submission.write_davis_submission(tmp_path / "x.zip", {"a": {"00000": np.zeros(3)}})
    sub = submission.SubmissionZip(tmp_path / "y.zip", "davis")
    with pytest.raises(ValueError):
        sub.add_sequence("a", {"00000": np.full((2, 2), 300)})
    with pytest.raises(ValueError, match="not written"):
        sub.close()
    assert list(tmp_path.iterdir()) == []
