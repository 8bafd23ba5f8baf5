"""VideoSource: frame count, random and sequential access, cache, and broken files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from segstudio.io.video import VIDEO_SUFFIXES, VideoError, VideoSource, is_video_path

N_FRAMES = 12


def _level(i: int) -> int:
    return 10 + 20 * i


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A 12-frame MJPG video whose frame i is a flat grey of level 10 + 20 i with a red corner."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    assert writer.isOpened()
    for i in range(N_FRAMES):
        frame = np.full((24, 32, 3), _level(i), np.uint8)
        frame[:8, :8] = (0, 0, 255)  # BGR red
        writer.write(frame)
    writer.release()
    return path


def _frame_level(frame: np.ndarray) -> float:
    return float(frame[12:, 12:].mean())


def test_properties_match_what_was_written(video):
    with VideoSource(video) as src:
        assert (src.frame_count, src.width, src.height) == (N_FRAMES, 32, 24)
        assert src.fps == pytest.approx(10.0)
        assert len(src) == N_FRAMES


def test_frames_come_back_as_rgb_in_order(video):
    with VideoSource(video) as src:
        for i in range(N_FRAMES):
            frame = src.read(i)
            assert frame.shape == (24, 32, 3) and frame.dtype == np.uint8
            assert abs(_frame_level(frame) - _level(i)) < 4
            r, g, b = frame[2, 2]
            assert r > 200 and g < 60 and b < 60


def test_random_access_returns_the_right_frame(video):
    with VideoSource(video, cache_frames=2) as src:
        for i in (9, 2, 11, 0, 5, 4, 10):
            assert abs(_frame_level(src.read(i)) - _level(i)) < 4, i


def test_cached_frame_is_returned_without_decoding_again(video, monkeypatch):
    with VideoSource(video, cache_frames=4) as src:
        first = src.read(3)
        calls = []
        original = src._decode
        monkeypatch.setattr(src, "_decode", lambda i: calls.append(i) or original(i))
        assert src.read(3) is first
        assert calls == []
        assert not first.flags.writeable
        for i in range(4, 9):  # pushes frame 3 out of a 4-frame cache
            src.read(i)
        src.read(3)
        assert calls == [4, 5, 6, 7, 8, 3]


def test_sequential_reads_do_not_seek(video):
    with VideoSource(video, cache_frames=1) as src:
        seeks = []
        cap = src._cap

        class Spy:
            def __getattr__(self, name):
                return getattr(cap, name)

            def set(self, prop, value):
                seeks.append(value)
                return cap.set(prop, value)

        src._cap = Spy()
        for i in range(5):
            src.read(i)
        assert seeks == []
        src.read(11)
        src.read(1)
        assert seeks == [1]  # 5→11 reads on; 11→1 must seek


def test_frame_outside_the_video_names_file_and_frame(video):
    with VideoSource(video) as src:
        with pytest.raises(VideoError, match=r"clip\.avi: frame 12 is outside 0\.\.11"):
            src.read(N_FRAMES)


def test_text_file_is_not_a_video(tmp_path):
    (tmp_path / "fake.mp4").write_text("not a video at all\n" * 10)
    with pytest.raises(VideoError, match=r"^fake\.mp4: "):
        VideoSource(tmp_path / "fake.mp4")


def test_missing_video_is_a_clean_error(tmp_path):
    with pytest.raises(VideoError, match="does not exist"):
        VideoSource(tmp_path / "gone.avi")


def test_truncated_video_reports_the_frame_it_cannot_decode(video, tmp_path):
    data = video.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 2 // 3])
    try:
        src = VideoSource(cut)
    except VideoError as e:
        assert str(e).startswith("cut.avi: ")
        return
    with src:
        errors = []
        for i in range(src.frame_count):
            try:
                src.read(i)
            except VideoError as e:
                errors.append(str(e))
        assert src.frame_count < N_FRAMES or errors
        assert all(e.startswith("cut.avi: frame ") for e in errors)


def test_read_after_close_is_an_error(video):
    src = VideoSource(video)
    src.close()
    with pytest.raises(VideoError, match="closed"):
        src.read(0)


def test_video_suffixes():
    assert ".mp4" in VIDEO_SUFFIXES and ".avi" in VIDEO_SUFFIXES
    assert is_video_path("A.MOV") and not is_video_path("a.png")
