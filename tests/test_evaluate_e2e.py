"""evaluate.py inference mode end to end on generated layouts with a tiny random STM:
resuming an interrupted evaluation, ``--overwrite``, gradient correction wired through the
config, YouTube-VOS (late objects, meta.json, submission zip), bad inputs named."""
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from data_layouts import H, W, make_davis2017, make_youtube_vos
from launch import env
from stm_helpers import tiny_stm
from vosjax.data.masks import read_label_png, write_palette_png
from vosjax.families import save_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = ["--config", "configs/stm_cycle.py:r18", f"--config.data.size=({H}, {W})"]
SEQS = ("alpha", "beta", "gamma")


def evaluate(*args):
    return subprocess.run([sys.executable, "evaluate.py", *CONFIG, *map(str, args)],
                          capture_output=True, text=True, env=env(), cwd=REPO, timeout=600)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("model") / "tiny"
    model, variables = tiny_stm(seed=3)
    save_model(d, model, variables)
    return d


@pytest.fixture(scope="module")
def davis(tmp_path_factory):
    root = tmp_path_factory.mktemp("davis")
    make_davis2017(root, seqs=SEQS, num_frames=5)
    return root


def png_times(folder):
    return {f: os.stat(os.path.join(folder, f)).st_mtime_ns for f in sorted(os.listdir(folder))}


def test_interrupted_evaluation_resumes_and_overwrite_starts_over(tmp_path, ckpt, davis):
    full = tmp_path / "full"
    r = evaluate("--checkpoint", ckpt, "--dataset", f"davis2017:{davis}", "--output", full)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "already complete" not in r.stdout
    csvs = ["global_results-val.csv", "per-sequence_results-val.csv"]
    expected = {c: (full / c).read_text() for c in csvs}

    # What an evaluation killed while segmenting `beta` leaves: `alpha` complete, beta's
    # temporary folder half written, no CSVs yet (they are written at the end).
    part = tmp_path / "part"
    part.mkdir()
    shutil.copytree(full / "alpha", part / "alpha")
    (part / "beta.tmp-4242").mkdir()
    shutil.copy(full / "beta" / "00000.png", part / "beta.tmp-4242" / "00000.png")
    kept = png_times(part / "alpha")
    r = evaluate("--checkpoint", ckpt, "--dataset", f"davis2017:{davis}", "--output", part)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"1 of 3 videos already complete in {part}" in r.stdout
    assert png_times(part / "alpha") == kept                     # not written again
    assert "alpha" not in json.loads((part / "summary.json").read_text())["fps"]
    for c in csvs:
        assert (part / c).read_text() == expected[c]
    for seq in SEQS:
        assert sorted(os.listdir(part / seq)) == sorted(os.listdir(full / seq))
        for f in os.listdir(full / seq):
            np.testing.assert_array_equal(read_label_png(part / seq / f),
                                          read_label_png(full / seq / f))

    # A complete folder is read back, not recomputed: a changed PNG changes the scores ...
    changed = read_label_png(part / "gamma" / "00002.png")
    write_palette_png(part / "gamma" / "00002.png", np.zeros_like(changed))
    r = evaluate("--checkpoint", ckpt, "--dataset", f"davis2017:{davis}", "--output", part)
    assert r.returncode == 0 and "3 of 3 videos already complete" in r.stdout
    assert (part / csvs[1]).read_text() != expected[csvs[1]]
    # ... and --overwrite segments everything again, restoring the uninterrupted result.
    r = evaluate("--checkpoint", ckpt, "--dataset", f"davis2017:{davis}", "--output", part,
                 "--overwrite")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "already complete" not in r.stdout
    assert all(t1 != t0 for t1, t0 in zip(png_times(part / "alpha").values(), kept.values()))
    for c in csvs:
        assert (part / c).read_text() == expected[c]


