"""python -m benchmarks.gpu_bench: the smoke run (every section tiny on the CPU) writes a complete
JSON whose rows carry positive XLA FLOP counts and MFU computed from the run's own ceilings;
the command's import path needs none of the packages missing on the GPU image (and, run from
the repository root, takes vosjax from there: no ``pip install -e .``); the official model is
built without any download even with a real torchvision.
"""
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from launch import env

REPO = pathlib.Path(__file__).resolve().parents[1]
BENCH = [sys.executable, "-m", "benchmarks.gpu_bench"]     # run from the repository root
OFFICIAL = pathlib.Path(os.environ.get("STM_TRAINING", REPO.parent / "stm-official"))
HAVE_OFFICIAL = (OFFICIAL / "libs" / "models" / "models.py").exists()


def _env():
    return env(JAX_PLATFORMS="cpu")  # the 8 fake devices of conftest are not needed here


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_bench") / "gpu_smoke.json"
    cmd = [*BENCH, "--smoke", "--budget-min", "30", "--out", str(out)]
    if HAVE_OFFICIAL:
        cmd += ["--official", str(OFFICIAL)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=REPO,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), out


@pytest.mark.slow
def test_smoke_json_structure(smoke):
    from benchmarks import gpu_bench

    data, _ = smoke
    assert data["benchmark"] == "gpu_bench" and data["settings"]["smoke"] and data["complete"]
    assert data["machine"]["backend"] == "cpu" and "SMOKE" in data["note"]
    names = [r["name"] for r in data["rows"]]
    assert names == [j.name for j in gpu_bench.jobs(gpu_bench.SMOKE, True)]   # every row listed
    for row in data["rows"]:
        assert row["device"] and row["versions"]["jax"] and "torch" in row["versions"]
        assert row["status"] in ("ok", "skipped"), row
        if row["status"] == "skipped":
            assert row["reason"]
    ran = {r["section"] for r in data["rows"] if r["status"] == "ok"}
    assert {"ceilings", "inference", "videos", "480p", "training"} <= ran   # every section
    official = [r for r in data["rows"] if r["section"] == "official"]
    assert official and all(r["status"] == "ok" or r["reason"] for r in official)
    for r in official:
        if r["status"] == "ok":        # torch and a checkout here (never in CI)
            assert "vs_vosjax" in r and r["versions"]["torch"]
            assert set(r["torch_settings"]) >= {"matmul_allow_tf32", "cudnn_allow_tf32"}
            assert ("TF32" in r["numerics"]) == (r["mode"] == "float32")
    assert set(data["targets_measured"]) >= set(gpu_bench.TARGETS) | {"note"}


@pytest.mark.slow
def test_smoke_flops_and_mfu(smoke):
    data, _ = smoke
    ceilings = data["ceilings"]
    assert set(ceilings) == {"bfloat16", "float32", "float32-highest"}
    (ceil_row,) = [r for r in data["rows"] if r["section"] == "ceilings"]
    for mode, c in ceil_row["matmul"].items():
        assert c["flops"] > 0 and c["flops_per_s"] == pytest.approx(ceilings[mode])
    assert ceil_row["copy"]["bytes_per_s"] > 0
    measured = [r for r in data["rows"] if r["status"] == "ok" and r["section"] != "ceilings"]
    assert measured
    for row in measured:
        flops = row.get("flops_per_frame", row.get("flops_per_update"))
        assert flops > 0, row["name"]
        assert row["mfu_ceiling"] == row["mode"]      # float32 rows: never the bf16 ceiling
        assert row["mfu_ceiling_flops_per_s"] == ceilings[row["mode"]]
        assert row["mfu"] == pytest.approx(row["achieved_flops_per_s"] / ceilings[row["mode"]],
                                           rel=1e-3)
        if "frames_per_s" in row and row["section"] != "official":
            assert row["achieved_flops_per_s"] == pytest.approx(flops * row["frames_per_s"])
    corrected = [r for r in measured if r.get("correction") and r["section"] == "inference"]
    plain = [r for r in measured if r.get("correction") is False and r["section"] == "inference"
             and r["mode"] == corrected[0]["mode"]]
    assert plain and corrected[0]["flops_per_frame"] > plain[0]["flops_per_frame"]


