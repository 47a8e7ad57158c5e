"""benchmarks/harness.py and the result files: one schema that every file of
benchmarks/results/ follows and make_table renders (each file in some table), the timing loop,
the before/after row shape, the --size parser, and the package layout (modules run with
python -m, no sys.path edits)."""
import argparse
import importlib.util
import json
import pathlib
import re
import sys

import pytest

from benchmarks import harness, make_table

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def test_every_result_file_follows_the_schema_and_is_rendered():
    files = harness.read_results(str(RESULTS))           # each one validated
    assert len(files) == len(list(RESULTS.glob("*.json"))) >= 19
    section = make_table.build_section(str(RESULTS))
    for d in files:
        assert f"| {d['_file']} |" in section, d["_file"]
        assert d["machine"]["load_average"].keys() >= {"start", "end"}


def test_speedup_rows_share_one_shape():
    kinds = {"compile_count", "slot_trim", "correction_caching", *make_table.SPEEDUPS}
    seen = set()
    for d in harness.read_results(str(RESULTS)):
        if d["benchmark"] not in kinds:
            continue
        seen.add(d["benchmark"])
        for r in d["rows"]:
            assert {"setting", "before_label", "after_label", "metric", "before", "after",
                    "speedup", "max_abs_diff"} <= set(r), d["_file"]
            b, a = r["before"][r["metric"]], r["after"][r["metric"]]
            want = a / b if r["metric"].endswith("_per_s") else b / a
            assert r["speedup"] == pytest.approx(want, rel=2e-2), (d["_file"], r["setting"])
    assert seen == kinds


def test_make_table_refuses_a_file_it_cannot_render(tmp_path):
    good = harness.read_result(str(RESULTS / "stm_step_cpu.json"))
    harness.write_result(str(tmp_path / "x.json"), {**good, "benchmark": "nobody_renders_me"})
    with pytest.raises(SystemExit, match="x.json"):
        make_table.build_section(str(tmp_path))


def test_write_result_checks_the_schema(tmp_path):
    run = harness.Run("stm_step", "cpu", str(REPO / "benchmarks" / "stm_step.py"),
                      ["--size", "32x48"], settings={"objects": 1})
    run.add_row({"arch": "resnet10"}, show=False)
    path = tmp_path / "r.json"
    run.write(str(path), extra=1)
    data = harness.read_result(str(path))
    assert data["command"] == "python -m benchmarks.stm_step --size 32x48"
    assert data["machine"]["load_average"]["end"] is not None and data["extra"] == 1
    assert data["machine"]["versions"]["python"]
    for broken in ({**data, "schema": 2}, {k: v for k, v in data.items() if k != "rows"},
                   {**data, "machine": {"device": "x"}}):
        with pytest.raises(ValueError):
            harness.write_result(str(tmp_path / "bad.json"), broken)
    assert not (tmp_path / "bad.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]      # no temporary left


def test_time_calls_and_alternate():
    calls = []
    t = harness.time_calls(lambda: calls.append("f") or len(calls), 3,
                           warmup=lambda: calls.append("w") or "first")
    assert calls == ["w", "f", "f", "f"] and t.first == "first" and t.last == 4
    assert set(t.stats) == {"warmup_s", "median_s", "min_s", "runs_s", "repeats"}
    assert t.stats["repeats"] == 3 and len(t.stats["runs_s"]) == 3
    assert t.stats["min_s"] <= t.stats["median_s"]
    # a budget that is always short stops after one timed call
    assert harness.time_calls(lambda: None, 5, remaining=lambda: 0.0).stats["repeats"] == 1
    order = []
    res = harness.alternate({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                            2, zigzag=True, prepare=lambda name: order.append(name.upper()))
    assert order == ["a", "b", "A", "a", "B", "b", "B", "b", "A", "a"]
    assert res["a"].stats["repeats"] == 2 and res["a"].stats["warmup_s"] is not None
    res = harness.alternate({"a": lambda: None}, 2, warmup=False)
    assert res["a"].stats["warmup_s"] is None


def test_speedup_row_compares_times_and_rates():
    r = harness.speedup_row("s", "old", "new", {"median_s": 2.0}, {"median_s": 1.0})
    assert r["speedup"] == 2.0 and r["metric"] == "median_s" and r["max_abs_diff"] is None
    r = harness.speedup_row("s", "old", "new", {"clips_per_s": 2.0}, {"clips_per_s": 3.0},
                            metric="clips_per_s", max_abs_diff=0.0, extra=1)
    assert r["speedup"] == 1.5 and r["extra"] == 1


def test_size_parser():
    p = argparse.ArgumentParser()
    harness.add_size(p, "64x96")
    assert p.parse_args([]).size == (64, 96)
    assert p.parse_args(["--size", "480X854"]).size == (480, 854)
    for bad in ("240", "240x", "0x5", "a x b"):
        with pytest.raises(SystemExit):
            p.parse_args(["--size", bad])


def test_benchmarks_and_experiments_never_edit_sys_path():
    offenders = []
    for folder in ("benchmarks", "experiments"):
        for path in (REPO / folder).rglob("*.py"):
            text = path.read_text()
            if re.search(r"sys\.path\s*(\.insert|\.append|\[|=|\+=)", text):
                offenders.append(str(path.relative_to(REPO)))
    assert not offenders


def test_commands_in_docs_use_python_m():
    """Scripts of benchmarks/ and experiments/ are run as modules: no document, script or
    docstring tells anyone to run ``python benchmarks/X.py``. Excepted: the commands that
    ran, as result files recorded them (the files, and the tables generated from them)."""
    pattern = re.compile(r"python3? (benchmarks|experiments)/\w+\.py")
    generated = re.compile(r"<!-- generated:begin -->.*?<!-- generated:end -->", re.S)
    offenders = []
    for path in REPO.rglob("*"):
        if (path.suffix not in (".py", ".md", ".sh", ".toml") or ".git" in path.parts
                or "results" in path.parts or path.name == "test_bench_harness.py"):
            continue
        text = generated.sub("", path.read_text())
        for n, line in enumerate(text.splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(REPO)}: {line.strip()}")
    assert not offenders, offenders


def test_result_files_are_json_with_a_final_newline():
    for path in RESULTS.glob("*.json"):
        text = path.read_text()
        assert text.endswith("}\n") and json.loads(text)["schema"] == 1, path.name


def test_import_checkout_takes_only_the_named_modules(tmp_path, monkeypatch):
    """benchmarks.official.import_checkout: a checkout's own modules import each other (as with
    the checkout first on sys.path), sys.path is untouched, other names are not taken from it."""
    from benchmarks.official import import_checkout

    (tmp_path / "vosjax_fake_helpers.py").write_text("X = 1\n")
    (tmp_path / "vosjax_fake_model.py").write_text("from vosjax_fake_helpers import *\nY = X + 1\n")
    (tmp_path / "json.py").write_text("raise ImportError('a checkout must not shadow json')\n")
    names = ("vosjax_fake_model", "vosjax_fake_helpers")
    for n in names:
        monkeypatch.delitem(sys.modules, n, raising=False)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    path = list(sys.path)
    model = import_checkout(str(tmp_path), names, "vosjax_fake_model")
    assert model.Y == 2 and model.__file__ == str(tmp_path / "vosjax_fake_model.py")
    assert sys.path == path
    assert importlib.util.find_spec("json").origin != str(tmp_path / "json.py")
    for n in names:
        sys.modules.pop(n, None)
