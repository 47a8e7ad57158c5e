"""evaluate.py --score end to end: generated DAVIS layouts, davis2016-mini, bad input."""
import csv
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from vosjax.data.davis import davis_sequences
from vosjax.data.masks import read_label_png, write_palette_png
from vosjax.data.synthetic import blob_video, perturb_video, write_davis_layout, write_label_folder
from vosjax.evaluation import davis, metrics, protocol

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_cli(*args):
    return subprocess.run([sys.executable, str(REPO / "evaluate.py"), "--score", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def expected_rows(gts: dict, preds: dict):
    """Reference numbers from the dense J / F definitions: ({name: (J-Mean, F-Mean)}, global)."""
    names, jm, jr, jd, fm, fr, fd = [], [], [], [], [], [], []
    for seq, gt in gts.items():
        gt = np.where(gt == 255, 0, gt)
        pred = preds[seq]
        for k in range(1, int(gt[0].max()) + 1):
            j = metrics.region_similarity(gt[1:-1] == k, pred[1:-1] == k)
            f = metrics.boundary_f_measure(gt[1:-1] == k, pred[1:-1] == k)
            (m, r, d), (m2, r2, d2) = (protocol.object_statistics(x[None]) for x in (j, f))
            names.append(f"{seq}_{k}")
            for lst, v in zip((jm, jr, jd, fm, fr, fd), (m, r, d, m2, r2, d2)):
                lst.append(float(v[0]))
    per = {n: (a, b) for n, a, b in zip(names, jm, fm)}
    glob = [(np.mean(jm) + np.mean(fm)) / 2, np.mean(jm), np.mean(jr), np.mean(jd),
            np.mean(fm), np.mean(fr), np.mean(fd)]
    return per, glob


def check_csvs(results, split, per, glob):
    g = read_csv(results / f"global_results-{split}.csv")
    assert g[0] == list(protocol.GLOBAL_COLUMNS)
    assert g[1] == ["%.3f" % v for v in glob]
    s = read_csv(results / f"per-sequence_results-{split}.csv")
    assert s[0] == ["Sequence", "J-Mean", "F-Mean"]
    assert [r[0] for r in s[1:]] == list(per)
    for name, j, f in s[1:]:
        assert [j, f] == ["%.3f" % v for v in per[name]]


@pytest.fixture(scope="module")
def tiny_davis(tmp_path_factory):
    """A DAVIS-2017 layout at an odd size (37 x 53): 3 sequences, 1-3 objects, void pixels,
    and a perturbed prediction folder."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(7)
    gts = {f"s{i}": blob_video(rng, n, k, 37, 53, void_patch=(i == 1))
           for i, (n, k) in enumerate([(6, 1), (8, 3), (5, 2)])}
    write_davis_layout(root / "davis", gts, year=2017, split="val")
    preds = {}
    for seq, gt in gts.items():
        k = int(np.where(gt[0] == 255, 0, gt[0]).max())
        preds[seq] = perturb_video(rng, gt, k, max_shift=3)
        write_label_folder(root / "results" / seq, preds[seq])
    return root, gts, preds


def test_cli_on_generated_layout(tiny_davis, tmp_path):
    root, gts, preds = tiny_davis
    results = tmp_path / "results"
    shutil.copytree(root / "results", results)
    out = run_cli(f"--davis_root={root / 'davis'}", "--year=2017", "--split=val",
                  f"--results={results}", "--bar_chart")
    assert out.returncode == 0, out.stderr
    per, glob = expected_rows(gts, preds)
    assert len(per) == 6  # 1 + 3 + 2 objects
    check_csvs(results, "val", per, glob)
    assert "s1_3" in out.stdout and "J&F-Mean" in out.stdout
    chart = Image.open(results / "jf_per_sequence-val.png")
    assert chart.format == "PNG" and chart.width > 100
    # A results folder may hold other sequences and needs no first / last frames.
    (results / "s0" / "00000.png").unlink()
    (results / "s0" / "00005.png").unlink()
    shutil.copytree(results / "s2", results / "unlisted")
    assert run_cli(f"--davis_root={root / 'davis'}", f"--results={results}").returncode == 0
    check_csvs(results, "val", per, glob)


def test_cli_bad_input_names_the_problem(tiny_davis, tmp_path):
    root, gts, _ = tiny_davis
    results = tmp_path / "results"
    shutil.copytree(root / "results", results)
    (results / "s1" / "00003.png").unlink()
    shutil.rmtree(results / "s2")
    out = run_cli(f"--davis_root={root / 'davis'}", f"--results={results}")
    assert out.returncode == 1
    assert "00003.png" in out.stderr and "'s1'" in out.stderr and "'s2'" in out.stderr
    assert not any(p.suffix in (".csv", ".tmp") or ".tmp-" in p.name for p in results.iterdir())


def _layout_copy(tiny_davis, tmp_path):
    root, _, _ = tiny_davis
    results = tmp_path / "results"
    shutil.copytree(root / "results", results)
    return root / "davis", results


def test_missing_sequence_and_frame(tiny_davis, tmp_path):
    droot, results = _layout_copy(tiny_davis, tmp_path)
    shutil.rmtree(results / "s0")
    with pytest.raises(FileNotFoundError, match=r"sequence 's0': folder .*s0 missing"):
        davis.score_davis(droot, results)
    droot, results = _layout_copy(tiny_davis, tmp_path / "b")
    (results / "s1" / "00004.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"'s1': 1 frame\(s\) missing .*00004.png"):
        davis.score_davis(droot, results)


def test_more_objects_than_ground_truth(tiny_davis, tmp_path):
    droot, results = _layout_copy(tiny_davis, tmp_path)
    frame = read_label_png(results / "s2" / "00002.png")
    frame[0, 0] = 3  # s2 has 2 objects
    write_palette_png(results / "s2" / "00002.png", frame)
    with pytest.raises(ValueError, match=r"s2/00002.png: object id 3 .* 2 object\(s\)"):
        davis.score_davis(droot, results)
    assert not any(p.is_file() for p in results.iterdir())  # no CSV, nothing partial


def test_wrong_size_and_unreadable(tiny_davis, tmp_path):
    droot, results = _layout_copy(tiny_davis, tmp_path)
    write_palette_png(results / "s1" / "00002.png", np.zeros((36, 53), np.uint8))
    with pytest.raises(ValueError, match=r"s1/00002.png: prediction size \(53, 36\)"):
        davis.score_davis(droot, results)
    droot, results = _layout_copy(tiny_davis, tmp_path / "b")
    (results / "s1" / "00002.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"s1/00002.png: unreadable"):
        davis.score_davis(droot, results)


def test_missing_split_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="ImageSets/2017/val.txt"):
        davis.score_davis(tmp_path, tmp_path)
    out = run_cli(f"--davis_root={tmp_path}", f"--results={tmp_path}")
    assert out.returncode == 1 and "val.txt" in out.stderr


def _mini_gt(davis_mini):
    names = davis_sequences(davis_mini, 2016, "val")
    return {seq: np.stack([read_label_png(davis_mini / "Annotations" / "480p" / seq / f"{n}.png",
                                          binary=True)
                           for n in davis.annotation_frames(davis_mini, seq)])
            for seq in names}


def test_davis2016_mini_against_itself(davis_mini, tmp_path):
    results = tmp_path / "results"
    for seq in davis_sequences(davis_mini, 2016, "val"):
        shutil.copytree(davis_mini / "Annotations" / "480p" / seq, results / seq)  # 0/255 L
    out = run_cli(f"--davis_root={davis_mini}", "--year=2016", f"--results={results}")
    assert out.returncode == 0, out.stderr
    g = read_csv(results / "global_results-val.csv")
    assert g[1] == ["1.000", "1.000", "1.000", "0.000", "1.000", "1.000", "0.000"]
    s = read_csv(results / "per-sequence_results-val.csv")
    assert s[1:] == [[f"{seq}_1", "1.000", "1.000"]
                     for seq in ("blackswan", "car-shadow", "motocross-jump")]


def test_davis2016_mini_against_perturbed_copy(davis_mini, tmp_path):
    gts = _mini_gt(davis_mini)
    rng = np.random.default_rng(3)
    preds, results = {}, tmp_path / "results"
    for i, (seq, gt) in enumerate(gts.items()):
        pred = perturb_video(rng, gt, 1, max_shift=10, drop_prob=0.05)
        preds[seq] = pred
        os.makedirs(results / seq)
        for t, frame in enumerate(pred):
            path = results / seq / f"{t:05d}.png"
            if i == 0:  # 0/255 grayscale, as DAVIS-2016 results often are
                Image.fromarray((frame * 255).astype(np.uint8), mode="L").save(path)
            else:
                write_palette_png(path, frame)
    out = run_cli(f"--davis_root={davis_mini}", "--year=2016", f"--results={results}")
    assert out.returncode == 0, out.stderr
    per, glob = expected_rows(gts, preds)
    check_csvs(results, "val", per, glob)
    assert 0.2 < glob[0] < 0.99
