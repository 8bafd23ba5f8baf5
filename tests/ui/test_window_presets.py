"""View ▸ Window presets, View ▸ Set window…, and the readout, on a real DICOM from pydicom."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from PySide6.QtWidgets import QDialog

from helpers import move


@pytest.fixture
def dicom_folder(tmp_path):
    path = get_testdata_file("examples_overlay.dcm", download=False)
    if path is None:
        pytest.skip("pydicom does not ship examples_overlay.dcm here")
    folder = tmp_path / "dicom"
    folder.mkdir()
    shutil.copy(path, folder / "mr.dcm")
    return folder


def _view_menu(window):
    for act in window.menuBar().actions():
        if act.text().replace("&", "") == "View":
            return act.menu()
    raise AssertionError("no View menu")


def _entry(menu, text):
    for act in menu.actions():
        if act.text().replace("&", "").startswith(text):
            return act
    raise AssertionError(f"no {text!r} in {[a.text() for a in menu.actions()]}")


def test_presets_menu_offers_the_files_windows_and_applies_one(window, dicom_folder, qtbot):
    assert window.open_paths([dicom_folder])
    qtbot.waitUntil(lambda: window.doc is not None)
    presets = _entry(_view_menu(window), "Window presets").menu()
    presets.aboutToShow.emit()
    labels = [a.text() for a in presets.actions()]
    assert any("WINDOW1" in t for t in labels) and any("WINDOW2" in t for t in labels)
    assert any(t.startswith("Full range") for t in labels)
    assert any(t.startswith("Automatic") for t in labels)
    first = _entry(presets, "File: WINDOW1")
    assert first.isChecked()                            # the default window is the file's first
    before = window.doc.display_rgb8().copy()
    _entry(presets, "File: WINDOW2").trigger()
    assert window.doc.window == (200.0, 443.0)
    assert not np.array_equal(window.doc.display_rgb8(), before)
    presets.aboutToShow.emit()
    assert _entry(presets, "File: WINDOW2").isChecked()
    assert not _entry(presets, "File: WINDOW1").isChecked()


def test_typed_centre_and_width_set_the_window(window, dicom_folder, qtbot, monkeypatch):
    from segstudio.ui.canvas import window_level

    assert window.open_paths([dicom_folder])
    qtbot.waitUntil(lambda: window.doc is not None)
    shown = []

    def fake_exec(dialog):
        shown.append(dialog.values())
        dialog.centre.setValue(300.0)
        dialog.width_box.setValue(100.0)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(window_level.WindowDialog, "exec", fake_exec)
    assert _entry(_view_menu(window), "Set window").isEnabled()
    _entry(_view_menu(window), "Set window").trigger()
    assert shown == [(450.0, 790.0)]                    # the dialog opens on the current window
    assert window.doc.window == (300.0, 100.0)


def test_pixel_readout_names_stored_modality_and_shown_values(window, dicom_folder, qtbot):
    assert window.open_paths([dicom_folder])
    qtbot.waitUntil(lambda: window.doc is not None)
    stored = pydicom.dcmread(dicom_folder / "mr.dcm").pixel_array
    move(window.canvas, 200.5, 150.5, held=False)
    text = window.pixel_label.text()
    assert "x 200, y 150" in text
    assert f"stored {stored[150, 200]}" in text and f"modality {stored[150, 200]}" in text
    assert "shown" in text


def test_typed_window_is_in_the_files_values_for_monochrome1(window, qtbot, tmp_path,
                                                             monkeypatch):
    from segstudio.ui.canvas import window_level

    path = get_testdata_file("MR_small.dcm", download=False)
    if path is None:
        pytest.skip("pydicom does not ship MR_small.dcm here")
    ds = pydicom.dcmread(path)
    ds.PhotometricInterpretation = "MONOCHROME1"
    folder = tmp_path / "m1"
    folder.mkdir()
    ds.save_as(folder / "m1.dcm")
    assert window.open_paths([folder])
    qtbot.waitUntil(lambda: window.doc is not None)
    shown = []

    def fake_exec(dialog):
        shown.append(dialog.values())
        dialog.centre.setValue(500.0)
        dialog.width_box.setValue(400.0)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(window_level.WindowDialog, "exec", fake_exec)
    assert window.levels.ask()
    assert shown == [(600.0, 1600.0)]                   # the file's own window, as written
    image = window.doc.image
    centre, width = window.doc.window
    assert width == 400.0 and image.mapping.modality(centre) == pytest.approx(500.0)
    # MONOCHROME1: smaller stored values are brighter; 500 ± 200 spans black to white.
    stored = ds.pixel_array
    for y, x in ((10, 10), (32, 32), (40, 20)):
        expected = int(np.clip(np.rint((700.0 - stored[y, x]) * 255.0 / 400.0), 0, 255))
        assert f"shown {expected}" in window.levels.readout(x, y)
