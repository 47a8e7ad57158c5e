"""Test configuration: 8 fake CPU devices (set before JAX starts) and shared-data fixtures."""
import os

# Must happen before jax is imported anywhere: sharding tests use 8 CPU devices.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
    os.environ["XLA_FLAGS"] = (_flags + " --xla_force_host_platform_device_count=8").strip()

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


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.gpu`` tests skip cleanly when JAX has no GPU backend (CI, most laptops).
    ``@pytest.mark.slow`` tests run by default; deselect them with ``-m "not slow"``."""
    gpu_items = [item for item in items if "gpu" in item.keywords]
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
