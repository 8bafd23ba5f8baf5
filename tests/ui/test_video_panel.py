import time

import cv2
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from segstudio.io.workspace import ItemStatus

W, H, FRAMES = 96, 64, 24


def write_clip(path, count, width=W, height=H):
    """Frame i is a flat grey of brightness 10*i (mod 256), at 20 frames/s."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20.0, (width, height))
    for i in range(count):
        writer.write(np.full((height, width, 3), 10 * i % 256, np.uint8))
    writer.release()


@pytest.fixture
def video_folder(tmp_path):
    """A still image and a 24-frame clip."""
    folder = tmp_path / "clips"
    folder.mkdir()
    Image.fromarray(np.full((40, 50), 128, np.uint8)).save(folder / "a_still.png")
    write_clip(folder / "clip.avi", FRAMES)
    return folder


@pytest.fixture
def panel(window, video_folder):
    panel = window.video                  # the window installs its video dock itself
    assert window.open_paths([video_folder])
    return panel


def _frame_row(window, frame):
    return next(r for r, it in enumerate(window.workspace.items) if it.frame == frame)


def test_the_dock_shows_for_video_frames_only(window, panel, qtbot):
    assert window.doc.item.frame is None                      # the still comes first
    assert not panel.dock.isVisible()
    window.show_row(_frame_row(window, 0))
    assert panel.dock.isVisible()
    assert panel.slider.maximum() == FRAMES - 1
    assert "clip.avi" in panel.title.text() and "20 frames/s" in panel.title.text()
    window.show_row(0)
    assert not panel.dock.isVisible()


def test_the_slider_shows_each_frame_with_its_own_labels(window, panel, qtbot):
    ws = window.workspace
    labels = np.zeros((H, W), np.uint8)
    labels[10:30, 20:60] = 2
    ws.save_labels(ws.items[_frame_row(window, 5)], labels)
    window.show_row(_frame_row(window, 0))
    panel.slider.setFocus()
    for _ in range(5):
        qtbot.keyClick(panel.slider, Qt.Key.Key_Right)
    assert window.doc.item.frame == 5
    assert window.doc.image.pixels.mean() == pytest.approx(50, abs=3)
    np.testing.assert_array_equal(window.doc.labels.array, labels)
    qtbot.keyClick(panel.slider, Qt.Key.Key_End)
    assert window.doc.item.frame == FRAMES - 1
    assert not window.doc.labels.array.any()


def test_comma_and_period_step_one_frame(window, panel, qtbot):
    window.show_row(_frame_row(window, 3))
    window.activateWindow()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Period)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Period)
    assert window.doc.item.frame == 5
    assert panel.slider.value() == 5 and panel.frame_spin.value() == 5
    qtbot.keyClick(window.canvas, Qt.Key.Key_Comma)
    assert window.doc.item.frame == 4
    panel.prev_button.click()
    assert window.doc.item.frame == 3


def test_the_spin_box_jumps_to_a_frame(window, panel, qtbot):
    window.show_row(_frame_row(window, 0))
    panel.frame_spin.setFocus()
    panel.frame_spin.selectAll()
    qtbot.keyClicks(panel.frame_spin, "18")            # frames count from 1 for people
    qtbot.keyClick(panel.frame_spin, Qt.Key.Key_Return)
    assert window.doc.item.frame == 17
    assert panel.slider.value() == 17


def test_play_runs_at_the_video_rate_and_stops_at_the_last_frame(window, panel, qtbot):
    window.show_row(_frame_row(window, 0))
    seen = []
    window.documentShown.connect(lambda doc: seen.append(doc.item.frame))
    start = time.monotonic()
    qtbot.mouseClick(panel.play_button, Qt.MouseButton.LeftButton)
    assert panel.playing and panel.play_button.text() == "Pause"
    qtbot.waitUntil(lambda: not panel.playing, timeout=10_000)
    elapsed = time.monotonic() - start
    assert window.doc.item.frame == FRAMES - 1
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    # 23 frame steps at 20 frames/s take 1.15 s by the clock.
    assert 1.0 < elapsed < 4.0
    assert panel.play_button.text() == "Play"


def test_slow_display_skips_frames_instead_of_falling_behind(window, panel, qtbot, monkeypatch):
    window.show_row(_frame_row(window, 0))
    real_show = window.show_row

    def slow_show(row):
        time.sleep(0.12)              # each frame takes 2.4 frame times to show
        return real_show(row)

    monkeypatch.setattr(window, "show_row", slow_show)
    start = time.monotonic()
    panel.play()
    qtbot.wait(600)
    frame, elapsed = window.doc.item.frame, time.monotonic() - start
    panel.pause()
    assert panel.skipped > 0
    # The frame on screen follows the clock (within a slow frame), not the number of ticks.
    assert frame >= int((elapsed - 0.3) * 20)


def _start_models(window, qtbot):
    window.models.start()
    qtbot.waitUntil(lambda: window.models._catalog_loaded, timeout=120_000)
    qtbot.waitUntil(window.is_idle, timeout=60_000)
    for i, e in enumerate(window.models.panel.entries):
        if e.choice.arch == "unet" and not e.trained:
            window.models.panel.select_entry(i)
            return
    pytest.fail("unet is not in the model picker")


def test_run_on_a_frame_range_predicts_exactly_those_frames(window, panel, qtbot):
    _start_models(window, qtbot)
    ws = window.workspace
    corrected = np.zeros((H, W), np.uint8)
    corrected[5:20, 5:20] = 3
    ws.save_labels(ws.items[_frame_row(window, 5)], corrected)
    window.show_row(_frame_row(window, 4))
    panel.first_spin.setValue(3)
    panel.last_spin.setValue(6)
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert not window.is_idle()
    qtbot.waitUntil(window.is_idle, timeout=120_000)
    predicted = sorted(it.frame for it in ws.items if it.status == ItemStatus.PREDICTED)
    assert predicted == [3, 4, 6]
    for it in ws.items:
        if it.frame in (3, 4, 5, 6):
            assert ws.load_labels(it).shape == (H, W)
            assert ws.load_prediction(it).shape == (H, W)
    frame5 = ws.items[_frame_row(window, 5)]
    assert frame5.status == ItemStatus.CORRECTED                 # corrected labels are kept
    np.testing.assert_array_equal(ws.load_labels(frame5), corrected)
    assert window.doc.prediction is not None and window.doc.prediction.trained is False
    np.testing.assert_array_equal(window.doc.labels.array, window.doc.prediction.labels)
    assert panel.progress.value() == 4
    assert "done: 4 frame(s)" in panel.message.text()
    assert "cpu" in window.device_label.text()


def test_cancel_stops_a_frame_run_and_keeps_the_finished_frames(window, qtbot, tmp_path):
    folder = tmp_path / "long"
    folder.mkdir()
    count = 150
    write_clip(folder / "long.avi", count, 192, 128)
    panel = window.video
    window.open_paths([folder])
    _start_models(window, qtbot)
    done = []

    def first_result(row, _prediction):
        done.append(row)
        if len(done) == 1:
            qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)

    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    panel.task.result.connect(first_result)
    qtbot.waitUntil(window.is_idle, timeout=120_000)
    ws = window.workspace
    statuses = [it.status for it in ws.items]
    assert len(statuses) == count
    assert 1 <= statuses.count(ItemStatus.PREDICTED) < count // 2
    assert panel.last_run.cancelled
    assert "cancelled after" in panel.message.text()
    assert panel.run_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_export_overlay_video_from_the_file_menu(window, panel, qtbot, tmp_path):
    ws = window.workspace
    saved = np.zeros((H, W), np.uint8)
    saved[:, W // 2:] = 1
    ws.save_labels(ws.items[_frame_row(window, 2)], saved)
    window.show_row(_frame_row(window, 7))
    window.doc.labels.replace(np.full((H, W), 3, np.uint8), name="test")   # unsaved edit
    file_menu = window.menuBar().actions()[0].menu()
    action = next(a for a in file_menu.actions() if "overlay video" in a.text().replace("&", ""))
    action.trigger()
    qtbot.waitUntil(window.is_idle, timeout=60_000)
    out = ws.root.parent / "clip-overlay.mp4"
    assert "Wrote clip-overlay.mp4: 24 frames, 2 with labels" in panel.message.text()
    cap = cv2.VideoCapture(str(out))
    frames = []
    while (got := cap.read())[0]:
        frames.append(cv2.cvtColor(got[1], cv2.COLOR_BGR2RGB))
    assert len(frames) == FRAMES
    colors = window.classes.color_table().astype(float)
    opacity = window.canvas.opacity
    right = frames[2][10:50, 60:90].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(right, 20 * (1 - opacity) + colors[1] * opacity, atol=10)
    whole = frames[7][10:50, 10:90].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(whole, 70 * (1 - opacity) + colors[3] * opacity, atol=10)
    plain = frames[12][10:50, 10:90].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(plain, 120, atol=6)


def test_moving_the_slider_while_playing_plays_on_from_there(window, panel, qtbot):
    window.show_row(_frame_row(window, 0))
    panel.play()
    qtbot.wait(150)
    panel.slider.setFocus()
    qtbot.keyClick(panel.slider, Qt.Key.Key_PageUp)      # a page is 10 frames further on
    jumped = window.doc.item.frame
    assert jumped >= 10
    qtbot.wait(250)
    assert panel.playing
    # Played on from the new place (250 ms is 5 frames at 20/s), not waiting for the clock
    # of the old place to catch up.
    assert jumped < window.doc.item.frame <= jumped + 9
    panel.pause()


def test_frames_only_looked_at_do_not_count_as_labelled_as_in_the_cli(window, panel, qtbot,
                                                                      tmp_path, capsys):
    from segstudio.cli import main

    ws = window.workspace
    for frame in (2, 5):
        ws.save_labels(ws.items[_frame_row(window, frame)], np.ones((H, W), np.uint8))
    for frame in range(12):                  # browsing: these frames stay open, unedited
        window.show_row(_frame_row(window, frame))
    assert panel.export_overlay(tmp_path / "gui.mp4")
    qtbot.waitUntil(window.is_idle, timeout=60_000)
    assert "24 frames, 2 with labels" in panel.message.text()
    assert "2 with labels" in window.notice.text() and window.notice.isVisible()
    window.ws_writer.flush()
    assert main(["overlay-video", str(ws.root), "--out", str(tmp_path / "cli.mp4")]) == 0
    assert "(2 with labels)" in capsys.readouterr().out