def test_youtubevos_end_to_end_with_a_late_object_and_submission_zip(tmp_path, ckpt):
    root = tmp_path / "ytvos"
    labs = make_youtube_vos(root, split="valid")
    # A validation split: annotations only where an object first appears (00000: id 2,
    # 00010: id 7), and meta.json lists frames 00000-00010 (00015 is not to be submitted).
    ann = root / "valid" / "Annotations" / "vid1"
    for stem in ("00005", "00015"):
        (ann / f"{stem}.png").unlink()
    meta = json.loads((root / "valid" / "meta.json").read_text())
    meta["videos"]["vid1"]["objects"]["2"]["frames"] = ["00000", "00005", "00010"]
    meta["videos"]["vid1"]["objects"]["7"]["frames"] = ["00010"]
    (root / "valid" / "meta.json").write_text(json.dumps(meta))
    out = tmp_path / "out"
    r = evaluate("--checkpoint", ckpt, "--dataset", f"youtubevos:{root}", "--split", "valid",
                 "--output", out)
    assert r.returncode == 0, r.stderr[-3000:]
    pngs = sorted(os.listdir(out / "vid1"))
    assert pngs == ["00000.png", "00005.png", "00010.png", "00015.png"]
    preds = {p[:-4]: read_label_png(out / "vid1" / p, binary=False) for p in pngs}
    # Original ids come back; frame 0 is the given mask; object 7 is absent before 00010 and
    # is its given mask there.
    assert set(np.unique(np.stack(list(preds.values())))) <= {0, 2, 7}
    np.testing.assert_array_equal(preds["00000"], labs[0])
    assert not (preds["00000"] == 7).any() and not (preds["00005"] == 7).any()
    np.testing.assert_array_equal(preds["00010"] == 7, labs[2] == 7)
    zpath = out / "submission.zip"
    with zipfile.ZipFile(zpath) as z:
        names = sorted(z.namelist())
        assert names == [f"Annotations/vid1/{s}.png" for s in ("00000", "00005", "00010")]
        for name in names:
            im = Image.open(io.BytesIO(z.read(name)))
            assert im.mode == "P" and im.size == (W, H)
            np.testing.assert_array_equal(np.asarray(im), preds[name.split("/")[-1][:-4]])
    assert json.loads((out / "summary.json").read_text())["submission"] == str(zpath)


def test_correction_is_wired_through_the_config(tmp_path, ckpt, davis):
    """--config.eval.correction=True gives the PNGs of segment_video called directly with the
    same GradientCorrection (and, on this model, different ones from no correction)."""
    import jax

    from vosjax.correction import GradientCorrection
    from vosjax.data.davis import DavisDataset
    from vosjax.families import load_model
    from vosjax.inference.options import STMOptions
    from vosjax.inference.video import segment_video

    out = tmp_path / "corr"
    r = evaluate("--checkpoint", ckpt, "--dataset", f"davis2017:{davis}", "--output", out,
                 "--config.eval.correction=True", "--config.eval.correction_iters=1",
                 "--config.eval.correction_rate=500.0", "--config.eval.correction_every=2")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["correction"] is True
    model, variables = load_model(ckpt)
    video = DavisDataset(davis, year="2017", split="val")["alpha"]
    frames = video.load_frames()
    kw = dict(size=(H, W), mem_every=5, reference="mem", upsample="nearest")
    with jax.default_device(jax.devices("cpu")[0]):
        corr = GradientCorrection(n_iter=1, rate=500.0, every=2)
        on = segment_video(model, variables, frames, video.first_masks,
                           STMOptions(correction=corr, **kw))
        off = segment_video(model, variables, frames, video.first_masks, STMOptions(**kw))
    on, off = np.asarray(on.labels), np.asarray(off.labels)
    got = np.stack([video.from_original_ids(read_label_png(out / "alpha" / f"{n}.png"))
                    for n in video.frame_names])
    np.testing.assert_array_equal(got, on)
    assert (on != off).any(), "correction changed nothing here: the test proves no wiring"


def test_malformed_meta_and_mismatched_annotation_name_the_file(tmp_path, ckpt):
    from vosjax.data.youtube_vos import YouTubeVOSDataset

    root = tmp_path / "ytvos"
    make_youtube_vos(root, split="valid")
    meta = root / "valid" / "meta.json"
    good = meta.read_text()
    for bad in ('{"videos": {"vid1": ', '{"videos": {"vid1": {"objects": {"2": {}}}}}',
                '{"clips": {}}', '{"videos": {"vid1": {"objects": {"x": {"frames": []}}}}}'):
        meta.write_text(bad)
        with pytest.raises(ValueError, match=rf"{meta}: malformed meta.json"):
            YouTubeVOSDataset(root, split="valid")
    # Through evaluate.py: exit status 1 and the file in the message, no traceback.
    r = evaluate("--checkpoint", ckpt, "--dataset", f"youtubevos:{root}", "--split", "valid",
                 "--output", tmp_path / "o")
    assert r.returncode == 1 and f"error: {meta}: malformed meta.json" in r.stderr
    assert "Traceback" not in r.stderr
    meta.write_text(good)
    bad_png = root / "valid" / "Annotations" / "vid1" / "00005.png"
    write_palette_png(bad_png, np.zeros((H + 4, W), np.uint8))
    with pytest.raises(ValueError, match=rf"{bad_png}: annotation size \({H + 4}, {W}\) "
                                         rf"differs from the frame size \({H}, {W}\)"):
        YouTubeVOSDataset(root, split="valid")["vid1"]
    r = evaluate("--checkpoint", ckpt, "--dataset", f"youtubevos:{root}", "--split", "valid",
                 "--output", tmp_path / "o")
    assert r.returncode == 1 and f"error: {bad_png}: annotation size" in r.stderr
    assert not (tmp_path / "o" / "vid1").exists()
