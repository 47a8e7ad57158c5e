"""The benchmark drivers at tiny size: they run both implementations, agree numerically (same
weights reach both), write their JSON, and the table generator reads it.

Needs torch and a checkout of lyxok1/STM-Training (branch ``cycle``): ``$STM_TRAINING`` or
``../stm-official`` next to the repository; skipped otherwise.
"""
import json
import os
import pathlib

import pytest

pytest.importorskip("torch")

REPO = pathlib.Path(__file__).resolve().parents[1]
OFFICIAL = pathlib.Path(os.environ.get("STM_TRAINING", REPO.parent / "stm-official"))

pytestmark = pytest.mark.skipif(not (OFFICIAL / "libs" / "models" / "models.py").exists(),
                                reason=f"no STM-Training checkout at {OFFICIAL}")


def test_standin_matches_torchvision_layout():
    from benchmarks.official import torchvision_standin as tv

    names = set(tv.resnet50().state_dict())
    assert "layer3.0.downsample.0.weight" in names and "layer4.2.bn3.running_var" in names
    assert tv.resnet50().layer2[0].conv2.stride == (2, 2)      # stride on the 3x3 (v1.5)
    r18 = tv.resnet18().state_dict()
    assert r18["layer1.0.conv2.weight"].shape == (64, 64, 3, 3)
    assert "layer1.0.conv3.weight" not in r18
    assert sum(v.numel() for k, v in tv.resnet18().named_parameters()) == 11689512


@pytest.mark.slow
def test_inference_driver_tiny(tmp_path):
    from benchmarks import inference_speed, make_table

    out = tmp_path / "inference_cpu.json"
    inference_speed.main(["--official", str(OFFICIAL), "--arch", "resnet18", "--objects", "2",
                          "--size", "32x48", "--frames", "7", "--repeats", "1",
                          "--correction", "off", "--out", str(out)])
    data = json.loads(out.read_text())
    (row,) = data["rows"]
    assert row["ours"]["fps"] > 0 and row["official"]["fps"] > 0
    assert row["speedup"] == pytest.approx(row["ours"]["fps"] / row["official"]["fps"], rel=1e-2)
    assert row["max_abs_diff_probs"] < 1e-4             # same weights, same test loop
    assert row["ours"]["compiles_timed"] == 0    # a video compiles once
    m = data["machine"]
    assert m["versions"]["torch"] and m["versions"]["jax"] and m["device"]
    section = make_table.build_section(str(tmp_path))
    assert "| resnet18 | 2 | 32x48 | 7 | off | float32 |" in section


@pytest.mark.slow
def test_training_driver_tiny(tmp_path):
    from benchmarks import training_speed

    out = tmp_path / "training_cpu.json"
    training_speed.main(["--official", str(OFFICIAL), "--arch", "resnet18", "--batch", "1",
                         "--size", "32x48", "--objects", "1", "--num-slots", "1",
                         "--repeats", "1", "--out", str(out)])
    (row,) = json.loads(out.read_text())["rows"]
    # Same weights and clip: the first update's loss is the official one.
    assert row["first_loss_abs_diff"] < 1e-4 * max(1.0, abs(row["official"]["first_loss"]))
    assert row["ours"]["flops"] > 0 and row["ours"]["clips_per_s"] > 0


@pytest.mark.slow
def test_training_breakdown_tiny(tmp_path):
    from benchmarks import make_table, training_breakdown

    out = tmp_path / "training_breakdown_cpu.json"
    training_breakdown.main(["--official", str(OFFICIAL), "--arch", "resnet18", "--size",
                             "32x48", "--repeats", "1", "--out", str(out)])
    data = json.loads(out.read_text())
    for impl in ("ours", "official"):
        m = {r["part"]: r[impl]["median_s"] for r in data["rows"] if r[impl]}
        assert m["backward"] == pytest.approx(m["forward_backward"] - m["forward"], abs=1e-3)
        assert m["forward"] > 0 and m["update"] > 0
    assert "| resnet18 | 32x48 | 2 | backward |" in make_table.build_section(str(tmp_path))


def test_conv_kernels_tiny(tmp_path):
    from benchmarks import conv_kernels, make_table

    out = tmp_path / "conv_kernels_cpu.json"
    conv_kernels.main(["--scale", "0.1", "--repeats", "1", "--out", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == len(conv_kernels.SHAPES)
    for r in rows:
        for part in conv_kernels.PARTS:
            assert r[part]["jax"]["ms"] > 0 and r[part]["torch"]["ms"] > 0
    assert "Convolutions alone" in make_table.build_section(str(tmp_path))