@pytest.mark.slow
def test_smoke_table(smoke, tmp_path):
    from benchmarks import make_table

    data, path = smoke
    (tmp_path / path.name).write_text(json.dumps(data))
    section = make_table.build_section(str(tmp_path))
    assert "smoke" in section and "GPU benchmark" in section


def test_refuses_cpu_without_smoke(tmp_path):
    proc = subprocess.run([*BENCH, "--no-official", "--out",
                           str(tmp_path / "x.json")], capture_output=True, text=True,
                          env=_env(), cwd=REPO, timeout=300)
    assert proc.returncode != 0 and "refusing" in proc.stderr
    assert not (tmp_path / "x.json").exists()


BLOCK = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = {"tensorflow_datasets", "ml_collections", "tensorboardX", "grain"}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not on the GPU image")
            return None
    sys.meta_path.insert(0, Block())
    for name in list(sys.modules):
        if name.split(".")[0] in BLOCKED:
            del sys.modules[name]
""")


def test_imports_without_missing_gpu_image_packages():
    """Everything the command imports, with tfds / ml_collections / tensorboardX / grain
    blocked (the bare GPU image has none of them), from the repository root as ``python -m``
    runs it: vosjax is the checkout's (no installed package needed)."""
    code = BLOCK + textwrap.dedent(f"""
        import os
        import vosjax, vosjax.compute, vosjax.inference, vosjax.inference.propagation
        import vosjax.correction, vosjax.models.stm, vosjax.training.step
        import vosjax.training.optim, vosjax.training.sharding, vosjax.training.state
        assert os.path.dirname(os.path.dirname(os.path.abspath(vosjax.__file__))) == {str(REPO)!r}
        from benchmarks import gpu_bench, harness, inference_speed, training_speed, make_table
        from benchmarks.official import stm_training
        plan = gpu_bench.SMOKE
        for job in gpu_bench.jobs(plan, True):
            pass
        import jax
        model, variables = gpu_bench._model("resnet10", "bfloat16")
        progs = gpu_bench.InferencePrograms(plan, "resnet10", "bfloat16", 1, True, plan.size,
                                            compile=False)
        prog = gpu_bench.TrainingProgram(plan, "resnet10", "float32", compile=False)
        assert progs.flops_per_frame > 0 and prog.cost["flops"] > 0
        bad = sorted(n for n in sys.modules if n.split(".")[0] in BLOCKED)
        assert not bad, bad
        print("OK")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_env(), cwd=REPO, timeout=600)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]


@pytest.mark.skipif(not HAVE_OFFICIAL, reason=f"no STM-Training checkout at {OFFICIAL}")
def test_official_model_never_downloads(tmp_path):
    """With a real torchvision, the checkout's ``resnet50(pretrained=True)`` would fetch ImageNet
    weights; import_official builds the model with none (downloads raise here)."""
    pytest.importorskip("torchvision")
    code = textwrap.dedent(f"""
        import os, sys, urllib.request
        import torch.hub
        def no_network(*a, **k):
            raise RuntimeError("download attempted")
        torch.hub.download_url_to_file = no_network
        torch.hub.load_state_dict_from_url = no_network
        urllib.request.urlopen = no_network
        import torchvision.models
        try:        # control: the harness does catch a download
            torchvision.models.resnet18(pretrained=True)
            raise SystemExit("control: no download attempted")
        except RuntimeError as e:
            assert "download attempted" in str(e)
        from benchmarks.official import stm_training as official
        models, _ = official.import_official({str(OFFICIAL)!r})
        assert getattr(models.models, "OFFLINE", False)
        net = official.build_model(models, "resnet50")
        assert sum(p.numel() for p in net.parameters()) > 1e7
        print("OK")
    """)
    # An empty TORCH_HOME: no cached weights to fall back on.
    child_env = env(JAX_PLATFORMS="cpu", TORCH_HOME=str(tmp_path / "torch-home"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=child_env, cwd=REPO, timeout=600)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout + proc.stderr[-3000:]
