"""The speed-ups' switches change speed, not results (donation, background writing, the fused
memory read), and the benchmark drivers' vosjax halves run without torch (CI has none)."""
import json
import os
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from benchmarks import make_table, slot_flops, speedups
from benchmarks.workloads import VosjaxTraining, synthetic_clips
from loop_helpers import RandomClips, jitted, run_config
from stm_helpers import numpy_variables
from vosjax.data.davis import DavisDataset
from vosjax.data.synthetic import blob_video, write_davis_layout
from vosjax.evaluation.runner import run_videos
from vosjax.inference.options import STMOptions
from vosjax.models.stm import STM, init_stm, memory_read
from vosjax.training.sharding import batch_sharding, global_batch
from vosjax.training.step import init_state

REPO = pathlib.Path(__file__).resolve().parents[1]

TINY = STM(arch="resnet10", keydim=16, valdim=32, mdim=16)


def test_memory_read_equals_the_official_bmm_form():
    rng = np.random.default_rng(0)
    k = jnp.asarray(rng.normal(size=(3, 40, 16)), jnp.float32)
    v = jnp.asarray(rng.normal(size=(3, 40, 24)), jnp.float32)
    q = jnp.asarray(rng.normal(size=(12, 16)), jnp.float32)
    ours = memory_read(k, v, q, precision="highest")[0]
    with jax.default_matmul_precision("highest"):
        theirs = speedups.official_style_read(jnp.transpose(k, (0, 2, 1)),
                                              jnp.transpose(v, (0, 2, 1)), q.T[None])
    assert ours.shape == theirs.shape == (3, 12, 24)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def _train_setup(donate):
    """The loop tests' one-device step (``loop_helpers.run_config``: the donated program is
    test_training_loop's one-device reference, a persistent-cache hit in the suite), its state
    from numpy-drawn variables (stm_helpers: no initialiser program to compile) and a raw
    batch."""
    cfg = run_config()
    j = jitted(cfg, jax.devices()[:1], donate=donate)
    v = numpy_variables(lambda: j.init_variables(jax.random.PRNGKey(0)))
    state = jax.device_put(init_state(lambda _: v, j.tx, jax.random.PRNGKey(0)), j.shardings)
    raw = RandomClips(cfg.train.batch_size, clip_len=cfg.data.clip_len).batch(1)
    batch = global_batch(raw.arrays, batch_sharding(j.mesh))
    return (lambda st, b: j.step_fn(st, b, raw.num_slots)), state, batch


def test_donated_step_consumes_its_input_and_equals_the_copying_step():
    results = {}
    for donate in (False, True):
        step, state, batch = _train_setup(donate)
        leaf = jax.tree_util.tree_leaves(state.params)[0]
        new, m = step(state, batch)
        new, m2 = step(new, batch)
        assert leaf.is_deleted() == donate    # donated: the old buffers now hold the new state
        results[donate] = (float(m["loss"]), float(m2["loss"]),
                           np.asarray(jax.tree_util.tree_leaves(new.params)[0]))
    assert results[False][:2] == results[True][:2]
    np.testing.assert_array_equal(results[False][2], results[True][2])


@pytest.fixture(scope="module")
def tiny_videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("davis")
    rng = np.random.default_rng(3)
    gts = {f"v{i}": blob_video(rng, n, k, 32, 48) for i, (n, k) in enumerate([(5, 1), (6, 2),
                                                                               (4, 1)])}
    write_davis_layout(root, gts, year=2017, split="val", images=False)
    for name, labels in gts.items():       # frames of the labels' size: objects brighter
        d = root / "JPEGImages" / "480p" / name
        d.mkdir(parents=True)
        for t, lab in enumerate(labels):
            img = rng.integers(0, 90, (*lab.shape, 3)) + 120 * (lab > 0)[..., None]
            Image.fromarray(img.astype(np.uint8)).save(d / f"{t:05d}.jpg")
    ds = DavisDataset(root, year="2017", split="val")
    variables = numpy_variables(lambda: init_stm(TINY, jax.random.PRNGKey(1), 32, 32), seed=1)
    return [ds[i] for i in range(len(ds))], variables


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(pathlib.Path(folder).rglob("*")) if p.is_file()}


def test_background_writing_gives_the_same_files_and_scores(tiny_videos, tmp_path):
    videos, variables = tiny_videos
    opts = STMOptions(size=(32, 48))
    reports = {bg: run_videos(TINY, variables, videos, opts, output_dir=str(tmp_path / str(bg)),
                              overlays=True, background=bg) for bg in (False, True)}
    assert reports[True].scores.global_row() == reports[False].scores.global_row()
    assert [s.name for s in reports[True].scores.sequences] == ["v0", "v1", "v2"]
    a, b = _files(tmp_path / "False"), _files(tmp_path / "True")
    assert sum(k.startswith(("v0/", "v1/", "v2/")) for k in a) == 5 + 6 + 4
    assert any(k.startswith("overlays/") for k in a)
    assert a == b


