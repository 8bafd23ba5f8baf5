"""Disk full and a killed process while writing: the previous file stays whole, exports are
complete or clearly marked incomplete."""
import errno
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from segstudio.core.classes import ClassSet
from segstudio.io.workspace import Workspace, WorkspaceError
from segstudio.io import atomic
from segstudio.io.voc import VocError, VocSample, load_label_png, write_voc

CLASSES = ClassSet(["bg", "fg", "edge"])


def _workspace(tmp_path, n=3):
    for i in range(n):
        Image.fromarray(np.full((6, 7, 3), 10 * i, np.uint8)).save(tmp_path / f"img{i}.png")
    return Workspace.open(tmp_path, classes=CLASSES)


def _disk_full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _samples(n):
    return [VocSample(f"s{i}", np.full((4, 4, 3), i, np.uint8), np.full((4, 4), i % 3, np.uint8))
            for i in range(n)]


def test_disk_full_during_save_labels_keeps_the_previous_labels(tmp_path, monkeypatch):
    ws = _workspace(tmp_path)
    item = ws.items[0]
    ws.save_labels(item, np.ones((6, 7), np.uint8))
    before = ws.file_path().read_bytes()
    monkeypatch.setattr(atomic.os, "fsync", _disk_full)
    with pytest.raises(WorkspaceError, match="No space left"):
        ws.save_labels(item, np.full((6, 7), 2, np.uint8))
    monkeypatch.undo()
    assert (load_label_png(ws.label_path(item)) == 1).all()
    assert ws.file_path().read_bytes() == before
    assert not [p for p in tmp_path.rglob("*.part")]  # no temporary file left behind


def test_disk_full_during_workspace_save_keeps_the_previous_file(tmp_path, monkeypatch):
    ws = _workspace(tmp_path)
    ws.save_labels(ws.items[1], np.zeros((6, 7), np.uint8), by="ann")
    before = ws.file_path().read_bytes()
    ws.items[2].updated_by = "someone else"
    monkeypatch.setattr(atomic.os, "fsync", _disk_full)
    with pytest.raises(WorkspaceError, match="cannot be saved"):
        ws.save()
    monkeypatch.undo()
    assert ws.file_path().read_bytes() == before
    assert json.loads(before)["items"][0]["updated_by"] == "ann"


