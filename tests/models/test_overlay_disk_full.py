"""An overlay video onto a full disk: one line, the earlier video kept byte for byte, and its
hidden ``.NAME.*.part.mp4`` temporary removed, whichever way the encoder reports the failure."""

from __future__ import annotations

import errno
import os

import cv2
import numpy as np
import pytest

from segstudio.cli import main
from segstudio.core.classes import chest_xray
from segstudio.io.workspace import Workspace
from segstudio.models import video_pipeline
from segstudio.models.video_pipeline import VideoPipelineError, write_overlay_video

FRAMES = 6


def _clip(path):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (32, 24))
    for i in range(FRAMES):
        writer.write(np.full((24, 32, 3), 30 * i, np.uint8))
    writer.release()
    return path


def _disk_full():
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FillingDisk:
    """The real writer until ``after`` frames, then the disk is full: ``write`` raises (or, as
    OpenCV's writer does, says nothing and drops the frame), and so does ``close`` while it
    flushes, as PyAV's does."""

    def __init__(self, real, after: int, silent: bool):
        self.real, self.after, self.silent, self.written = real, after, silent, 0
        self.codec = real.codec

    def write(self, rgb):
        if self.written >= self.after:
            if self.silent:
                return
            raise _disk_full()
        self.written += 1
        self.real.write(rgb)

    def close(self):
        self.real.close()
        if self.written >= self.after and not self.silent:
            raise _disk_full()


def _fill_disk(monkeypatch, silent=False, after=2):
    real_open = video_pipeline.open_video_out
    monkeypatch.setattr(video_pipeline, "open_video_out",
                        lambda *a, **k: _FillingDisk(real_open(*a, **k), after, silent))


def _parts(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".part.mp4")]


@pytest.mark.parametrize("silent", [False, True], ids=["encoder-raises", "encoder-silent"])
def test_a_full_disk_keeps_the_old_video_and_removes_the_temporary(tmp_path, monkeypatch,
                                                                  silent):
    video = _clip(tmp_path / "clip.mp4")
    out = tmp_path / "overlay.mp4"
    write_overlay_video(video, lambda i: None, chest_xray(), out)
    old = out.read_bytes()
    _fill_disk(monkeypatch, silent)
    with pytest.raises(VideoPipelineError) as failed:
        write_overlay_video(video, lambda i: np.ones((24, 32), np.uint8), chest_xray(), out)
    message = str(failed.value)
    assert "\n" not in message and "the earlier video there is kept" in message
    assert ("No space left on device" in message) or silent
    assert out.read_bytes() == old
    assert _parts(tmp_path) == []


def test_overlay_video_onto_a_full_disk_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "ws"
    folder.mkdir()
    _clip(folder / "clip.mp4")
    ws = Workspace.open(folder, classes=chest_xray())
    ws.save_labels(ws.items[2], np.ones((24, 32), np.uint8))
    ws.close()
    out = tmp_path / "out" / "overlay.mp4"
    argv = ["overlay-video", str(folder), "--out", str(out)]
    assert main(argv) == 0
    old = out.read_bytes()
    capsys.readouterr()
    _fill_disk(monkeypatch)
    assert main(argv + ["--overwrite"]) == 2
    text = capsys.readouterr().err
    lines = text.split("\n")
    err = [ln for ln in lines if ln.strip() and not ln.startswith("\rwriting")]
    assert len(err) == 1 and err[0].startswith("segstudio overlay-video: error: ")
    assert "No space left on device" in err[0] and "Traceback" not in err[0]
    assert out.read_bytes() == old
    assert _parts(out.parent) == []


def test_an_overlay_that_cannot_fit_in_memory_is_refused_before_writing(tmp_path, monkeypatch):
    from segstudio.io import decode_memory

    video = _clip(tmp_path / "clip.mp4")
    monkeypatch.setattr(decode_memory, "available_memory", lambda: 20_000)
    with pytest.raises(VideoPipelineError, match=r"^not enough memory for an overlay video of "
                                                 r"32×24 frames: needs about 44\.5 kB, "
                                                 r"20\.0 kB available$"):
        write_overlay_video(video, lambda i: None, chest_xray(), tmp_path / "o.mp4")
    assert not (tmp_path / "o.mp4").exists() and _parts(tmp_path) == []
