"""Temporary files that a killed save left behind are removed, and only those segstudio can prove
it wrote: its marker, this machine and a process that is gone. Never a file a running process
(of this machine or another sharing the folder) may still be writing, never a user's file that
merely looks like a leftover, never anything outside the folder, never through a link."""
import os
import time

import pytest

from segstudio.io import atomic
from segstudio.io.atomic import host_tag, old_style_parts, remove_stale_parts, temp_prefix

HOST = host_tag()


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


def _ours(target: str, pid: int, host: str = HOST, rand: str = "abc_1234") -> str:
    return f".{target}.segstudio-tmp.{host}.{pid}.{rand}.part"


@pytest.mark.skipif(not hasattr(os, "kill"), reason="needs process ids")
def test_only_leftovers_of_this_machines_writers_that_are_gone_are_removed(tmp_path,
                                                                           monkeypatch):
    dead = _gone_pid()
    other_host = host_tag("another-machine.example.org")
    stale = [_touch(tmp_path / _ours("a.png", dead), age_s=5),
             _touch(tmp_path / "sub" / _ours("b.png", dead, rand="zzzzzzzz"), age_s=5)]
    kept = [_touch(tmp_path / _ours("d.png", os.getpid()), age_s=5),        # this process
            _touch(tmp_path / _ours("e.png", 1), age_s=5),                  # pid 1 runs
            _touch(tmp_path / _ours("f.png", dead, other_host), age_s=5),   # another machine
            _touch(tmp_path / _ours("g.png", dead)[1:]),                    # not hidden
            _touch(tmp_path / (_ours("h.png", dead) + "ial")),
            _touch(tmp_path / _ours("i.png", dead, rand="abc")),
            _touch(tmp_path / "labels.png"),
            _touch(tmp_path / _ours("j.png", dead), age_s=-30)]              # after start
    monkeypatch.setattr(atomic, "_STARTED", time.time())    # this process started just now
    outside = _touch(tmp_path.parent / f"{tmp_path.name}-other" / _ours("x.png", dead))
    (tmp_path / "link").symlink_to(outside.parent, target_is_directory=True)
    (tmp_path / _ours("l.png", dead)).symlink_to(outside)
    removed = remove_stale_parts(tmp_path)
    assert sorted(removed) == sorted(stale)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept) and outside.exists()
    assert (tmp_path / _ours("l.png", dead)).is_symlink()
    assert remove_stale_parts(tmp_path / "missing") == []


@pytest.mark.skipif(not hasattr(os, "kill"), reason="needs process ids")
def test_a_users_own_files_that_look_like_old_leftovers_are_never_removed(tmp_path, monkeypatch):
    dead = _gone_pid()
    own = [_touch(tmp_path / ".notes.txt.99999-abcdefgh.part", age_s=3 * 3600),
           _touch(tmp_path / f".a.png.{dead}-abc_1234.part", age_s=5),
           _touch(tmp_path / "sub" / ".c.png.k2j4h5g6.part", age_s=2 * 3600)]
    monkeypatch.setattr(atomic, "_STARTED", time.time())
    assert remove_stale_parts(tmp_path) == []
    assert all(p.read_bytes() == b"half" for p in own)
    # they are only listed, for the user to decide
    assert sorted(old_style_parts(tmp_path)) == sorted(own)
    assert old_style_parts(tmp_path, recursive=False) == sorted(own[:2])


def test_temporary_names_carry_the_marker_this_machine_and_this_process(tmp_path):
    target = tmp_path / "labels" / "a.png"
    with atomic.atomic_open(target) as f:
        f.write(b"partly")
        (part,) = list(target.parent.glob(".a.png.*.part"))
        assert part.name.startswith(temp_prefix("a.png"))
        assert f".segstudio-tmp.{HOST}.{os.getpid()}." in part.name
        assert remove_stale_parts(tmp_path) == []     # being written now: never removed
        f.write(b" written")
    assert target.read_bytes() == b"partly written"
    assert list(target.parent.iterdir()) == [target]


def test_host_tags_differ_between_machines_and_stay_short_and_plain():
    names = ["lab-pc-3", "LAB-PC-3", "lab-pc-4", "node01.cluster.example.org",
             "node01.cluster.example.org.long-suffix-that-goes-on", "",
             "рабочая-станция", "a b/c\\d"]
    tags = [host_tag(n) for n in names]
    assert tags[0] == tags[1]                              # host names ignore case
    assert len(set(tags)) == len(names) - 1
    import re
    assert all(re.fullmatch(r"[a-z0-9_-]{0,24}-[0-9a-f]{8}", t) for t in tags), tags


@pytest.mark.skipif(not hasattr(os, "kill"), reason="needs process ids")
def test_opening_a_workspace_keeps_files_it_cannot_prove_it_wrote_and_names_old_ones(
        tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    from segstudio.io.workspace import Workspace

    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / "a.png")
    dead = _gone_pid()
    users = _touch(tmp_path / ".notes.txt.99999-abcdefgh.part", age_s=3 * 3600)
    old = _touch(tmp_path / "labels" / f".a.png.{dead}-abcdefgh.part", age_s=5)
    elsewhere = _touch(tmp_path / "labels" / _ours("a.png", dead, host_tag("other-pc")), age_s=5)
    ours = _touch(tmp_path / "labels" / _ours("a.png", dead), age_s=5)
    monkeypatch.setattr(atomic, "_STARTED", time.time())
    ws = Workspace.open(tmp_path)
    assert not ours.exists()
    assert users.exists() and old.exists() and elsewhere.exists()
    assert ws.old_temporary_files() == [old]
    (said,) = [p for p in ws.problems if "older segstudio" in p]
    assert said.startswith(f"labels/{old.name}: kept") and ".notes.txt" not in said
