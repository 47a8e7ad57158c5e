"""vosjax's benchmarks, a package run from the repository root as ``python -m benchmarks.NAME``
(see benchmarks/README.md)."""
