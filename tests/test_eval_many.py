"""Many videos at once (vosjax.inference.batch through run_videos / evaluate.py): the same PNGs
(byte for byte) and CSVs as segmenting one video after another with ``segment_video``, on the
8 fake CPU devices with several videos per device, and across two processes
(``jax.distributed`` on a local coordinator); one progress bar over both processes; a clear
error when a batch does not fit in device memory; the share and batch planning."""
import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from launch import THREAD_FLAGS, env
from stm_helpers import tiny_stm
from vosjax.data.davis import DavisDataset
from vosjax.data.synthetic import blob_video, write_davis_layout
from vosjax.data.video import video_from_arrays, write_predictions
from vosjax.evaluation import protocol
from vosjax.evaluation.multihost import share_videos
from vosjax.evaluation.runner import run_videos
from vosjax.families import load_model, save_model
from vosjax.inference.options import STMOptions

REPO = pathlib.Path(__file__).resolve().parents[1]
SIZE = (24, 32)       # working size: the 40x56 frames are resized (23x32) and padded
# name: (frames, objects, height, width); two object counts and two frame sizes -> 3 programs.
# Split "share" (the two-process run): a, b, f, one program (fewer compilations in CI).
LAYOUT = {"a": (7, 2, 40, 56), "b": (4, 2, 40, 56), "c": (6, 1, 40, 56), "d": (3, 1, 40, 56),
          "e": (5, 2, 48, 64), "f": (5, 2, 40, 56)}
SHARE = ("a", "b", "f")


def _frames(rng, labels):
    img = rng.integers(0, 90, labels.shape + (3,)) + 120 * (labels > 0)[..., None]
    return img.astype(np.uint8)


def _late_object_video(rng):
    """In memory: object 2 first appears at frame 2 (YouTube-VOS style)."""
    labels = blob_video(rng, 6, 2, 40, 56)
    labels[:2][labels[:2] == 2] = 0
    return video_from_arrays("late", _frames(rng, labels), {t: labels[t] for t in (0, 2)})


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A DAVIS-2017 layout (JPEG frames), a tiny STM checkpoint and the reference outputs:
    ``segment_video`` one video after another, PNGs by ``write_predictions``, CSV texts."""
    from vosjax.inference.video import segment_video

    root = tmp_path_factory.mktemp("many")
    rng = np.random.default_rng(5)
    gts = {n: blob_video(rng, t, o, h, w) for n, (t, o, h, w) in LAYOUT.items()}
    write_davis_layout(root / "davis", gts, year=2017, split="val", images=False)
    (root / "davis" / "ImageSets" / "2017" / "share.txt").write_text("\n".join(SHARE) + "\n")
    for name, labels in gts.items():
        d = root / "davis" / "JPEGImages" / "480p" / name
        d.mkdir(parents=True)
        for t, img in enumerate(_frames(rng, labels)):
            Image.fromarray(img).save(d / f"{t:05d}.jpg", quality=90)
    model, variables = tiny_stm(seed=3)
    save_model(root / "ckpt", model, variables)
    model, variables = load_model(root / "ckpt")
    videos = list(DavisDataset(root / "davis", year="2017", split="val"))
    late = _late_object_video(rng)
    ref, scores = root / "ref", {}
    with jax.default_device(jax.devices()[0]):
        for v in videos + [late]:
            labels = segment_video(model, variables, v.load_frames(), v.first_masks,
                                   STMOptions(size=SIZE)).labels
            write_predictions(ref, v, labels)
            if v.labels is not None:
                scores[v.name] = protocol.score_sequence(v.name, v.labels, labels)
    csvs = {split: protocol.csv_texts(protocol.DavisScores(tuple(scores[n] for n in names)))
            for split, names in (("val", [v.name for v in videos]), ("share", SHARE))}
    return dict(root=root, model=model, variables=variables, videos=videos, late=late,
                ref=ref, csvs=csvs)


def _pngs(folder, names):
    return {f"{n}/{p}": (folder / n / p).read_bytes() for n in names
            for p in sorted(os.listdir(folder / n))}


def test_eight_devices_two_videos_each_give_the_one_by_one_pngs_and_csvs(setup, tmp_path,
                                                                       monkeypatch):
    from vosjax.inference import batch

    assert jax.local_device_count() == 8
    plans = []
    real_plan = batch.plan_batches
    monkeypatch.setattr(batch, "plan_batches", lambda *a: plans.append(real_plan(*a))
                        or plans[-1])
    videos = setup["videos"] + [setup["late"]]
    report = run_videos(setup["model"], setup["variables"], videos,
                        STMOptions(size=SIZE, videos_per_device=2),
                        output_dir=str(tmp_path))
    names = [v.name for v in videos]
    assert _pngs(tmp_path, names) == _pngs(setup["ref"], names)
    assert protocol.csv_texts(report.scores) == setup["csvs"]["val"]
    assert list(report.fps) == names                     # input order, every video timed
    assert report.frames == sum(v.num_frames for v in videos)
    assert report.peak_memory == {n: None for n in names}  # the CPU reports no memory
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]
    # Three programs (two frame sizes, two object counts); the 40x56 two-object videos a, b,
    # f and the late-object one went through one step together, two per device.
    (plan,) = plans
    assert sorted(sorted(videos[i].name for i in idx) for _, idx in plan) == [
        ["a", "b", "f", "late"], ["c", "d"], ["e"]]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_share_the_videos_and_process_0_merges(setup, tmp_path):
    """evaluate.py on two processes (2 CPU devices each; process 1 segments two videos in one
    batch): every PNG and both CSVs as the one-video-at-a-time reference; process 0's progress
    bar counts both processes' frames."""
    out, port = tmp_path / "out", _free_port()
    child_env = env(XLA_FLAGS=f"--xla_force_host_platform_device_count=2 {THREAD_FLAGS}",
                    JAX_PLATFORMS="cpu")
    cmd = [sys.executable, "evaluate.py", "--config", "configs/stm_cycle.py:r18",
           f"--config.data.size={SIZE}", "--checkpoint", str(setup["root"] / "ckpt"),
           "--dataset", f"davis2017:{setup['root'] / 'davis'}", "--split", "share",
           "--output", str(out),
           "--coordinator_address", f"127.0.0.1:{port}", "--num_processes", "2"]
    procs = [subprocess.Popen(cmd + ["--process_id", str(i)], cwd=REPO, env=child_env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(2)]
    try:
        res = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (o, e) in zip(procs, res):
        assert p.returncode == 0, e[-3000:]
    (out0, err0), (out1, _) = res
    names = list(SHARE)
    assert _pngs(out, names) == _pngs(setup["ref"], names)
    for path, text in zip(protocol.csv_paths(out, "share"), setup["csvs"]["share"]):
        assert pathlib.Path(path).read_text() == text
    total = sum(LAYOUT[n][0] for n in names)
    assert f"{total}/{total}" in err0 and "processes 2/2" in err0       # one bar, both shares
    assert "J&F-Mean" in out0
    assert share_videos([LAYOUT[n][0] for n in names], 2) == [[0], [1, 2]]
    assert "process 1 of 2: segmented 2 videos (9 frames" in out1
    for name in names:                                  # frames/s and memory of every video
        assert any(line.startswith(name) and line.endswith("n/a")
                   for line in out0.splitlines()), out0
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["fps"]) == sorted(names) and summary["processes"] == 2


