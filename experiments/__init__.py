"""The experiments behind docs/experiments.md, a package run from the repository root as
``python -m experiments.NAME``; what the scripts share is in :mod:`experiments.common`."""
