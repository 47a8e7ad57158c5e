"""experiments/: low-quality reference masks, ERF statistics, config loading, the report,
the shared record of a result file."""
import json
import pathlib

import numpy as np
import pytest

from experiments import common, erf_figure, report, stm_ablations

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_box_labels_fill_each_objects_box():
    lab = np.zeros((2, 6, 8), np.uint8)
    lab[0, 1, 1] = lab[0, 3, 4] = 1          # two pixels -> box rows 1..3, cols 1..4
    lab[0, 5, 7] = 2                         # one pixel at the border
    lab[1, 0:2, 0:2] = 2                     # object 1 absent on frame 1
    box = stm_ablations.box_labels(lab)
    want = np.zeros_like(lab)
    want[0, 1:4, 1:5] = 1
    want[0, 5, 7] = 2
    want[1, 0:2, 0:2] = 2
    np.testing.assert_array_equal(box, want)


def test_mass_on_object():
    erf = np.zeros((2, 4, 4), np.float32)
    erf[0, 0, 0], erf[0, 3, 3] = 3.0, 1.0
    erf[0, 1, 1] = -5.0                      # negative values do not count
    masks = np.zeros((2, 4, 4), bool)
    masks[:, 0, 0] = True
    share = erf_figure.mass_on_object(erf, masks)
    assert share[0] == pytest.approx(0.75) and np.isnan(share[1])


def test_load_config_reads_the_arg_and_names_missing_files(tmp_path):
    c = common.load_config(str(REPO / "configs/experiments/stm_synthetic.py:baseline"))
    assert c.train.cycle is False and c.train.num_train_steps == 800
    assert common.load_config(
        str(REPO / "configs/experiments/stm_synthetic.py:cycle")).train.cycle is True
    with pytest.raises(ValueError, match="expected one of"):
        common.load_config(str(REPO / "configs/experiments/stm_synthetic.py:both"))
    with pytest.raises(FileNotFoundError, match="nope.py"):
        common.load_config(str(tmp_path / "nope.py"))


def test_find_runs_needs_finished_runs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished runs"):
        common.find_runs(str(tmp_path))
    (tmp_path / "cycle-s2").mkdir()
    (tmp_path / "cycle-s2" / "eval.json").write_text("{}")
    (tmp_path / "baseline-s1").mkdir()             # unfinished: no eval.json
    assert common.find_runs(str(tmp_path)) == [("cycle", 2, str(tmp_path / "cycle-s2"))]


def test_evaluate_with_low_quality_memory(tiny):
    from vosjax.data.video import video_from_arrays

    model, v = tiny
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (7, 16, 32, 3), dtype=np.uint8)
    labels = np.zeros((7, 16, 32), np.uint8)
    labels[:, 2:9, 3:12], labels[:, 8:14, 18:28] = 1, 2
    videos = [video_from_arrays(f"v{i}", frames, labels) for i in range(2)]
    s = stm_ablations.Setting("x", ("cycle",), correction=(2, 10.0), memory="bbox")
    mem = {vid.name: stm_ablations.box_labels(vid.labels) for vid in videos}
    kw = stm_ablations.setting_kwargs(s)
    assert kw["correction"].n_iter == 2 and kw["correction"].rate == 10.0
    row, preds = stm_ablations.evaluate(model, v, videos, (16, 32), mem, **kw)
    assert set(row) == {"JF", "J", "F", "fps", "frames"} and row["frames"] == 14
    assert row["fps"] > 0
    # J by hand: per object, IoU on frames 1..T-2 (empty vs empty = 1), mean per object, then
    # over the 4 objects of the 2 videos (the DAVIS-2017 protocol).
    per_object = []
    for vid in videos:
        for i in (1, 2):
            g, p = labels[1:-1] == i, preds[vid.name][1:-1] == i
            inter, union = (g & p).sum((1, 2)), (g | p).sum((1, 2))
            per_object.append(np.mean(np.where(union == 0, 1.0, inter / np.maximum(union, 1))))
    assert row["J"] == pytest.approx(np.mean(per_object), abs=1e-6)
    assert row["JF"] == pytest.approx((row["J"] + row["F"]) / 2, abs=1e-9)
    assert preds["v0"].shape == (7, 16, 32)
    bad = {vid.name: labels[:3] for vid in videos}
    with pytest.raises(ValueError, match="memory_labels must be"):
        stm_ablations.evaluate(model, v, videos, (16, 32), bad, **kw)