def test_a_batch_that_does_not_fit_names_its_videos_and_a_memory_cap(setup, tmp_path,
                                                                     monkeypatch):
    from vosjax.inference import batch

    def out_of_memory(*args, **kwargs):
        raise jax.errors.JaxRuntimeError(
            "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 123456789 bytes.")

    monkeypatch.setattr(batch, "_programs", lambda *a: batch._Programs(
        out_of_memory, out_of_memory, None))
    videos = [v for v in setup["videos"] if v.name in ("a", "b")]
    with pytest.raises(batch.DeviceMemoryError) as info:
        run_videos(setup["model"], setup["variables"], videos, STMOptions(size=SIZE),
                   output_dir=str(tmp_path))
    msg = str(info.value)
    assert "'a', 'b'" in msg and "do not fit in device memory" in msg
    assert "--config.eval.memory_slots=4" in msg and "now 8 slots" in msg
    assert "RESOURCE_EXHAUSTED" in str(info.value.__cause__)
    assert os.listdir(tmp_path) == []                   # nothing half written
    # Other runtime errors pass through unchanged.
    monkeypatch.setattr(batch, "_programs", lambda *a: batch._Programs(
        *[lambda *x, **k: (_ for _ in ()).throw(jax.errors.JaxRuntimeError("INTERNAL: boom"))]
        * 2, None))
    with pytest.raises(jax.errors.JaxRuntimeError, match="INTERNAL: boom"):
        run_videos(setup["model"], setup["variables"], videos, STMOptions(size=SIZE))


def test_shares_and_batches():
    from vosjax.inference.batch import plan_batches

    frames = [7, 4, 6, 3, 5, 9, 1]
    shares = share_videos(frames, 3)
    assert sorted(i for s in shares for i in s) == list(range(7))       # disjoint, complete
    assert [sum(frames[i] for i in s) for s in shares] == [12, 12, 11]
    assert share_videos(frames, 3) == shares and share_videos(frames, 1) == [list(range(7))]
    specs = ["x", "y", "x", "x", "y", "x", "x"]
    plan = plan_batches(specs, frames, 2)
    assert plan == [("x", [5, 0]), ("x", [2, 3]), ("y", [4, 1]), ("x", [6])]


@pytest.mark.slow
def test_many_videos_benchmark_on_davis_mini(tmp_path, davis_mini):
    """Real 480p JPEGs at 240x427 (an exact halving): the engine on the 8 CPU devices gives
    the labels of the pre-engine loop (numpy resize on the host, one video after another; the
    driver stops otherwise); its table row."""
    from benchmarks import make_table, many_videos

    out = tmp_path / "many_videos_cpu.json"
    many_videos.main(["--davis", str(davis_mini), "--frames", "3", "--repeats", "1",
                      "--per-device", "1", "--out", str(out)])
    data = json.loads(out.read_text())
    assert data["labels_identical"] and data["settings"]["devices"] == 8
    assert data["settings"]["frames"] == 9
    assert [r["setting"] for r in data["rows"]] == ["one by one (host resize)",
                                                   "engine, 1 per device"]
    assert "| resnet10 240x427 | 3 videos, 9 | engine, 1 per device |" in (
        make_table.build_section(str(tmp_path)))
