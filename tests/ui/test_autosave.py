import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image

from helpers import drag
from segstudio.io.recovery import orphans
from segstudio.paths import user_data_dir
from segstudio.ui.background.autosave import restore_session

CRASHING_APP = textwrap.dedent("""
    import sys, time
    from PySide6.QtWidgets import QApplication
    from segstudio.ui.main_window import MainWindow
    sys.path.insert(0, sys.argv[2])
    from helpers import drag
    app = QApplication([])
    win = MainWindow()
    win.interactive = False
    win.resize(900, 700)
    win.show()
    win.open_paths([sys.argv[1]])
    app.processEvents()
    win.legend.select_class(2)
    win.tools["Brush"].set_size(7)
    drag(win.canvas, [(10, 20), (90, 20)])
    win.show_row(1)                                 # switching images autosaves at once
    drag(win.canvas, [(5, 5), (50, 40)])
    win.autosave.flush()
    win.autosave.wait()
    import numpy as np
    np.savez(sys.argv[3], a=win.document_for(0).labels.array, b=win.doc.labels.array)
    print("autosaved", flush=True)
    time.sleep(120)
""")


def test_autosave_writes_the_changed_map_and_a_real_save_drops_it(window, image_folder, qtbot):
    window.open_paths([image_folder])
    window.legend.select_class(1)
    drag(window.canvas, [(10, 10), (40, 10)])
    assert window.autosave.flush() == 1
    assert window.autosave.wait()
    store = window.autosave.store
    saved = np.array(Image.open(store.folder / "00000.png"))
    np.testing.assert_array_equal(saved, window.doc.labels.array)
    assert window.autosave.flush() == 0             # nothing new since
    window.save_current()
    assert not (store.folder / "00000.png").exists()


def test_a_killed_app_offers_back_every_autosaved_stroke(window, image_folder, qtbot, tmp_path):
    helpers_dir = Path(__file__).parent
    snapshot = tmp_path / "expected.npz"
    proc = subprocess.Popen([sys.executable, "-c", CRASHING_APP, str(image_folder),
                             str(helpers_dir), str(snapshot)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    try:
        line = proc.stdout.readline()
        assert line.strip() == "autosaved", proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)           # no clean-up runs: a real crash
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    expected = np.load(snapshot)
    sessions = orphans(user_data_dir() / "recovery", exclude=window.autosave.store.folder)
    assert len(sessions) == 1
    assert {i.item_id for i in sessions[0].items} == {"a_gradient", "b_picture"}
    assert restore_session(window, sessions[0]) == 2
    ws = window.workspace
    np.testing.assert_array_equal(ws.load_labels(ws.items[0]), expected["a"])
    np.testing.assert_array_equal(ws.load_labels(ws.items[1]), expected["b"])
    assert (expected["a"] == 2).sum() > 80 * 5 and (expected["b"] == 2).sum() > 40 * 5
    assert not sessions[0].folder.exists()


def test_autosaved_objects_come_back_with_their_labels(window, image_folder, qtbot, monkeypatch):
    from segstudio.io import recovery
    from segstudio.io.object_store import load_objects

    window.open_paths([image_folder])
    window.legend.select_class(2)
    window.objects.clear_selection()
    window.set_tool("Object brush")
    drag(window.canvas, [(10, 10), (40, 10)])
    expected_labels = np.array(window.doc.labels.array)
    expected_objects = np.array(window.doc.labels.objects.array)
    assert expected_objects.max() == 1
    assert window.autosave.flush() == 1 and window.autosave.wait()
    monkeypatch.setattr(recovery, "_alive", lambda pid: False)     # as if this one had crashed
    sessions = orphans(user_data_dir() / "recovery")
    assert len(sessions) == 1 and sessions[0].items[0].objects_recorded
    assert restore_session(window, sessions[0]) == 1
    ws = window.workspace
    np.testing.assert_array_equal(ws.load_labels(ws.items[0]), expected_labels)
    np.testing.assert_array_equal(load_objects(ws, ws.items[0]), expected_objects)
