"""Atomic file and folder writes: write under a temporary name in the same folder, then rename.

A reader never sees a half-written file, and a failed write leaves nothing behind: the
temporary file is removed. (A killed process may leave ``<path>.tmp-<pid>``; the final name is
untouched.)

* :func:`write_bytes`, :func:`write_text`, :func:`write_json`: whole files.
* :class:`replacing`: a temporary path for writers that need one (PIL, zip, npz), renamed to
  the final path when the ``with`` block succeeds, or by :meth:`replacing.commit`.
* :func:`replacing_dir`: the same for a folder.

Standard library only, so every layer of the package can use it.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator


def temp_path(path: str | os.PathLike) -> str:
    """The temporary name of ``path`` for this process: ``<path>.tmp-<pid>``."""
    return f"{os.fspath(path)}.tmp-{os.getpid()}"


class replacing:  # noqa: N801  (a context manager, named like contextlib.closing)
    """A temporary file :attr:`tmp` next to ``path`` that becomes ``path``.

    ``with replacing(path) as tmp:`` yields the temporary path; when the block succeeds it is
    renamed to ``path``, otherwise removed. Writers that outlive a block call :meth:`commit`
    or :meth:`discard` themselves.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.tmp = temp_path(self.path)

    def commit(self) -> str:
        """Rename the temporary file to ``path``; returns ``path``."""
        os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        """Remove the temporary file if it exists (``path`` is left as it was)."""
        if os.path.exists(self.tmp):
            os.remove(self.tmp)

    def __enter__(self) -> str:
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.commit()
        finally:
            self.discard()


def write_bytes(path: str | os.PathLike, data: bytes) -> str:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with replacing(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return os.fspath(path)


def write_text(path: str | os.PathLike, text: str) -> str:
    """Write ``text`` to ``path`` atomically; returns the path."""
    with replacing(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
    return os.fspath(path)


def write_json(path: str | os.PathLike, obj, **kwargs) -> str:
    """Write ``obj`` as JSON (``indent=2``, no trailing newline; ``kwargs`` go to
    ``json.dumps``) to ``path`` atomically; returns the path. An object that does not
    serialise raises before any file is touched."""
    return write_text(path, json.dumps(obj, indent=2, **kwargs))


@contextlib.contextmanager
def replacing_dir(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[str]:
    """Yield a new empty temporary folder next to ``path`` (parents created); when the block
    succeeds it is renamed to ``path``, otherwise removed.

    An existing ``path`` must be empty unless ``overwrite``: then it is renamed aside, the new
    folder takes its place and the old one is deleted.
    """
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temp_path(path)
    shutil.rmtree(tmp, ignore_errors=True)    # left by an earlier process with this pid
    os.makedirs(tmp)
    try:
        yield tmp
        if not os.path.exists(path):
            os.replace(tmp, path)
        elif not overwrite:
            os.rmdir(path)                    # OSError if it is not empty
            os.replace(tmp, path)
        else:
            old = f"{path}.old-{os.getpid()}"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
