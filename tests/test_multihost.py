"""Several hosts, proven on one machine: ``train.py`` (the demo config, shortened) on two real
processes joined by ``jax.distributed`` (a local coordinator, CPU collectives over gloo, one
device each, each with its own grain input worker) ends with the parameters of the
one-process run with the same global batch; only process 0 writes metrics; each step's
checkpoint is written once, and a run stopped after step 2 resumes from it on two processes.

The command line is the README's "Multi-host training" one, with the coordinator on
127.0.0.1."""
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np

from launch import REPO, TOY_DEMO, env
from vosjax.checkpoint import load_train_state
from vosjax.families import load_model

STEPS = 3
DEMO = ["train.py", "--config", "configs/demo.py", *TOY_DEMO,
        "--config.train.checkpoint_every=1", "--config.train.keep_checkpoints=5",
        "--config.train.log_every=1", "--config.eval.enabled=False",
        "--config.data.synthetic.num_videos=6", "--config.data.synthetic.num_frames=8"]
TIMEOUT = 900


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra):
    e = env(JAX_PLATFORMS="cpu", **extra)
    for k in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        if k not in extra:
            e.pop(k, None)
    return e


def train(workdir, steps, processes):
    """``train.py`` on ``processes`` processes (one device each); ``[(stdout, stderr)]`` per
    process. Two processes get the README's variables and ``--config.distributed=True``."""
    flags = [*DEMO, f"--config.train.num_train_steps={steps}", "--workdir", str(workdir)]
    if processes == 1:
        envs = [_env()]
        flags.append("--config.data.num_workers=0")      # and the 2-process runs have 1 each
    else:
        port = _free_port()
        envs = [_env(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                     JAX_NUM_PROCESSES=str(processes), JAX_PROCESS_ID=str(i),
                     JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo") for i in range(processes)]
        flags.append("--config.distributed=True")
    procs = [subprocess.Popen([sys.executable, *flags], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for env in envs]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=TIMEOUT))
    finally:
        for p in procs:                  # one failed: the others wait at a barrier forever
            if p.poll() is None:
                p.kill()
                p.communicate()
    for i, (p, (_, err)) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, f"process {i} of {processes}: {err[-3000:]}"
    return outs


def metric_rows(workdir):
    return [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]


def test_two_processes_train_as_one_write_once_and_resume(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    train(one, STEPS, processes=1)

    # Two processes, stopped after step 2, then the same command for 3 steps: it resumes.
    first = train(two, STEPS - 1, processes=2)
    assert [r["step"] for r in metric_rows(two)] == [1, 2]
    (p0, _), (p1, _) = train(two, STEPS, processes=2)
    assert f"resuming from step {STEPS - 1}: {two / 'checkpoints' / str(STEPS - 1)}" in p0
    assert "resuming" not in p1 and "resuming" not in first[1][0]   # only process 0 logs

    # Only process 0 writes metrics: one row a step, one TensorBoard file a run.
    rows = metric_rows(two)
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert len(list((two / "tensorboard").glob("events.*"))) == 2
    want = metric_rows(one)
    np.testing.assert_allclose([r["loss"] for r in rows], [r["loss"] for r in want],
                               rtol=1e-4)

    # Each step's checkpoint once: one folder a step, and the array data of one copy of the
    # state (orbax splits the replicated arrays' writing between the processes; a second
    # writer would double it).
    assert sorted(os.listdir(two / "checkpoints")) == [str(s) for s in range(1, STEPS + 1)]
    for step in range(1, STEPS + 1):
        mine, ref = (_data_bytes(w / "checkpoints" / str(step) / "state") for w in (two, one))
        assert abs(mine - ref) <= 0.02 * ref, (step, mine, ref)
    meta = json.load(open(two / "checkpoints" / str(STEPS) / "meta" / "metadata"))
    assert meta["sampler"]["step"] == STEPS

    # The parameters of the one-process run with the same global batch (4 clips), up to the
    # order of the gradient sums (a cross-process all-reduce here): compared through the
    # updates of steps 2 and 3, the part that training changes. The workdir's own model
    # (what evaluate.py loads, here on one process) is the last step.
    a1, a3, b1, b3 = (params_at(w, s) for w in (two, one) for s in (1, STEPS))
    assert np.linalg.norm(b3 - b1) > 0
    assert np.linalg.norm((a3 - a1) - (b3 - b1)) <= 1e-3 * np.linalg.norm(b3 - b1)
    assert np.linalg.norm(a1 - b1) <= 1e-5 * np.linalg.norm(b1)
    _, variables = load_model(two)
    np.testing.assert_array_equal(_flat(variables["params"]), a3)


def params_at(workdir, step):
    return _flat(load_train_state(os.path.join(workdir, "checkpoints"), step)["params"])


def _flat(tree):
    return np.concatenate([np.ravel(np.asarray(x)) for x in jax.tree_util.tree_leaves(tree)])


def _data_bytes(state_dir):
    """Bytes of a checkpoint's array data (the ``d/`` folders of its OCDBT stores)."""
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(state_dir) if os.path.basename(root) == "d"
               for f in files)
