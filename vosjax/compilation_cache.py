"""A persistent XLA compilation cache shared by every run on a machine (train.py, evaluate.py).

A relaunch of the same command (a restart after preemption, the next evaluation of a sweep,
another seed) then loads its compiled programs from disk instead of compiling them again.

Location (``config.compile_cache``): ``""`` (the configs' default) uses
``$JAX_COMPILATION_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/vosjax/xla`` (``~/.cache/...``);
``"off"`` disables the cache; any other value is the folder to use.
"""
from __future__ import annotations

import os

OFF = "off"


def default_dir() -> str:
    env = os.environ.get("JAX_COMPILATION_CACHE_DIR")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "vosjax", "xla")


def enable(location: str = "") -> str | None:
    """Point JAX's persistent compilation cache at ``location`` (see the module docstring) and
    cache every program, however fast it compiled. Returns the folder, or None when off."""
    import jax

    if location == OFF:
        return None
    path = os.path.abspath(os.path.expanduser(location or default_dir()))
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ValueError(f"config.compile_cache={location!r}: cannot create {path} ({e})") from None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


__all__ = ["enable", "default_dir", "OFF"]
