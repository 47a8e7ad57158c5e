"""Adapters for the official code the benchmarks compare against: checkouts passed on the
command line, never vendored, imported by path.

* :mod:`.stm_training`: lyxok1/STM-Training (branch ``cycle``): its ``STAN`` model, test loop
  and training update (inference, training and GPU benchmarks; ``tests/golden``).
* :mod:`.stm_original`: seoungwugoh/STM: its ``STM`` model and ``eval_DAVIS.py`` loop
  (``benchmarks/golden_stm_original.py``).
* :mod:`.torchvision_standin`: the torchvision ResNet layout, for machines without torchvision.
* :mod:`.davis_toolkit`: the davis2017-evaluation toolkit, run as a subprocess with its own
  Python (``score_timing``, ``toolkit_compare``).

This module holds what the PyTorch adapters share: :func:`import_checkout` imports named
top-level modules from a checkout without putting the checkout on ``sys.path`` (a finder
that answers for those names only, so nothing else of the checkout can shadow an installed
module), and :func:`placeholders` registers empty modules for third-party packages the
checkouts import at module level but the model code never uses (opencv, lmdb, ...), when
they are not installed.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types


class _Placeholder:
    """Any attribute, call or subscript yields another placeholder."""

    def __call__(self, *args, **kwargs):
        return _Placeholder()

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Placeholder()


class _PlaceholderModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Placeholder()


class _PlaceholderFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Creates placeholder modules (and submodules) for the top-level names in ``names``."""

    def __init__(self):
        self.names: set[str] = set()

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] not in self.names:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec):
        module = _PlaceholderModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def _missing(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):
        return True


def _finder(kind):
    for f in sys.meta_path:
        if isinstance(f, kind):
            return f
    return None


def placeholders(names) -> None:
    """Let ``import NAME`` (and ``NAME.sub``) succeed for each of ``names`` that is not
    installed, with a module whose every attribute is a do-nothing placeholder."""
    finder = _finder(_PlaceholderFinder)
    if finder is None:
        finder = _PlaceholderFinder()
        sys.meta_path.append(finder)        # last: an installed package always wins
    finder.names.update(n for n in names if _missing(n))


class _CheckoutFinder(importlib.abc.MetaPathFinder):
    """Finds the top-level modules ``names`` in the folder ``root`` and nowhere else."""

    def __init__(self, root: str, names):
        self.root, self.names = root, frozenset(names)

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.names:
            return None        # submodules resolve through their package's __path__
        return importlib.machinery.PathFinder.find_spec(fullname, [self.root])


def import_checkout(checkout: str, names, module: str):
    """Import ``module`` from the folder ``checkout``, whose top-level modules ``names`` (the
    checkout's own packages and modules that import each other) are found there first, as
    if the checkout were the first entry of ``sys.path``; nothing else is taken from it."""
    root = os.path.abspath(checkout)
    names = frozenset(names)
    for f in list(sys.meta_path):       # a second checkout replaces the first
        if isinstance(f, _CheckoutFinder) and f.names & names:
            sys.meta_path.remove(f)
    sys.meta_path.insert(0, _CheckoutFinder(root, names))
    return importlib.import_module(module)
