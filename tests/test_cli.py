"""train.py and evaluate.py (inference mode) end to end, at reduced sizes (the demo at toy
sizes: tests/launch.py)."""
import csv
import json
import os

import numpy as np
import pytest

from launch import TOY_DEMO, run


def check_davis_mini_outputs(r, out, overlays=False, davis_root=None):
    """evaluate.py inference on davis2016-mini succeeded: PNGs per frame at 854x480 (palette),
    the global CSV, and (``overlays``) overlay PNGs + GIFs; with ``davis_root``, the summary's
    J-Mean equals one computed here from the PNGs."""
    assert r.returncode == 0, r.stderr[-3000:]
    assert "frames/s" in r.stdout
    for seq, n in (("blackswan", 50), ("car-shadow", 40), ("motocross-jump", 40)):
        pngs = sorted(os.listdir(out / seq))
        assert len(pngs) == n and pngs[0] == "00000.png"
        if overlays:
            assert len(os.listdir(out / "overlays" / seq)) == n
            assert (out / "overlays" / f"{seq}.gif").exists()
    from PIL import Image
    im = Image.open(out / "blackswan" / "00010.png")
    assert im.mode == "P" and im.size == (854, 480)
    with open(out / "global_results-val.csv") as f:
        head = next(csv.reader(f))
    assert head == ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall",
                    "F-Decay"]
    if davis_root is not None:
        glob = json.loads((out / "summary.json").read_text())["global"]
        assert glob["J-Mean"] == pytest.approx(davis2016_j_mean(davis_root, out), abs=1e-6)
        assert glob["J&F-Mean"] == pytest.approx((glob["J-Mean"] + glob["F-Mean"]) / 2,
                                                 abs=1e-9)


def davis2016_j_mean(davis_root, results) -> float:
    """DAVIS-2016 J-Mean computed here with numpy from the PNGs (one object per sequence; the
    toolkit's protocol: IoU per frame, first and last frames left out, empty-vs-empty = 1,
    mean per sequence, then over sequences): an independent check of the scorer's wiring."""
    from PIL import Image

    per_seq = []
    for seq in sorted(os.listdir(results)):
        gt_dir = davis_root / "Annotations" / "480p" / seq
        if not gt_dir.is_dir():
            continue
        names = sorted(os.listdir(gt_dir))[1:-1]
        ious = []
        for n in names:
            gt = np.asarray(Image.open(gt_dir / n)) > 0
            pred = np.asarray(Image.open(results / seq / n)) == 1
            union = np.logical_or(gt, pred).sum()
            ious.append(1.0 if union == 0 else np.logical_and(gt, pred).sum() / union)
        per_seq.append(np.mean(ious))
    assert len(per_seq) == 3
    return float(np.mean(per_seq))


def test_train_demo_then_resume_then_evaluate_workdir(tmp_path):
    wd = tmp_path / "w"
    args = ["train.py", "--config", "configs/demo.py", "--workdir", str(wd),
            "--config.train.num_train_steps=2", "--config.train.warmup_steps=1",
            "--config.train.checkpoint_every=1", "--config.train.log_every=1",
            "--config.eval.num_videos=1",
            "--config.eval.synthetic.num_frames=6", "--config.data.synthetic.num_videos=4",
            *TOY_DEMO]
    r = run(args)
    assert r.returncode == 0, r.stderr[-3000:]
    ev = json.loads((wd / "eval.json").read_text())
    assert ev["step"] == 2
    for name in ("trained", "untrained"):
        row = ev[name]
        assert row["frames"] == 6
        assert row["J&F-Mean"] == pytest.approx((row["J-Mean"] + row["F-Mean"]) / 2, abs=1e-9)
    rows = [json.loads(x) for x in (wd / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 2 and np.isfinite(rows[-1]["loss"])
    # Same command with more steps resumes from step 2.
    r = run([a if "num_train_steps" not in a else "--config.train.num_train_steps=3"
             for a in args] + ["--config.eval.enabled=False"])
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(x) for x in (wd / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in rows] == [1, 2, 3]


def test_config_is_locked_and_bad_values_are_named(tmp_path):
    r = run(["train.py", "--config", "configs/demo.py", "--workdir", str(tmp_path),
             "--config.train.not_a_field=1"])
    assert r.returncode != 0 and "not_a_field" in r.stderr
    wd = tmp_path / "w"
    r = run(["train.py", "--config", "configs/stm_cycle.py", "--workdir", str(wd),
             "--config.train.num_train_steps=1"])
    assert r.returncode != 0 and "give the DAVIS folder" in r.stderr
    assert "config.data.davis_root" in r.stderr
    assert not wd.exists()      # the data are checked before anything is written


def test_evaluate_inference_mode_on_davis_mini(tmp_path, davis_mini, golden_dir):
    ckpt = tmp_path / "ckpt"
    r = run(["-m", "vosjax.convert", "--from", "stm-training",
             str(golden_dir / "weights_r18.npz"), "--out", str(ckpt)])
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    r = run(["evaluate.py", "--config", "configs/stm_cycle.py:r18", "--checkpoint", str(ckpt),
             "--dataset", f"davis2016:{davis_mini}", "--split", "val", "--output", str(out),
             "--overlays", "--config.data.size=(48, 80)"])
    check_davis_mini_outputs(r, out, overlays=True, davis_root=davis_mini)
    # The written PNGs score to the same numbers with the score-only mode.
    summary = json.loads((out / "summary.json").read_text())
    r = run(["evaluate.py", "--score", "--davis_root", str(davis_mini), "--year", "2016",
             "--split", "val", "--results", str(out)])
    assert r.returncode == 0, r.stderr[-2000:]
    with open(out / "global_results-val.csv") as f:
        rows = list(csv.reader(f))
    assert float(rows[1][0]) == pytest.approx(summary["global"]["J&F-Mean"], abs=1e-3)


def test_evaluate_bad_dataset_spec(tmp_path):
    r = run(["evaluate.py", "--config", "configs/demo.py", "--checkpoint", str(tmp_path),
             "--dataset", "kitti:/x", "--output", str(tmp_path / "o")])
    assert r.returncode != 0 and "kitti" in r.stderr
