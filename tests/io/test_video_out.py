"""mp4 output: H.264 where an installed encoder has it, mp4v otherwise, and always named."""

import cv2
import numpy as np
import pytest

from segstudio.io import video_out
from segstudio.io.video_out import (H264_OPENCV, H264_PYAV, MPEG4, describe, even_size,
                                    open_video_out)


def _write(path, frames, fps=10.0, **kw):
    h, w = frames[0].shape[:2]
    out = open_video_out(path, fps, (w, h), **kw)
    for f in frames:
        out.write(f)
    out.close()
    return out.codec


def _read(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (got := cap.read())[0]:
        frames.append(cv2.cvtColor(got[1], cv2.COLOR_BGR2RGB))
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("latin-1")
    cap.release()
    return frames, fourcc


def _clip(n=8, h=48, w=64):
    out = []
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[:, :, 0] = 30 * i
        f[10:30, 20:40] = (20, 200, 60)
        out.append(f)
    return out


def test_h264_when_pyav_is_installed_and_the_frames_read_back(tmp_path):
    pytest.importorskip("av")
    clip = _clip()
    codec = _write(tmp_path / "a.mp4", clip)
    assert codec == H264_PYAV
    frames, fourcc = _read(tmp_path / "a.mp4")
    assert fourcc.lower() in ("avc1", "h264")
    assert len(frames) == len(clip)
    for got, want in zip(frames, clip):
        assert np.abs(got.astype(int) - want).mean() < 6


def test_without_pyav_the_writer_falls_back_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(video_out, "_pyav", lambda: None)
    clip = _clip(4)
    codec = _write(tmp_path / "b.mp4", clip)
    assert codec in (H264_OPENCV, MPEG4)
    frames, fourcc = _read(tmp_path / "b.mp4")
    assert len(frames) == 4
    assert fourcc.lower() in (("avc1", "h264") if codec == H264_OPENCV else ("mp4v", "fmp4"))
    if codec == MPEG4:
        assert "install PyAV" in describe(codec)


def test_a_broken_h264_route_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setattr(video_out, "_probed", {"pyav": False, "opencv": False})
    assert _write(tmp_path / "c.mp4", _clip(3)) == MPEG4
    assert len(_read(tmp_path / "c.mp4")[0]) == 3


def test_even_size():
    assert even_size(65, 49) == (64, 48) and even_size(64, 48) == (64, 48)
