"""Pipes (FIFOs) named like images are never opened: skipped with a message, or refused.

Opening a FIFO for reading blocks until a writer appears, so each call runs in a thread that
must come back; a reader that opened the pipe would never return and the test would fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from segstudio.core.classes import chest_xray
from segstudio.io.workspace import Workspace, WorkspaceError
from segstudio.io.images import ImageReadError, read_image
from segstudio.io.labels import import_label_folder, import_labelme_folder
from segstudio.io.regular_files import NotRegularFileError, open_regular
from segstudio.io.video import VideoError, VideoSource
from segstudio.io.voc import VocError, load_label_png, read_voc, save_label_png

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")


def _returns(call, timeout: float = 30.0):
    """``call()``'s result or raised exception; fails if it is still blocked after ``timeout``."""
    box: dict = {}

    def run():
        try:
            box["result"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the call blocked on a named pipe"
    return box.get("error", box.get("result"))


def _fifo(path):
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("name", ["a.png", "scan.dcm", "b.jpg"])
def test_a_pipe_named_like_an_image_is_refused_without_being_opened(tmp_path, name):
    error = _returns(lambda: read_image(_fifo(tmp_path / name)))
    assert isinstance(error, ImageReadError)
    assert "named pipe" in str(error) and str(error).startswith(name)


def test_a_pipe_named_like_a_label_is_refused(tmp_path):
    error = _returns(lambda: load_label_png(_fifo(tmp_path / "a.png")))
    assert isinstance(error, VocError) and "named pipe" in str(error)


def test_a_pipe_named_like_a_video_is_refused(tmp_path):
    error = _returns(lambda: VideoSource(_fifo(tmp_path / "clip.mp4")))
    assert isinstance(error, VideoError) and "named pipe" in str(error)


def test_open_regular_rechecks_what_it_opened(tmp_path, monkeypatch):
    # The pipe appears after the first check (a swap): the opened descriptor is checked again.
    pipe = _fifo(tmp_path / "a.png")
    monkeypatch.setattr("segstudio.io.regular_files.check_regular", lambda path: None)
    error = _returns(lambda: open_regular(pipe))
    assert isinstance(error, NotRegularFileError) and "named pipe" in error.reason


def test_folder_scan_skips_pipes_with_a_message_and_opens_the_rest(tmp_path):
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / "b.png")
    _fifo(tmp_path / "a.png")
    ws = _returns(lambda: Workspace.open(tmp_path))
    assert [it.id for it in ws.items] == ["b"]
    assert any(p.startswith("a.png:") and "named pipe" in p for p in ws.problems)
    assert ws.read_image(ws.items[0]).width == 5


def test_a_pipe_named_directly_is_refused_as_a_workspace_file(tmp_path):
    error = _returns(lambda: Workspace.from_paths([_fifo(tmp_path / "a.png")]))
    assert isinstance(error, WorkspaceError) and "named pipe" in str(error)


def test_label_import_reports_pipes_and_imports_the_rest(tmp_path):
    for name in ("a", "b"):
        Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / f"{name}.png")
    ws = Workspace.open(tmp_path, classes=chest_xray())
    labels = tmp_path / "import"
    labels.mkdir()
    save_label_png(labels / "b.png", np.ones((4, 5), np.uint8), ws.classes)
    _fifo(labels / "a.png")
    _fifo(labels / "a.json")
    report = _returns(lambda: import_label_folder(labels, ws))
    assert report.imported == ["b"] and any("named pipe" in p for p in report.problems)
    report = _returns(lambda: import_labelme_folder(labels, ws))
    assert report.imported == [] and any("a.json" in p and "named pipe" in p
                                         for p in report.problems)


def test_a_voc_split_list_that_is_a_pipe_is_an_error(tmp_path):
    splits = tmp_path / "ImageSets" / "Segmentation"
    splits.mkdir(parents=True)
    _fifo(splits / "train.txt")
    error = _returns(lambda: read_voc(tmp_path, "train"))
    assert isinstance(error, VocError) and "named pipe" in str(error)


def test_eval_skips_a_pipe_in_pred_with_a_message(tmp_path):
    for side in ("gt", "pred"):
        (tmp_path / side).mkdir()
        save_label_png(tmp_path / side / "x.png", np.ones((6, 7), np.uint8), chest_xray())
    _fifo(tmp_path / "pred" / "y.png")
    save_label_png(tmp_path / "gt" / "y.png", np.ones((6, 7), np.uint8), chest_xray())
    out = subprocess.run([sys.executable, "-m", "segstudio", "eval", "--pred",
                          str(tmp_path / "pred"), "--gt", str(tmp_path / "gt")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "y.png" in out.stderr and "named pipe" in out.stderr
    assert "1 image pair(s)" in out.stdout


def test_predict_inputs_skip_a_pipe_in_a_folder_and_refuse_one_named_directly(tmp_path, capsys):
    from segstudio.commands import CommandError
    from segstudio.commands.predict import collect_inputs

    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / "b.png")
    pipe = _fifo(tmp_path / "a.png")
    found = _returns(lambda: collect_inputs([str(tmp_path)]))
    assert found == [tmp_path / "b.png"]
    assert "a.png" in capsys.readouterr().err
    error = _returns(lambda: collect_inputs([str(pipe)]))
    assert isinstance(error, CommandError) and "named pipe" in str(error)
