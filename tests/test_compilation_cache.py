"""The persistent compilation cache: a second launch of the same command compiles nothing.

Each launch runs in a fresh process under a small harness that counts XLA compilations (calls
of JAX's backend compile, cache hits excluded) and prints the count at exit.
"""
import re
import subprocess
import sys

import pytest

from launch import REPO, TOY_DEMO, env

HARNESS = r"""
import atexit, runpy, sys
from jax._src import compiler
count = [0]
real = compiler.backend_compile_and_load
def counting(*args, **kwargs):
    count[0] += 1
    return real(*args, **kwargs)
compiler.backend_compile_and_load = counting
atexit.register(lambda: print(f"XLA_COMPILES={count[0]}", file=sys.stderr))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def launch(args, env_extra=None):
    e = env(**(env_extra or {}))
    e.pop("JAX_COMPILATION_CACHE_DIR", None)
    r = subprocess.run([sys.executable, "-c", HARNESS, *args], capture_output=True, text=True,
                       env=e, cwd=REPO, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return int(re.search(r"XLA_COMPILES=(\d+)", r.stderr).group(1))


def demo_args(workdir, cache):
    return ["train.py", "--config", "configs/demo.py", *TOY_DEMO, "--workdir", str(workdir),
            f"--config.compile_cache={cache}", "--config.train.num_train_steps=1",
            "--config.eval.num_videos=1",
            "--config.eval.compare_untrained=False", "--config.eval.synthetic.num_frames=4",
            "--config.data.synthetic.num_videos=2"]


def test_second_launch_compiles_nothing(tmp_path):
    cache = tmp_path / "xla"
    first = launch(demo_args(tmp_path / "a", cache))
    assert first >= 3, first           # init, train step, propagation programs at least
    assert any(cache.iterdir())
    # The same job launched again (a fresh workdir: it trains and evaluates again).
    assert launch(demo_args(tmp_path / "b", cache)) == 0


def test_default_location_and_bad_location(tmp_path, monkeypatch):
    from vosjax import compilation_cache

    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compilation_cache.default_dir() == str(tmp_path / "vosjax" / "xla")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "env"))
    assert compilation_cache.default_dir() == str(tmp_path / "env")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="config.compile_cache="):
        compilation_cache.enable(str(blocker / "sub"))
    assert compilation_cache.enable("off") is None
