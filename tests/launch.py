"""Launching ``train.py`` / ``evaluate.py`` as a user does, in a subprocess (the CLI, crash,
multi-host and compilation-cache tests).

``TOY_DEMO``: flags that shrink ``configs/demo.py`` to toy sizes (narrow memory, 32x48 2-frame
clips without the cycle term, a constant learning rate). The same loop and command line as the
demo; a small program to compile, and the same program for every test that launches it (the
persistent compilation cache shares it between them), whatever the step count.
"""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Under pytest-xdist the worker processes already fill the cores, so each worker (conftest.py)
# and each child a test launches runs XLA's CPU ops on one thread instead of one per core:
# no oversubscription (two long test files in parallel: 130 s -> 104 s wall on 2 cores).
# ``-n 0`` keeps XLA's threads.
THREAD_FLAGS = ("--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
                if os.environ.get("PYTEST_XDIST_WORKER") else "")

TOY_DEMO = ["--config.model.keydim=16", "--config.model.valdim=32", "--config.model.mdim=16",
            "--config.data.clip_len=2", "--config.train.cycle=False",
            "--config.data.size=(32, 48)", "--config.data.synthetic.height=32",
            "--config.data.synthetic.width=48", "--config.eval.synthetic.height=32",
            "--config.eval.synthetic.width=48", "--config.train.schedule=constant",
            "--config.train.warmup_steps=0"]


def env(**extra):
    """The test process's environment for a child: this checkout importable, one CPU device
    (as a user's run; the tests' 8 fake devices are dropped; ``THREAD_FLAGS`` kept), plus
    ``extra``."""
    e = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
             XLA_FLAGS=THREAD_FLAGS)
    e.update(extra)
    return e


def run(args, timeout=900, **kw):
    """``python ARGS`` in the checkout; the completed process (output captured as text)."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env(),
                          cwd=REPO, timeout=timeout, **kw)
