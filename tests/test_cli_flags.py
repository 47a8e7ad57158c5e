"""One flag style for every command line: absl flags with underscored names.

``train.py`` / ``evaluate.py`` (absl's global flags, ``app.run``) and ``python -m vosjax.convert
| vosjax.export | vosjax.erf`` (a private ``FlagValues`` per call, :mod:`vosjax.cli`): unknown
and old dashed flags are refused with the flag named, ``--help`` works, and importing the
``vosjax`` tools defines no global flag.
"""
import os
import pathlib
import subprocess
import sys

import pytest
from absl import flags

from vosjax import cli, convert, erf, export

REPO = pathlib.Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
TOOLS = {"convert": convert, "export": export, "erf": erf}


def run(*args):
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=300)


def refused(capsys, tool, argv):
    """``tool.main(argv)`` exits 2 before doing anything; its stderr."""
    with pytest.raises(SystemExit) as e:
        TOOLS[tool].main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"python -m vosjax.{tool}: error: ")
    return err


# Each tool's old (argparse) dashed flag names, now unknown.
OLD_NAMES = {
    "convert": [],
    "export": ["--num-slots=3", "--memory-slots=4", "--mem-every=5", "--correction-iters=2",
               "--correction-rate=1", "--correction-every=5"],
    "erf": ["--random-weights", "--ref-frames=1", "--n-iter=2"],
}


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_vosjax_tools_refuse_unknown_and_dashed_flags(tool, capsys, tmp_path):
    for bad in ["--no_such_flag=1", *OLD_NAMES[tool]]:
        name = bad.lstrip("-").split("=")[0]
        err = refused(capsys, tool, [bad, "--out", str(tmp_path / "o")])
        assert f"Unknown command line flag '{name}'" in err
        if "-" in name:
            assert f"Did you mean: {name.replace('-', '_')}" in err
    assert not (tmp_path / "o").exists()


def test_vosjax_tools_name_the_bad_flag(capsys, tmp_path):
    out = str(tmp_path / "o")
    # Missing required flags, a bad enum value, positional arguments.
    assert "--out" in refused(capsys, "convert", ["--from=stm", "w.npz"])
    assert "--from=pth" in refused(capsys, "convert", ["--from=pth", "w.npz", "--out", out])
    assert "missing SOURCE" in refused(capsys, "convert", ["--from=stm", "--out", out])
    assert "unexpected arguments: b" in refused(capsys, "convert",
                                                ["--from=stm", "a", "b", "--out", out])
    # Sizes are HxW, as in benchmarks/: the old "--size H W" form is refused.
    base = ["--checkpoint", str(tmp_path), "--objects=1", "--out", out]
    assert "flag --size=32: expected HxW" in refused(capsys, "export",
                                                     [*base, "--size", "32", "48"])
    assert "flag --size=0x48" in refused(capsys, "export", [*base, "--size=0x48"])
    assert "--objects" in refused(capsys, "export", [*base[:2], "--size=32x48", "--out", out])
    erf_base = ["--frames", str(tmp_path), "--mask", "m.png", "--out", out]
    assert "flag --size=8x8: must be at least 16x16" in refused(
        capsys, "erf", [*erf_base, "--random_weights", "--size=8x8"])
    assert "--compute=fast" in refused(capsys, "erf",
                                       [*erf_base, "--random_weights", "--compute=fast"])
    for both in ([], ["--random_weights", "--checkpoint", out]):
        assert "exactly one of --checkpoint and --random_weights" in refused(
            capsys, "erf", [*erf_base, *both])
    assert not (tmp_path / "o").exists()


def test_size_flag():
    fv = flags.FlagValues()
    holder = cli.define_size("size", "240x427", "frame size", flag_values=fv)
    fv(["prog"])
    assert holder.value == (240, 427) and fv["size"].default_as_str == "'240x427'"
    fv(["prog", "--size=480X854"])
    assert holder.value == (480, 854)
    for bad in ("480", "480x", "ax2", "0x10", "2x3x4"):
        with pytest.raises(ValueError):
            cli.parse_size(bad)


def test_importing_the_tools_defines_no_global_flag():
    assert not [m for m in flags.FLAGS.flags_by_module_dict() if m.startswith("vosjax")]
    for name in ("out", "size", "checkpoint", "frames", "from", "num_slots"):
        assert name not in flags.FLAGS
    # In a fresh process: the tools' imports and several parses leave absl's FLAGS unchanged.
    code = """if True:
        from absl import flags
        before = sorted(flags.FLAGS)
        from vosjax import cli, convert, erf, export
        for _ in range(2):
            for tool in (convert, export, erf):
                fv = tool.define_flags()
                try:
                    cli.parse(fv, ["--help"], prog="p", description="d")
                except SystemExit as e:
                    assert e.code == 0
        assert sorted(flags.FLAGS) == before, set(flags.FLAGS) ^ set(before)
        print("ok")"""
    r = run("-c", code)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]


@pytest.mark.parametrize("tool,flag", [("convert", "--from"), ("export", "--memory_slots"),
                                       ("erf", "--ref_frames")])
def test_help_as_module(tool, flag):
    r = run("-m", f"vosjax.{tool}", "--help")
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"USAGE: python -m vosjax.{tool} [flags]" in r.stdout and flag in r.stdout
    assert "--flagfile:" not in r.stdout
    full = run("-m", f"vosjax.{tool}", "--helpfull")
    assert full.returncode == 0 and flag in full.stdout and "--flagfile:" in full.stdout


def test_root_scripts_refuse_unknown_and_dashed_flags(tmp_path):
    for bad in ("--davis-root=x", "--bar-chart", "--first-mask=x", "--num-processes=2"):
        r = run("evaluate.py", "--score", bad)
        name = bad.lstrip("-").split("=")[0]
        assert r.returncode == 1 and f"Unknown command line flag '{name}'" in r.stderr, r.stderr
    r = run("evaluate.py", "--score", f"--davis_root={tmp_path}", f"--results={tmp_path}",
            "--bar_chart")
    assert r.returncode == 1 and "val.txt" in r.stderr     # the underscored names are taken
    r = run("train.py", "--config=configs/demo.py", f"--workdir={tmp_path / 'w'}", "--no_such")
    assert r.returncode == 1 and "Unknown command line flag 'no_such'" in r.stderr, r.stderr
    assert not (tmp_path / "w").exists()
