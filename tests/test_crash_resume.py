"""Real crashes: ``train.py`` (the demo config, shortened) killed with SIGKILL at random
moments and restarted with the same command ends bit-identical to an uninterrupted run; so does
a run whose newest checkpoint was truncated (it falls back to the previous step).

The kill points are random; the seed is printed on failure and ``VOSJAX_CRASH_SEED`` replays
it (the timing of a kill inside a step still varies with the machine's load)."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

from launch import REPO, TOY_DEMO, env
from loop_helpers import assert_same_variables
from vosjax.families import load_model

STEPS = 6
DEMO = ["train.py", "--config", "configs/demo.py", *TOY_DEMO,
        f"--config.train.num_train_steps={STEPS}",
        "--config.train.checkpoint_every=1", "--config.train.keep_checkpoints=3",
        "--config.train.log_every=1", "--config.eval.enabled=False",
        "--config.data.synthetic.num_videos=8"]


def start(workdir):
    return subprocess.Popen([sys.executable, *DEMO, "--workdir", str(workdir)], cwd=REPO,
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(workdir):
    p = start(workdir)
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
    return out, err


def logged_steps(workdir):
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return sum(1 for line in f if line.endswith("\n"))


def kill_at(workdir, rows, delay):
    """Start the command, wait until ``rows`` steps are logged, sleep ``delay`` s, SIGKILL."""
    p = start(workdir)
    deadline = time.monotonic() + 300
    while logged_steps(workdir) < rows and p.poll() is None:
        assert time.monotonic() < deadline, "training made no progress"
        time.sleep(0.05)
    time.sleep(delay)
    if p.poll() is None:
        p.send_signal(signal.SIGKILL)
    p.communicate()
    return p.returncode


def final_variables(workdir):
    _, variables = load_model(workdir)
    return variables


assert_bit_identical = assert_same_variables


def losses(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [(r["step"], r["loss"]) for r in map(json.loads, f)]


def test_sigkill_and_truncated_checkpoint_resume_bit_identical(tmp_path):
    seed = int(os.environ.get("VOSJAX_CRASH_SEED", time.time_ns() % 2**31))
    rng = random.Random(seed)
    ref = tmp_path / "straight"
    finish(ref)
    expected = final_variables(ref)
    expected_losses = losses(ref)
    assert [s for s, _ in expected_losses] == list(range(1, STEPS + 1))

    # Three kills at random points (after a random number of logged steps, plus a random
    # fraction of a step: inside a step, a checkpoint write or a metrics write), then finish.
    wd = tmp_path / "killed"
    kills = []
    for rows in sorted(rng.sample(range(1, STEPS - 1), 3)):
        delay = rng.uniform(0.0, 1.5)
        kills.append((rows, round(delay, 2), kill_at(wd, rows, delay)))
    out, _ = finish(wd)
    where = f"seed {seed}, kills (rows, delay, rc) {kills}"
    assert any(rc == -signal.SIGKILL for *_, rc in kills), where
    assert "resuming from step" in out, where
    assert_bit_identical(final_variables(wd), expected)
    assert losses(wd) == expected_losses, where

    # The newest checkpoint truncated (a full disk): set aside, resumed from the step before,
    # ends equal to the uninterrupted run.
    cut = tmp_path / "truncated"
    shutil.copytree(ref, cut)
    newest = cut / "checkpoints" / str(STEPS)
    for root, _, files in os.walk(newest):
        for name in files:
            os.truncate(os.path.join(root, name), os.path.getsize(os.path.join(root, name)) // 2)
    out, err = finish(cut)
    assert f"resuming from step {STEPS - 1}: {cut / 'checkpoints' / str(STEPS - 1)}" in out
    assert f"{newest} cannot be read" in err
    assert [p.name.split("-")[0] for p in (cut / "checkpoints-unreadable").iterdir()] == [
        str(STEPS)]
    assert_bit_identical(final_variables(cut), expected)
    assert losses(cut) == expected_losses