def _fake_stm_results():
    runs = {}
    for seed, (b, c) in enumerate([(0.30, 0.32), (0.28, 0.31), (0.32, 0.31)]):
        for variant, jf in (("baseline", b), ("cycle", c)):
            settings = {}
            for s in stm_ablations.SETTINGS:
                if variant in s.models:
                    settings[s.name] = {"JF": jf, "J": jf, "F": jf, "fps": 10.0, "frames": 48}
            runs[f"{variant}-s{seed}"] = {"variant": variant, "seed": seed, "settings": settings}
    return {"runs": runs, "videos": 2, "size": [64, 96], "machine": "cpu", "nproc": 2,
            "command": "python -m experiments.stm_ablations"}


def test_report_renders_mean_and_sd(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    (res / "stm_synthetic.json").write_text(json.dumps(_fake_stm_results()))
    (res / "stm_finetune.json").write_text(json.dumps(_fake_stm_results()))
    (res / "gc_timing.json").write_text(json.dumps({
        "command": "t", "videos": 2, "load_average_start": 1, "load_average_end": 1,
        "rows": [{"n_iter": 0, "fps_median": 60.0}, {"n_iter": 10, "fps_median": 12.5}]}))
    doc = tmp_path / "experiments.md"
    doc.write_text(f"intro\n{report.BEGIN}\nold\n{report.END}\noutro\n")
    report.main(["--results", str(res), "--doc", str(doc)])
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text
    # baseline J&F: mean 30.0, sd 2.0; cycle - baseline per seed: +2, +3, -1 -> 1.3 ± 2.1, 2/3.
    assert "| baseline | 30.0 ± 2.0 | 30.0 ± 2.0 | 30.0 ± 2.0 | 10 |  |" in text
    assert "| + cycle | 31.3 ± 0.6 | 31.3 ± 0.6 | 31.3 ± 0.6 | 10 | 1.3 ± 2.1 (2/3) |" in text
    assert "| 0 | 31.3 ± 0.6 | 10 | 60.0 |" in text and "| 10 | 31.3 ± 0.6 | 10 | 12.5 |" in text
    assert "| 5 | 31.3 ± 0.6 | 10 | - |" in text
    assert "**Cycle term as fine-tuning**" in text
    assert "| MEM | 30.0 ± 2.0 | 31.3 ± 0.6 | 1.3 ± 2.1 (2/3) |" in text
    doc.write_text("no markers")
    with pytest.raises(SystemExit, match="markers"):
        report.main(["--results", str(res), "--doc", str(doc)])


def test_gcseg_report_and_runs(tmp_path):
    from experiments import gcseg_ablations

    with pytest.raises(FileNotFoundError, match="no finished runs"):
        common.find_runs(str(tmp_path), gcseg_ablations.MODES)
    runs = {}
    for seed, jf in enumerate((0.10, 0.20, 0.30)):
        for mode in ("reference", "coseg", "both"):
            (tmp_path / f"{mode}-s{seed}").mkdir()
            (tmp_path / f"{mode}-s{seed}" / "eval.json").write_text("{}")
            runs[f"{mode}-s{seed}"] = {"variant": mode, "seed": seed, "settings": {
                "search": {"JF": jf, "J": jf, "F": jf}, "nosearch": {"JF": jf / 2, "J": 0,
                                                                    "F": jf}}}
    assert len(common.find_runs(str(tmp_path), gcseg_ablations.MODES)) == 9
    for key in runs:
        runs[key]["judge"] = {"rejected_fraction": 0.25, "rejected_nonempty_fraction": 0.0}
    lines = report.gcseg_tables({"runs": runs, "videos": 4, "size": [64, 96],
                                 "machine": "cpu", "command": "x"})
    assert ("| both | on | 20.0 ± 10.0 | 20.0 ± 10.0 | 20.0 ± 10.0 | 25.0 ± 0.0 | 0.0 ± 0.0 |"
            in lines)
    assert "| reference only | off | 0.0 ± 0.0 | 20.0 ± 10.0 | 10.0 ± 5.0 |  |  |" in lines


def test_report_names_the_machine_of_each_run():
    """Runs scored on different machines are listed by machine; one machine gives one name."""
    res = {"machine": "B", "runs": {"a-s0": {"machine": "A"}, "a-s1": {}, "b-s0": {"machine": "A"}}}
    assert report.machines(res) == ("Machines (training and scoring of each run): "
                                    "A (a-s0, b-s0); B (a-s1)")
    assert report.machines({"machine": "B", "runs": {"a-s0": {}}}) == "Machine: B"
    assert report.machines({"machine": "B", "runs": {}}) == "Machine: B"


def test_correction_effect_records_the_loss_before_and_after_every_corrected_frame(tiny):
    """experiments/correction_effect.py: 'after' (recomputed on the corrected mask) equals the
    loss an 11-step correction sees before its 11th update, 'before' the loss at the prediction
    (recomputed with reconstruction_loss), and descent lowers it on every corrected frame."""
    import jax.numpy as jnp

    from experiments import correction_effect
    from vosjax.correction import GradientCorrection, correct_mask, reconstruction_loss
    from vosjax.data.transforms import resize_pad_frames
    from vosjax.data.video import video_from_arrays
    from vosjax.inference.options import STMOptions
    from vosjax.inference.propagation import propagate

    model, variables = tiny
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    labels = np.zeros((6, 32, 32), np.uint8)
    labels[0, 4:14, 6:20] = 1
    labels[0, 18:30, 12:28] = 2
    video = video_from_arrays("v", frames, {0: labels[0]})
    corr = GradientCorrection(n_iter=3, rate=2.0, every=5)
    opts = STMOptions(size=(32, 32), correction=corr)
    rows = correction_effect.corrected_frame_losses(model, variables, video, opts)
    assert [r["frame"] for r in rows] == [5]
    # Independent path: the plain propagation's uncorrected predictions, corrected again
    # with one more step; its losses[0] / losses[3] are 'before' / 'after'.
    x, _ = resize_pad_frames(frames, (32, 32), "mean")
    masks = np.stack([labels[0] == 1, labels[0] == 2]).astype(np.float32)
    res = propagate(model, variables, x, masks, correction=corr)
    ref_query = model.apply(variables, jnp.asarray(x[0]), method=model.encode_query)
    for r in rows:
        t = r["frame"]
        _, losses = correct_mask(model, variables, jnp.asarray(x[t]), jnp.asarray(res.probs[t]),
                                 ref_query, jnp.asarray(res.probs[0]), n_iter=4, rate=2.0)
        before = reconstruction_loss(model, variables, jnp.asarray(x[t]),
                                     jnp.asarray(res.probs[t][1:3]), ref_query,
                                     jnp.asarray(res.probs[0]))
        assert r["before"] == pytest.approx(float(before), rel=1e-5)
        assert r["before"] == pytest.approx(float(losses[0]), rel=1e-5)
        assert r["after"] == pytest.approx(float(losses[3]), rel=1e-4)
        assert r["after"] < r["before"], r


def test_common_record_and_write(tmp_path):
    """The record every experiment's result starts with: the module command that ran it."""
    rec = common.record(str(REPO / "experiments" / "gc_timing.py"), ["--run", "a b"])
    assert rec["command"] == "python -m experiments.gc_timing --run 'a b'"
    assert rec["machine"] and rec["nproc"] >= 1 and rec["jax"] and rec["backend"] == "cpu"
    path = tmp_path / "sub" / "r.json"
    common.write_results(str(path), {**rec, "rows": [1]})
    assert json.loads(path.read_text())["rows"] == [1]
    again = common.open_results(str(path), str(REPO / "experiments" / "stm_ablations.py"), [],
                                videos=2)
    assert again["rows"] == [1] and again["runs"] == {} and again["videos"] == 2
    assert again["command"] == "python -m experiments.stm_ablations"



def _gcseg_run(variant, seed, jf_off, jf_centred):
    judge = {"rejected_fraction": 0.5, "rejected_nonempty_fraction": 0.25}
    row = lambda jf: {"JF": jf, "J": jf, "F": jf, "judge": judge}  # noqa: E731
    return {"variant": variant, "seed": seed, "machine": "M",
            "train": {"wall_s": 120.0, "steps_per_s": 2.0, "steps": 4000},
            "centred_calibration": {"threshold": 0.5},
            "settings": {"nosearch": row(jf_off), "search-paper": row(jf_off),
                         "search-centred": row(jf_centred), "zero-prev": row(0.3)}}


def test_gcseg_long_tables_and_owed_runs(tmp_path):
    """The longer-trained model renders in the Table V/VI layout; missing seeds are owed."""
    from experiments import gcseg_ablations

    expected = gcseg_ablations.expected_runs("long", "R")
    assert set(expected) == {f"both-s{s}" for s in gcseg_ablations.LONG_SEEDS}
    assert expected["both-s0"][2] == ("python train.py --config "
                                      "configs/experiments/gcseg_synthetic.py:both-long "
                                      "--config.seed=0 --workdir R/both-s0")
    res = {"runs": {"both-s0": _gcseg_run("both-long", 0, 0.40, 0.45),
                    "both-s1": _gcseg_run("both-long", 1, 0.50, 0.50)},
           "machine": "M", "nproc": 2, "videos": 16, "size": [64, 96], "command": "c",
           "trivial": {"empty_after_frame0": 0.336, "object_present_share": 0.4,
                       "copy_frame0": 0.2},
           "owed": {"both-s2": "cmd2"}}
    lines = report.gcseg_long_tables(res)
    # search off 40 and 50 -> 45.0 ± 7.1; centred 45 and 50 -> 47.5 ± 3.5; on - off: +5, 0.
    assert ("| Ref + Co-seg, 4000 updates | 2 | [0, 1] | 45.0 ± 7.1 | 45.0 ± 7.1 | 47.5 ± 3.5 "
            "| 30.0 ± 0.0 | 45.0 ± 7.1 / 45.0 ± 7.1 |  |") in lines
    assert ("| Ref + Co-seg, 4000 updates | centred | 2 | 2.5 ± 3.5 (1/2) | 50.0 ± 0.0 "
            "| 25.0 ± 0.0 | 0.500, 0.500 |") in lines
    assert "* `both-s2`: `cmd2`" in lines
    assert any("no object after frame 0 scores J&F 33.6" in x for x in lines)


def test_gcseg_paper_tables_keep_runs_scored_on_an_earlier_machine():
    res = {"runs": {"both-s0": _gcseg_run("both", 0, 0.16, 0.27)}, "machine": "M", "nproc": 2,
           "videos": 16, "size": [64, 96], "command": "c",
           "earlier_machine": {"both-s0": {**_gcseg_run("both", 0, 0.158, 0.27),
                                           "machine": "Old CPU"}}}
    text = "\n".join(report.gcseg_paper_tables(res))
    assert "Trained and scored earlier on Old CPU" in text and "`both-s0` 15.8" in text
    assert "| Ref + Co-seg | 1 | [0] | 16.0 | 16.0 | 27.0 | 30.0 |" in text
    assert "| baseline | 0 | | owed |" in text
