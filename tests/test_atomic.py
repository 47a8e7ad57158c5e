"""vosjax.atomic: nothing half-written under a final name, nothing left behind on failure."""
import json
import os

import pytest

from vosjax import atomic


def test_write_json_is_atomic(tmp_path):
    path = tmp_path / "x.json"
    assert atomic.write_json(path, {"a": 1}) == str(path)
    assert path.read_text() == '{\n  "a": 1\n}'               # indent 2, no trailing newline
    with pytest.raises(TypeError):
        atomic.write_json(path, {"a": object()})      # not serialisable: the old file survives
    with pytest.raises(TypeError):
        atomic.write_json(tmp_path / "y.json", {"a": object()})        # and no new file
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_failing_writer_leaves_no_file_and_no_temp(tmp_path):
    path = tmp_path / "x.png"
    with pytest.raises(OSError, match="disk full"):
        with atomic.replacing(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half")
            raise OSError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_reader_sees_old_or_whole_new_file(tmp_path, monkeypatch):
    """The final name changes only by one rename of a complete temporary file."""
    path = tmp_path / "x.txt"
    atomic.write_text(path, "old")
    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append((open(dst).read(), open(src).read()))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    new = "new " * 100_000
    atomic.write_text(path, new)
    assert seen == [("old", new)] and path.read_text() == new
    with atomic.replacing(path) as tmp:
        with open(tmp, "w") as f:
            f.write("part")
            assert path.read_text() == new                        # not visible mid-write
    assert path.read_text() == "part"


def test_commit_and_discard(tmp_path):
    out = atomic.replacing(tmp_path / "a.zip")
    assert out.tmp == f"{tmp_path / 'a.zip'}.tmp-{os.getpid()}"
    with open(out.tmp, "wb") as f:
        f.write(b"zip")
    assert out.commit() == str(tmp_path / "a.zip")
    other = atomic.replacing(tmp_path / "b.zip")
    with open(other.tmp, "wb") as f:
        f.write(b"zip")
    other.discard()
    other.discard()                                               # twice is fine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]
    assert atomic.write_bytes(tmp_path / "c.bin", b"\x00\x01") == str(tmp_path / "c.bin")
    assert (tmp_path / "c.bin").read_bytes() == b"\x00\x01"


def test_replacing_dir(tmp_path):
    final = tmp_path / "deep" / "seq"
    with pytest.raises(RuntimeError):
        with atomic.replacing_dir(final) as tmp:
            (open(os.path.join(tmp, "00000.png"), "w")).close()
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path / "deep") == []                    # no half folder, no temp
    with atomic.replacing_dir(final) as tmp:
        assert os.listdir(tmp) == []
        open(os.path.join(tmp, "a"), "w").close()
    assert os.listdir(final) == ["a"]
    with pytest.raises(OSError):                                  # not empty, no overwrite
        with atomic.replacing_dir(final) as tmp:
            open(os.path.join(tmp, "b"), "w").close()
    assert os.listdir(final) == ["a"] and os.listdir(tmp_path / "deep") == ["seq"]
    with atomic.replacing_dir(final, overwrite=True) as tmp:
        open(os.path.join(tmp, "b"), "w").close()
    assert os.listdir(final) == ["b"] and os.listdir(tmp_path / "deep") == ["seq"]
    (tmp_path / "empty").mkdir()
    with atomic.replacing_dir(tmp_path / "empty") as tmp:        # an empty folder is replaced
        open(os.path.join(tmp, "c"), "w").close()
    assert os.listdir(tmp_path / "empty") == ["c"]
