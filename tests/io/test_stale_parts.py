"""Temporary files that a killed save left behind are removed, and only those: never a file a
running process may still be writing, never anything outside the folder, never through a link."""
import os
import time

import pytest

from segstudio.io import atomic
from segstudio.io.atomic import remove_stale_parts


def _gone_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def _touch(path, age_s: float = 0.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half")
    if age_s:
        t = time.time() - age_s
        os.utime(path, (t, t))
    return path


@pytest.mark.skipif(not hasattr(os, "kill"), reason="needs process ids")
def test_only_leftovers_of_writers_that_are_gone_are_removed(tmp_path, monkeypatch):
    dead = _gone_pid()
    stale = [_touch(tmp_path / f".a.png.{dead}-abc_1234.part", age_s=5),
             _touch(tmp_path / "sub" / f".b.png.{dead}-zzzzzzzz.part", age_s=5),
             _touch(tmp_path / ".c.png.k2j4h5g6.part", age_s=2 * 3600)]     # before pids
    kept = [_touch(tmp_path / f".d.png.{os.getpid()}-abcdefgh.part", age_s=5),  # this process
            _touch(tmp_path / ".e.png.1-abcdefgh.part", age_s=5),              # pid 1 runs
            _touch(tmp_path / ".f.png.k2j4h5g6.part", age_s=60),               # may be writing
            _touch(tmp_path / "g.png.abcdefgh.part"),                           # not hidden
            _touch(tmp_path / f".h.png.{dead}-abcdefgh.partial"),
            _touch(tmp_path / f".i.png.{dead}-abc.part"),
            _touch(tmp_path / "labels.png"),
            _touch(tmp_path / f".j.png.{dead}-abcdefgh.part", age_s=-30)]        # after start
    monkeypatch.setattr(atomic, "_STARTED", time.time())    # this process started just now
    outside = _touch(tmp_path.parent / f"{tmp_path.name}-other" / f".x.png.{dead}-abcdefgh.part")
    (tmp_path / "link").symlink_to(outside.parent, target_is_directory=True)
    (tmp_path / f".l.png.{dead}-abcdefgh.part").symlink_to(outside)
    removed = remove_stale_parts(tmp_path)
    assert sorted(removed) == sorted(stale)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept) and outside.exists()
    assert (tmp_path / f".l.png.{dead}-abcdefgh.part").is_symlink()
    assert remove_stale_parts(tmp_path / "missing") == []


def test_a_temporary_file_being_written_now_is_never_removed(tmp_path):
    target = tmp_path / "labels" / "a.png"
    with atomic.atomic_open(target) as f:
        f.write(b"partly")
        (part,) = list(target.parent.glob(".a.png.*.part"))
        assert str(os.getpid()) in part.name
        assert remove_stale_parts(tmp_path) == []
        f.write(b" written")
    assert target.read_bytes() == b"partly written"
    assert list(target.parent.iterdir()) == [target]
