"""Edits in a workspace that cannot be written (read-only or full) are never dropped: the item
stays in memory past the window's 8 kept documents, closing asks, and the clean exit keeps the
autosave that holds them, which the next start offers back. Driven through the real window."""
import errno
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from segstudio.io.recovery import RecoveryStore, orphans
from segstudio.paths import user_data_dir
from segstudio.ui.background.autosave import restore_session
from tests.ui.helpers import drag

Button = QMessageBox.StandardButton
ROWS = 12


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "shared"
    root.mkdir()
    rng = np.random.default_rng(1)
    for i in range(ROWS):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), np.uint8)).save(root / f"s{i:02d}.png")
    return root


@pytest.fixture
def strict_window(qtbot, tmp_path):
    """A main window that asks before dropping edits, as the application does."""
    from segstudio.ui.main_window import MainWindow

    win = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    win.interactive = False
    qtbot.addWidget(win)
    win.resize(900, 600)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.discard_changes_on_close = True        # whatever happened, teardown asks nothing


@pytest.fixture
def read_only(folder):
    """Every write into the folder fails as on a read-only file system once ``apply()`` runs,
    until ``undo()`` (or the end of the test); the rest (the autosave area) still works."""
    patch = pytest.MonkeyPatch()
    real = tempfile.mkstemp
    top = folder.resolve()

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and (Path(dir).resolve() == top or top in Path(dir).resolve().parents):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
        return real(*args, dir=dir, **kwargs)

    patch.apply = lambda: patch.setattr(tempfile, "mkstemp", mkstemp)
    yield patch
    patch.undo()


def _answer(monkeypatch, *answers):
    asked: list[str] = []
    queue = iter(answers)

    def question(_parent, title, *_rest):
        asked.append(title)
        return next(queue)

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def _paint_then_switch_through_everything(win, folder) -> np.ndarray:
    assert win.open_paths([folder])
    win.legend.select_class(1)
    drag(win.canvas, [(2, 5), (25, 5), (25, 15)])
    painted = win.doc.labels.array.copy()
    assert (painted == 1).sum() > 20
    for row in range(1, ROWS):                  # more than the 8 documents the window keeps
        assert win.show_row(row)
    return painted


def test_an_unsaveable_edit_stays_open_is_asked_about_and_keeps_its_autosave(
        strict_window, folder, read_only, monkeypatch, capfd, window):
    win = strict_window
    assert win.open_paths([folder])
    read_only.apply()
    painted = _paint_then_switch_through_everything(win, folder)
    first = win.workspace.items[0]
    doc = win.document_for(0)
    assert doc is not None and doc.dirty, "the edited item was dropped from memory"
    np.testing.assert_array_equal(doc.labels.array, painted)
    assert not win.workspace.label_path(first).exists()
    assert capfd.readouterr().err.count("Could not save the labels of s00") == 1  # said once
    win.autosave.flush()
    assert win.autosave.wait()
    store = win.autosave.store

    # closing asks; the save fails again; "do not quit" keeps the window and the edits
    asked = _answer(monkeypatch, Button.Save, Button.No, Button.Save, Button.Yes)
    assert not win.close()
    assert asked == ["Unsaved labels", "Labels not saved"] and win.isVisible()
    assert win.document_for(0).dirty
    # quitting anyway is a clean exit that keeps the autosave holding the edits
    assert win.close()
    manifest = json.loads((store.folder / "manifest.json").read_text())
    entry = manifest["items"][RecoveryStore.key("s00.png", None)]
    np.testing.assert_array_equal(np.array(Image.open(store.folder / entry["labels"])), painted)

    # the next start (this process has gone) offers them back into the writable folder
    read_only.undo()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    manifest["pid"] = int(dead)
    (store.folder / "manifest.json").write_text(json.dumps(manifest))
    sessions = orphans(user_data_dir() / "recovery", exclude=window.autosave.store.folder)
    assert store.root == user_data_dir() / "recovery"
    assert [s.folder for s in sessions] == [store.folder]
    assert restore_session(window, sessions[0]) >= 1
    np.testing.assert_array_equal(window.workspace.load_labels(window.workspace.items[0]),
                                  painted)


def test_once_the_folder_is_writable_again_closing_saves_the_kept_edit(
        strict_window, folder, read_only, monkeypatch):
    win = strict_window
    assert win.open_paths([folder])
    read_only.apply()
    painted = _paint_then_switch_through_everything(win, folder)
    store = win.autosave.store
    read_only.undo()                            # space freed, permissions fixed
    asked = _answer(monkeypatch, Button.Save)
    assert win.close()
    assert asked == ["Unsaved labels"]
    np.testing.assert_array_equal(win.workspace.load_labels(win.workspace.items[0]), painted)
    assert not store.folder.exists()            # saved for real: nothing left to recover


def test_discarding_at_close_is_the_users_choice_and_clears_the_autosave(
        strict_window, folder, read_only, monkeypatch):
    win = strict_window
    assert win.open_paths([folder])
    read_only.apply()
    _paint_then_switch_through_everything(win, folder)
    win.autosave.flush()
    assert win.autosave.wait()
    store = win.autosave.store
    assert store.folder.is_dir()
    asked = _answer(monkeypatch, Button.Discard)
    assert win.close()
    assert asked == ["Unsaved labels"]
    read_only.undo()
    assert not store.folder.exists()


def test_ctrl_s_into_a_labels_folder_swapped_for_a_link_is_refused_with_a_message(
        window, folder, tmp_path):
    assert window.open_paths([folder])
    window.legend.select_class(1)
    drag(window.canvas, [(2, 5), (25, 5)])
    assert window.save_current()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (folder / "labels").rename(tmp_path / "old-labels")
    (folder / "labels").symlink_to(outside, target_is_directory=True)
    drag(window.canvas, [(2, 9), (25, 9)])
    assert not window.save_current()
    assert "labels/ is a link" in window.statusBar().currentMessage()
    assert list(outside.iterdir()) == []
    assert window.doc.dirty
    window.statusBar().clearMessage()
    assert not window.show_row(3)               # its labels would be read through the link
    assert "s03: labels/ is a link" in window.statusBar().currentMessage()
    assert window.doc.row == 0 and window.doc.dirty
