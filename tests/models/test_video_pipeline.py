import threading
import time
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from segstudio.core.classes import chest_xray
from segstudio.io.video import VideoSource
from segstudio.models.video_pipeline import (VideoPipelineError, blend_overlay, frame_range,
                                             predict_frames, predict_workspace_frames,
                                             run_stages, write_overlay_video)

W, H = 64, 48


def make_video(path, count=12, fps=10.0):
    """Frame i is a flat grey of brightness 20*i (MJPG keeps flat areas nearly exact)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
    assert writer.isOpened()
    for i in range(count):
        writer.write(np.full((H, W, 3), 20 * i % 256, np.uint8))
    writer.release()
    return path


class BrightnessModel:
    """A stand-in network whose 'prediction' is the frame's brightness, to check which pixels it
    was given; it can also wait, to make its stage the slow one."""

    def __init__(self, delay=0.0):
        self.delay = delay
        self.calls = 0

    def predict(self, rgb, cancel=None):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        return SimpleNamespace(brightness=float(rgb.mean()))


def test_every_frame_arrives_once_in_order_with_its_own_pixels(tmp_path):
    got = []
    with VideoSource(make_video(tmp_path / "clip.avi")) as source:
        stats = predict_frames(source, BrightnessModel(), range(2, 10),
                               lambda i, p: got.append((i, p.brightness)))
    assert [i for i, _ in got] == list(range(2, 10))
    for i, brightness in got:
        assert brightness == pytest.approx(20 * i, abs=3)
    assert stats.frames == 8 and not stats.cancelled
    assert stats.fps > 0


def test_decode_work_and_write_overlap_in_time():
    delay = 0.04

    def slow(value):
        time.sleep(delay)
        return value

    stats = run_stages(list(range(12)), slow, lambda i, v: slow(v), lambda i, v: slow(v))
    busy = stats.decode_seconds + stats.work_seconds + stats.write_seconds
    assert stats.frames == 12
    assert busy >= 3 * 12 * delay * 0.95
    # Run one after another, the stages would take `busy`; overlapped, about a third of it.
    assert stats.seconds < 0.7 * busy


def test_results_are_written_in_a_thread_other_than_the_callers(tmp_path):
    threads = set()
    with VideoSource(make_video(tmp_path / "clip.avi", count=4)) as source:
        predict_frames(source, BrightnessModel(), range(4),
                       lambda i, p: threads.add(threading.current_thread().name))
    assert threads == {"segstudio-write"}


def test_cancel_stops_between_frames_and_keeps_what_was_done(tmp_path):
    got = []
    stop = threading.Event()

    def on_result(i, _p):
        got.append(i)
        if len(got) == 3:
            stop.set()

    model = BrightnessModel(delay=0.02)
    with VideoSource(make_video(tmp_path / "clip.avi", count=30)) as source:
        stats = predict_frames(source, model, range(30), on_result, stop.is_set)
    assert stats.cancelled
    assert 3 <= len(got) < 30
    assert got == list(range(len(got)))      # a prefix, in order, nothing skipped
    assert model.calls <= len(got) + 4       # at most a queue's worth of work was in flight


def test_a_failing_writer_stops_the_run_and_its_error_reaches_the_caller(tmp_path):
    model = BrightnessModel()

    def on_result(i, _p):
        if i == 2:
            raise OSError("disk full")

    with (VideoSource(make_video(tmp_path / "clip.avi", count=30)) as source,
          pytest.raises(OSError, match="disk full")):
        predict_frames(source, model, range(30), on_result)
    assert model.calls < 30


def test_a_failing_decoder_reaches_the_caller():
    def load(i):
        if i == 3:
            raise ValueError("frame 3 is damaged")
        return i

    seen = []
    with pytest.raises(ValueError, match="frame 3 is damaged"):
        run_stages(list(range(10)), load, lambda i, v: v, lambda i, v: seen.append(i))
    assert seen == [0, 1, 2]


def test_frames_outside_the_video_are_refused_before_anything_runs(tmp_path):
    model = BrightnessModel()
    with (VideoSource(make_video(tmp_path / "clip.avi", count=5)) as source,
          pytest.raises(VideoPipelineError, match="frame 7 is outside 0–4")):
        predict_frames(source, model, [3, 7], lambda i, p: None)
    assert model.calls == 0
    with pytest.raises(VideoPipelineError, match="0–4"):
        frame_range(3, 2, 5)
    assert frame_range(1, 3, 5) == [1, 2, 3]


def test_an_untrained_lite_unet_segments_each_frame_at_its_size(tmp_path):
    import torch

    from segstudio.models.engine import Predictor

    torch.set_num_threads(1)
    predictor = Predictor.untrained("unet", chest_xray(), "lite", num_threads=1)
    got = {}
    with VideoSource(make_video(tmp_path / "clip.avi", count=3)) as source:
        stats = predict_frames(source, predictor, range(3), lambda i, p: got.__setitem__(i, p))
    assert sorted(got) == [0, 1, 2] and stats.frames == 3
    for p in got.values():
        assert p.labels.shape == (H, W)
        assert p.probabilities.shape == (len(chest_xray()), H, W)
        assert p.trained is False


def test_blend_paints_shown_classes_only_at_the_opacity():
    classes = chest_xray()
    table = classes.color_table()
    shown = np.zeros(256, bool)
    shown[1:len(classes)] = True
    rgb = np.full((2, 2, 3), 100, np.uint8)
    labels = np.array([[0, 1], [2, 255]], np.uint8)
    out = blend_overlay(rgb, labels, table, shown, 0.25)
    np.testing.assert_array_equal(out[0, 0], [100, 100, 100])          # hidden background
    np.testing.assert_array_equal(out[1, 1], [100, 100, 100])          # void not shown here
    expected = 100 * 0.75 + table[1].astype(float) * 0.25
    np.testing.assert_allclose(out[0, 1], expected, atol=0.5)       # rounded to nearest
    np.testing.assert_array_equal(rgb, 100)                            # input left alone


def _read_all(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


def test_overlay_video_has_every_frame_and_colours_the_labelled_ones(tmp_path):
    video = make_video(tmp_path / "clip.avi", count=10)
    classes = chest_xray()
    labels = np.zeros((H, W), np.uint8)
    labels[:, W // 2:] = 1

    def labels_for(i):
        return labels if i % 2 == 0 else None

    out = tmp_path / "out" / "overlay.mp4"
    result = write_overlay_video(video, labels_for, classes, out, opacity=0.5)
    assert result.path == out and result.frames == 10 and result.labelled == 5
    frames = _read_all(out)
    assert len(frames) == 10
    color = classes.color_table()[1].astype(float)
    for i, rgb in enumerate(frames):
        grey = 20 * i
        left = rgb[8:40, 4:24].reshape(-1, 3).mean(axis=0)
        right = rgb[8:40, 40:60].reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(left, grey, atol=8)      # background class is not painted
        want = (grey + color) / 2 if i % 2 == 0 else np.full(3, grey)
        np.testing.assert_allclose(right, want, atol=10)
    assert [p.name for p in out.parent.iterdir()] == ["overlay.mp4"]


def test_cancelled_overlay_export_leaves_no_file(tmp_path):
    video = make_video(tmp_path / "clip.avi", count=30)
    out = tmp_path / "out" / "overlay.mp4"
    calls = []

    def labels_for(i):
        calls.append(i)

    result = write_overlay_video(video, labels_for, chest_xray(), out,
                                 cancel=lambda: len(calls) >= 3)
    assert result is None
    assert list(out.parent.iterdir()) == []


def test_labels_of_the_wrong_size_name_the_frame_and_leave_no_file(tmp_path):
    video = make_video(tmp_path / "clip.avi", count=6)
    out = tmp_path / "overlay.mp4"

    def labels_for(i):
        return np.zeros((H, W + 1) if i == 4 else (H, W), np.uint8)

    with pytest.raises(VideoPipelineError, match=r"labels of frame 4 are 65×48 but the frame is 64×48"):
        write_overlay_video(video, labels_for, chest_xray(), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi"]


def test_overlay_export_refuses_bad_arguments_with_the_reason(tmp_path):
    video = make_video(tmp_path / "clip.avi", count=3)
    with pytest.raises(VideoPipelineError, match="between 0 and 1"):
        write_overlay_video(video, lambda i: None, chest_xray(), tmp_path / "o.mp4", opacity=2)
    with pytest.raises(VideoPipelineError, match="o.avi: the overlay video is written as .mp4"):
        write_overlay_video(video, lambda i: None, chest_xray(), tmp_path / "o.avi")
    mp4 = write_overlay_video(video, lambda i: None, chest_xray(), tmp_path / "o.mp4").path
    with pytest.raises(VideoPipelineError, match="o.mp4: the overlay video cannot replace its"):
        write_overlay_video(mp4, lambda i: None, chest_xray(), mp4)
    with pytest.raises(VideoPipelineError, match="missing.avi: the file does not exist"):
        write_overlay_video(tmp_path / "missing.avi", lambda i: None, chest_xray(),
                            tmp_path / "o.mp4")


def test_overlay_video_command_writes_the_saved_labels_of_a_workspace(tmp_path, capsys):
    from segstudio.cli import main
    from segstudio.io.workspace import Workspace

    folder = tmp_path / "ws"
    folder.mkdir()
    make_video(folder / "clip.avi", count=8)
    ws = Workspace.open(folder, classes=chest_xray())
    labels = np.full((H, W), 2, np.uint8)
    ws.save_labels(ws.items[3], labels)
    ws.close()
    out = tmp_path / "overlay.mp4"
    assert main(["overlay-video", str(folder), "--out", str(out), "--frames", "2-6"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 5 frames (1 with labels) of clip.avi" in printed
    from segstudio.io.video_out import H264_OPENCV, H264_PYAV, MPEG4

    assert any(f"codec {c}" in printed for c in (H264_PYAV, H264_OPENCV, MPEG4))
    frames = _read_all(out)
    assert len(frames) == 5
    color = chest_xray().color_table()[2].astype(float)
    np.testing.assert_allclose(frames[1][8:40, 8:56].reshape(-1, 3).mean(axis=0),
                               (60 + color) / 2, atol=10)          # frame 3, labelled
    np.testing.assert_allclose(frames[2][8:40, 8:56].reshape(-1, 3).mean(axis=0), 80, atol=6)


def test_overlay_video_command_names_the_problem(tmp_path, capsys):
    from segstudio.cli import main

    folder = tmp_path / "ws"
    folder.mkdir()
    make_video(folder / "a.avi", count=3)
    make_video(folder / "b.avi", count=3)
    out = tmp_path / "o.mp4"
    assert main(["overlay-video", str(folder), "--out", str(out)]) == 2
    assert "holds 2 videos (a.avi, b.avi); choose one with --video" in capsys.readouterr().err
    assert main(["overlay-video", str(folder), "--out", str(out), "--video", "b.avi",
                 "--frames", "1-9"]) == 2
    assert "--frames 1-9: frames 1–9 do not lie within 0–2" in capsys.readouterr().err
    assert not out.exists()


def test_workspace_frames_keep_predictions_and_write_labels_only_where_allowed(tmp_path):
    from segstudio.io.workspace import Workspace

    folder = tmp_path / "ws"
    folder.mkdir()
    make_video(folder / "clip.avi", count=6)
    ws = Workspace.open(folder, classes=chest_xray())
    classes = len(chest_xray())

    class Flat:
        def predict(self, rgb, cancel=None):
            labels = np.full(rgb.shape[:2], 2, np.uint8)
            return SimpleNamespace(labels=labels, probabilities=np.zeros((classes, 1, 1)))

    rows = []
    stats = predict_workspace_frames(ws, "clip.avi", Flat(), [1, 2, 3],
                                     lambda row, p: rows.append(row), write_labels=[2])
    assert stats.frames == 3 and rows == [1, 2, 3]
    for frame in (1, 2, 3):
        np.testing.assert_array_equal(ws.load_prediction(ws.items[frame]), 2)
    assert ws.load_labels(ws.items[2]) is not None
    assert ws.load_labels(ws.items[1]) is None and ws.load_labels(ws.items[3]) is None
    with pytest.raises(VideoPipelineError, match="other.avi: not a video of the workspace ws"):
        predict_workspace_frames(ws, "other.avi", Flat(), [0], lambda row, p: None)
    ws.close()
