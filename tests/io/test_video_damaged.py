"""A frame that cannot be decoded is an error for that frame, never another frame's picture."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from truncated_mp4 import cut, write_mp4

from segstudio.io.workspace import Workspace
from segstudio.io.mp4_samples import missing_frames
from segstudio.io.video import VideoError, VideoSource

FRAMES = 250


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mp4")
    whole = write_mp4(folder / "whole.mp4", FRAMES)
    half = cut(whole, folder / "half.mp4")
    with VideoSource(whole, cache_frames=1) as src:
        truth = [np.array(src.read(i)) for i in range(FRAMES)]
    return whole, half, truth


def _check(src: VideoSource, truth, order) -> tuple[int, int]:
    """Read ``order``; every picture must be its own frame's. Returns (shown, refused)."""
    shown = refused = 0
    for i in order:
        try:
            frame = src.read(i)
        except VideoError as e:
            assert f"frame {i} " in str(e) and "half.mp4" in str(e)
            refused += 1
            continue
        errors = [float(np.abs(frame.astype(int) - t).mean()) for t in truth]
        assert int(np.argmin(errors)) == i and errors[i] < 2.0, \
            f"frame {i} came back as the picture of frame {int(np.argmin(errors))}"
        shown += 1
    return shown, refused


def test_the_cut_file_still_claims_every_frame(clips):
    _, half, _ = clips
    with VideoSource(half) as src:
        assert src.frame_count == FRAMES


def test_stepping_through_a_cut_file_gives_each_frame_or_an_error_for_it(clips):
    _, half, truth = clips
    with VideoSource(half) as src:
        shown, refused = _check(src, truth, range(FRAMES))
    assert 60 < shown < 190 and shown + refused == FRAMES


def test_jumping_about_a_cut_file_gives_each_frame_or_an_error_for_it(clips):
    _, half, truth = clips
    order = list(np.random.default_rng(4).permutation(FRAMES))
    with VideoSource(half, cache_frames=1) as src:
        shown, refused = _check(src, truth, order)
        assert refused >= 1
        lost = next(i for i in range(FRAMES) if src.is_lost(i))
        with pytest.raises(VideoError, match="cut short"):
            src.read(lost)


def test_the_sample_table_finds_the_frames_past_the_cut(clips):
    whole, half, _ = clips
    assert len(missing_frames(whole)) == 0
    lost = missing_frames(half)
    assert 60 < len(lost) < 190
    np.testing.assert_array_equal(lost, np.arange(FRAMES - len(lost), FRAMES))


def test_a_damaged_sample_table_means_nothing_is_known_never_a_crash(clips, tmp_path):
    whole, _, _ = clips
    data = whole.read_bytes()
    moov = data.index(b"moov") - 4
    rng = np.random.default_rng(8)
    for k in range(300):
        mutated = bytearray(data)
        for at in rng.integers(moov, moov + 2000, rng.integers(1, 6)):
            mutated[at] = rng.integers(0, 256)
        path = tmp_path / f"m{k % 3}.mp4"
        path.write_bytes(bytes(mutated[:rng.integers(len(data) // 4, len(data) + 1)]))
        lost = missing_frames(path)
        # None (nothing known), or distinct frame indices in order.
        assert lost is None or (lost.dtype.kind == "i" and (np.diff(lost) > 0).all()
                                and (len(lost) == 0 or lost[0] >= 0))


def test_a_seek_that_lands_elsewhere_is_an_error_not_that_frame(clips, monkeypatch):
    # A decoder that, asked for frame 200 or later, stops at frame 199 (as FFmpeg does in a
    # damaged stretch) and would go on reading from there.
    whole, _, truth = clips
    real = cv2.VideoCapture

    class LandsShort:
        def __init__(self, path):
            self.cap = real(path)

        def set(self, prop, value):
            if prop == cv2.CAP_PROP_POS_FRAMES and value >= 200:
                value = 199
            return self.cap.set(prop, value)

        def __getattr__(self, name):
            return getattr(self.cap, name)

    monkeypatch.setattr(cv2, "VideoCapture", LandsShort)
    with VideoSource(whole, cache_frames=1) as src:
        with pytest.raises(VideoError, match="frame 230 cannot be decoded"):
            src.read(230)
        assert np.array_equal(src.read(120), truth[120])


def test_overlay_video_cli_names_the_frame_that_cannot_be_decoded(clips, tmp_path):
    _, half, _ = clips
    folder = tmp_path / "ws"
    folder.mkdir()
    (folder / "half.mp4").write_bytes(half.read_bytes())
    ws = Workspace.open(folder)
    assert len(ws.items) == FRAMES
    out = subprocess.run([sys.executable, "-m", "segstudio", "overlay-video", str(folder),
                          "--out", str(tmp_path / "o.mp4")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert "cannot be decoded" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "o.mp4").exists()
