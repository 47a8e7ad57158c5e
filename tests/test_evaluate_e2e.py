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
from stm_helpers import tiny_stm
from vosjax.checkpoint import save_model
from vosjax.data.masks import read_label_png, write_palette_png

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = ["--config", "configs/stm_cycle.py:r18", f"--config.data.size=({H}, {W})"]
SEQS = ("alpha", "beta", "gamma")


def evaluate(*args):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("XLA_FLAGS", None)  # one device, as a user's run
    return subprocess.run([sys.executable, "evaluate.py", *CONFIG, *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)


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
