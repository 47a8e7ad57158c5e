"""Test configuration: the backend (CPU with 8 fake devices by default, set before JAX
starts), the ``gpu`` marker and shared-data fixtures.

Backends: by default every test runs on the CPU (``JAX_PLATFORMS=cpu``) and ``gpu``-marked
tests are skipped. ``VOSJAX_TEST_BACKEND=gpu python -m pytest -n 0 -m gpu`` runs the ``gpu``-marked
tests on JAX's default (GPU) backend, the CPU staying available for references; they skip
with a reason when JAX finds no GPU. In that mode unmarked tests are skipped (they assume the
8 fake CPU devices).
"""
import os

BACKEND = os.environ.get("VOSJAX_TEST_BACKEND", "cpu").lower()
if BACKEND not in ("cpu", "gpu"):
    raise ValueError(f"VOSJAX_TEST_BACKEND={BACKEND!r}: must be 'cpu' or 'gpu'")

# Must happen before jax is imported anywhere: sharding tests use 8 CPU devices.
if BACKEND == "cpu":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
    _flags += " --xla_force_host_platform_device_count=8"
from launch import THREAD_FLAGS  # noqa: E402  (one XLA thread per xdist worker)

os.environ["XLA_FLAGS"] = f"{_flags} {THREAD_FLAGS}".strip()

import pathlib  # noqa: E402
import tempfile  # noqa: E402

# Identical programs compiled by several tests (each train() call re-jits) are compiled once.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), "vosjax-test-jax-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
# ../shared next to the checkout (the project's reference material); VOSJAX_SHARED overrides.
SHARED = pathlib.Path(os.environ.get("VOSJAX_SHARED", REPO.parent / "shared"))
GOLDEN = SHARED / "golden" / "stm_training"
DAVIS_MINI = SHARED / "data" / "davis2016-mini"


def _require(path: pathlib.Path, what: str) -> pathlib.Path:
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{what} missing at {path}: CI must have ../shared")
        pytest.skip(f"{what} not found at {path} (a clone without ../shared; "
                    "set VOSJAX_SHARED to its location)")
    return path


@pytest.fixture(scope="session")
def golden_dir() -> pathlib.Path:
    """../shared/golden/stm_training (skips when absent outside CI)."""
    return _require(GOLDEN / "outputs.npz", "golden STM-Training data").parent


@pytest.fixture(scope="session")
def davis_mini() -> pathlib.Path:
    """../shared/data/davis2016-mini (skips when absent outside CI)."""
    return _require(DAVIS_MINI / "ImageSets", "davis2016-mini").parent


# The longest test files, longest first (cold-cache durations on the 2-core CI machine). The
# xdist workers take whole files (--dist loadfile) in collection order (--no-loadscope-reorder:
# xdist's default order, by test count, would hand out these few-test files last, leaving one
# worker alone with the longest files at the end); starting them first balances the two
# workers. Only the order changes. Re-measure with `--durations=0` when files grow.
LONGEST_FIRST = (
    "test_training_loop.py", "test_crash_resume.py", "test_multihost.py", "test_cli.py",
    "test_compilation_cache.py", "test_training_paths.py", "test_speedups.py",
    "test_golden_training.py", "test_gcseg_integration.py", "test_eval_many.py",
    "test_golden_stm_original.py", "test_gpu_bench.py", "test_gradients_fd.py",
    "test_compute_modes.py", "test_evaluate_e2e.py", "test_gcseg_judgement.py",
    "test_export.py",
)


def _schedule_rank(item) -> int:
    name = item.path.name
    return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config, items):
    """The longest files first (``LONGEST_FIRST``; a stable sort: the rest keep their order).

    ``@pytest.mark.gpu`` tests run only with ``VOSJAX_TEST_BACKEND=gpu`` and a GPU that JAX
    sees; they skip with the reason otherwise (CI, most laptops). With
    ``VOSJAX_TEST_BACKEND=gpu`` the other tests skip. ``@pytest.mark.slow`` tests run by
    default; deselect them with ``-m "not slow"``."""
    items.sort(key=_schedule_rank)
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if BACKEND == "cpu":
        skip = pytest.mark.skip(reason="gpu test: run with VOSJAX_TEST_BACKEND=gpu "
                                       "python -m pytest -m gpu on a machine with a GPU")
        for item in gpu_items:
            item.add_marker(skip)
        return
    skip_cpu = pytest.mark.skip(reason="VOSJAX_TEST_BACKEND=gpu runs only gpu-marked tests")
    for item in items:
        if "gpu" not in item.keywords:
            item.add_marker(skip_cpu)
    if not gpu_items:
        return
    import jax

    try:
        has_gpu = bool(jax.devices("gpu"))
    except RuntimeError:
        has_gpu = False
    if not has_gpu:
        skip = pytest.mark.skip(reason="needs a GPU (JAX has no GPU backend here)")
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def tiny():
    """The small random STM of :func:`stm_helpers.tiny_stm`: ``(model, variables)``."""
    from stm_helpers import tiny_stm
    return tiny_stm()


@pytest.fixture(scope="module")
def clip():
    """3 random frames and 2 box objects, 16x32, as device arrays ``(frames, masks)``."""
    import jax.numpy as jnp

    from stm_helpers import random_video
    frames, masks = random_video(3, 16, 32, seed=1)
    return jnp.asarray(frames), jnp.asarray(masks)