def test_disk_full_during_voc_export_leaves_nothing_and_keeps_the_old_export(tmp_path,
                                                                              monkeypatch):
    out = tmp_path / "out"
    write_voc(out, _samples(3), CLASSES, val_fraction=0.0)
    old = sorted(p.name for p in (out / "VOCdevkit/VOC2012/JPEGImages").iterdir())
    calls = {"n": 0}
    real_save = Image.Image.save

    def failing_save(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 4:
            _disk_full()
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(VocError, match="nothing was left behind"):
        write_voc(out, _samples(8), CLASSES, overwrite=True)
    monkeypatch.undo()
    assert sorted(p.name for p in (out / "VOCdevkit/VOC2012/JPEGImages").iterdir()) == old
    assert [p.name for p in (out / "VOCdevkit").iterdir()] == ["VOC2012"]


def _run_and_kill(script: str, cwd) -> None:
    """Run ``script`` in a child that kills itself with SIGKILL where the script says."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=cwd, check=False,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_killed_during_save_labels_leaves_the_old_labels_and_workspace_file(tmp_path):
    ws = _workspace(tmp_path)
    ws.save_labels(ws.items[0], np.ones((6, 7), np.uint8))
    before = ws.file_path().read_bytes()
    _run_and_kill(f"""
        import os, signal, numpy as np
        from segstudio.io import atomic
        from segstudio.io.workspace import Workspace
        ws = Workspace.open({str(tmp_path)!r})
        def die(fd):
            os.kill(os.getpid(), signal.SIGKILL)
        atomic.os.fsync = die  # killed after the new bytes are written, before the rename
        ws.save_labels(ws.items[0], np.full((6, 7), 2, np.uint8))
    """, tmp_path)
    again = Workspace.open(tmp_path)
    assert (again.load_labels(again.items[0]) == 1).all()
    assert again.file_path().read_bytes() == before


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_the_hidden_part_files_of_killed_saves_are_removed_when_the_workspace_opens(tmp_path):
    ws = _workspace(tmp_path)
    ws.save_labels(ws.items[0], np.ones((6, 7), np.uint8))
    for target in ("ws.write_file(ws.to_dict())", "ws.save_labels(ws.items[0], labels)",
                   "ws.save_prediction(ws.items[1], labels)"):
        _run_and_kill(f"""
            import os, signal, numpy as np
            from segstudio.io import atomic
            from segstudio.io.workspace import Workspace
            ws = Workspace.open({str(tmp_path)!r})
            labels = np.full((6, 7), 2, np.uint8)
            atomic.os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
            {target}
        """, tmp_path)
        # each child's own open removed the previous child's leftover: one is left each time
        left = list(tmp_path.rglob(".*.part"))
        assert len(left) == 1 and left[0].name.startswith((".segstudio", ".img")), left
    subprocess.run([sys.executable, "-c", "import sys; from segstudio.io.workspace import "
                    "Workspace; Workspace.open(sys.argv[1])", str(tmp_path)], check=True,
                   timeout=60)                              # the next start
    assert not list(tmp_path.rglob("*.part"))
    again = Workspace.open(tmp_path)
    assert (again.load_labels(again.items[0]) == 1).all()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_killed_during_voc_export_leaves_only_a_marked_partial_folder(tmp_path):
    out = tmp_path / "out"
    write_voc(out, _samples(2), CLASSES, val_fraction=0.0)
    _run_and_kill(f"""
        import os, signal, numpy as np
        from segstudio.core.classes import ClassSet
        from segstudio.io.voc import VocSample, write_voc
        def progress(done, total):
            if done == 5:
                os.kill(os.getpid(), signal.SIGKILL)
        samples = [VocSample(f"k{{i}}", np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8))
                   for i in range(10)]
        write_voc({str(out)!r}, samples, ClassSet(["bg", "fg", "edge"]), overwrite=True,
                  progress=progress)
    """, tmp_path)
    devkit = out / "VOCdevkit"
    final = devkit / "VOC2012"
    # the finished export is the old one, whole; the unfinished one is hidden and named partial
    assert sorted(p.stem for p in (final / "JPEGImages").iterdir()) == ["s0", "s1"]
    leftovers = [p.name for p in devkit.iterdir() if p.name != "VOC2012"]
    assert leftovers and all(n.startswith(".VOC2012.segstudio-tmp.") and n.endswith(".partial")
                             for n in leftovers)
    assert len(list((devkit / leftovers[0] / "JPEGImages").iterdir())) == 5
    # the next export still works and replaces the old one
    result = write_voc(out, _samples(4), CLASSES, overwrite=True, val_fraction=0.0)
    assert result.count == 4


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_killed_during_workspace_save_leaves_the_previous_workspace_file(tmp_path):
    ws = _workspace(tmp_path)
    ws.save_labels(ws.items[0], np.ones((6, 7), np.uint8), by="first")
    before = ws.file_path().read_bytes()
    _run_and_kill(f"""
        import os, signal
        from segstudio.io import atomic
        from segstudio.io.workspace import Workspace
        ws = Workspace.open({str(tmp_path)!r})
        ws.items[0].updated_by = "second"
        real = atomic.os.fsync
        def die(fd):
            if os.fstat(fd).st_size > 100:  # the workspace file, once fully written
                os.kill(os.getpid(), signal.SIGKILL)
            real(fd)
        atomic.os.fsync = die
        ws.save()
    """, tmp_path)
    assert ws.file_path().read_bytes() == before
    again = Workspace.open(tmp_path)
    assert again.items[0].updated_by == "first"
    assert (again.load_labels(again.items[0]) == 1).all()