def test_background_write_failure_is_raised_and_leaves_no_partial_folder(tiny_videos, tmp_path,
                                                                          monkeypatch):
    from vosjax.data import masks

    videos, variables = tiny_videos
    real = masks.write_palette_png

    def failing(path, labels):
        if os.sep + "v1.tmp" in path and path.endswith("00003.png"):
            raise OSError(f"{path}: disk full")
        return real(path, labels)

    monkeypatch.setattr(masks, "write_palette_png", failing)
    with pytest.raises(OSError, match="disk full"):
        run_videos(TINY, variables, videos, STMOptions(size=(32, 48)),
                   output_dir=str(tmp_path), background=True)
    # v1 is not half-written; the others (written by other threads) are whole or absent.
    written = sorted(os.listdir(tmp_path))
    assert "v1" not in written and set(written) <= {"v0", "v2"}
    for name in written:
        assert len(os.listdir(tmp_path / name)) == {"v0": 5, "v2": 4}[name]


def test_speedups_driver_rows_and_table(tmp_path):
    for which in ("objects", "memory-read"):
        speedups.main([which, "--arch", "resnet10", "--size", "32x48", "--objects", "2",
                       "--memory-frames", "1", "--read-sizes", "32x48", "--read-frames", "2",
                       "--repeats", "1", "--out", str(tmp_path / f"speedup_{which}_cpu.json")])
    rows = {w: json.loads((tmp_path / f"speedup_{w}_cpu.json").read_text())["rows"]
            for w in ("objects", "memory-read")}
    (obj,), (read,) = rows["objects"], rows["memory-read"]
    assert obj["max_abs_diff"] < 1e-4 and read["max_abs_diff"] < 1e-5
    for r in (obj, read):
        assert r["speedup"] == pytest.approx(r["before"]["median_s"] / r["after"]["median_s"],
                                             rel=1e-2)
    section = make_table.build_section(str(tmp_path))
    assert "| objects batched | resnet10 32x48, 2 objects" in section
    assert "| memory read | 3 objects, 32x48 (M = 6 query positions)" in section


def test_training_driver_vosjax_side_runs_without_torch(golden_dir):
    """workloads.VosjaxTraining on the golden R18 weights (guards the driver against API
    drift)."""
    ours = VosjaxTraining(str(golden_dir / "weights_r18.npz"), "resnet18", "float32", "highest")
    batch = ours.prepare(*synthetic_clips(1, 2, 2, 2, 32, 48))   # a 2-frame cycle
    loss = ours.update(batch)
    assert np.isfinite(loss) and ours.cost(batch)["flops"] > 0


def test_profile_step_names_the_costliest_ops(tmp_path):
    """benchmarks.profile_step on a tiny video: op kinds sum to the traced op time, ops named
    by layer."""
    import subprocess

    out = tmp_path / "profile.json"
    env = {**os.environ, "XLA_FLAGS": ""}      # a fresh jax: one CPU device, XLA's own dump
    subprocess.run([sys.executable, "-m", "benchmarks.profile_step", "--arch",
                    "resnet18", "--size", "32x48", "--frames", "3", "--out", str(out)],
                   check=True, cwd=REPO, env=env, capture_output=True, timeout=300)
    data = json.loads(out.read_text())
    (row,) = data["rows"]
    assert data["benchmark"] == "profile_step" and row["op_seconds_total"] > 0
    shares = [k["share"] for k in row["kinds"]]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1.0 + 1e-6
    assert any("STM." in op["layer"] for op in row["top_ops"])
    assert "Where propagation time goes" in make_table.build_section(str(tmp_path))


def test_slot_flops_driver_tiny(tmp_path):
    """The FLOP accounting of the slot policies on a tiny step: bucketing costs the unpadded
    FLOPs, padding and trimming more; the two hosts' bucketed plans agree."""
    out = tmp_path / "slot_flops.json"
    slot_flops.main(["--arch", "resnet10", "--size", "32x48", "--clip-len", "2", "--cycle",
                     "0", "--batch", "4", "--num-slots", "2", "--probs", "0.7", "0.3",
                     "--clips", "400", "--out", str(out)])
    d = json.loads(out.read_text())
    pol = {r["policy"]: r for r in d["rows"]}
    assert pol["bucket"]["ratio_to_unpadded"] == pytest.approx(1.0, abs=1e-3)
    assert pol["pad"]["ratio_to_unpadded"] > pol["trim"]["ratio_to_unpadded"] > 1.05
    assert d["tflop_step"]["batch4"]["2"] > d["tflop_step"]["batch4"]["1"] > 0
    assert d["bucket"]["each_clip_once"] and d["bucket"]["same_plan_as_next_bucket"]
    h = d["hosts"]
    assert h["every_host_same_object_count_and_clips"]
    assert h["host_slices_concatenate_to_global_batch"]
    assert h["per_host_masks_shape_by_n"] == {"1": [[2, 2, 2, 32, 48]], "2": [[2, 2, 3, 32, 48]]}
