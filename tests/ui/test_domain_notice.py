"""The model card in the Model panel, and the out-of-domain notice above the canvas and in the
Scores panel: quiet on the phantom demo, loud on a real CT from pydicom; its reasons listed on
request, dismissed per item, gone once a person corrected the item."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from pydicom.data import get_testdata_file

from helpers import drag
from segstudio.io.workspace import ItemStatus

from segstudio.ui.canvas import domain_notice
from segstudio.ui.launchers import open_demo


def _wait_for_prediction(window, qtbot):
    qtbot.waitUntil(lambda: window.doc is not None and window.doc.prediction is not None
                    and window.is_idle(), timeout=180_000)


def _red_band_pixels(window) -> int:
    """Red pixels in the top rows of the window's centre (the bar, or a band on the image)."""
    central = window.centralWidget()
    image = central.grab().toImage()
    count = 0
    for x in range(20, min(image.width(), 400), 7):
        for y in range(4, 24, 3):
            c = image.pixelColor(x, y)
            count += c.red() > 140 and c.green() < 80 and c.blue() < 80
    return count


def _in_window(widget, window) -> QRect:
    return QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())


def test_the_phantom_demo_shows_its_card_and_stays_quiet(window, qtbot):
    assert open_demo(window, "chest")
    _wait_for_prediction(window, qtbot)
    finding = window.doc.prediction.domain
    assert finding is not None and not finding.out_of_domain, finding.reasons
    assert domain_notice.notice_text(window) is None
    assert _red_band_pixels(window) == 0
    window.metrics.refresh_image()
    label = window.metrics.domain_label
    assert label.isVisibleTo(window.metrics) and label.text().startswith("In domain")
    card = window.models.panel.card_label.text()
    assert "synthetic" in card and "320 train, 80 validation" in card
    assert "not a medical device" in card


def test_a_real_ct_is_called_out_above_the_canvas_and_in_the_scores(window, qtbot, tmp_path):
    path = get_testdata_file("CT_small.dcm", download=False)
    if path is None:
        pytest.skip("pydicom does not ship CT_small.dcm here")
    folder = tmp_path / "ct"
    folder.mkdir()
    shutil.copy(path, folder / "ct.dcm")
    shutil.copy(path, folder / "ct_again.dcm")
    window.models.start()
    qtbot.waitUntil(lambda: window.models._catalog_loaded, timeout=120_000)
    assert window.open_paths([folder])
    qtbot.waitUntil(lambda: window.doc is not None)
    entry = window.models.panel.current_entry()
    assert entry.choice.checkpoint.name == "chest_xray_unet_lite.pt"
    assert window.models.run_all()
    _wait_for_prediction(window, qtbot)
    qtbot.waitUntil(lambda: all(i.status is ItemStatus.PREDICTED
                                for i in window.workspace.items), timeout=180_000)
    finding = window.doc.prediction.domain
    assert finding.out_of_domain
    text = domain_notice.notice_text(window)
    assert text.startswith("Out of domain: trained on synthetic images; on this image its "
                           "confidence is")
    assert text.endswith("treat as a rough start")
    bar = window.domain_notice
    qtbot.waitUntil(bar.isVisible, timeout=5_000)
    assert bar.label.text() == text
    assert _red_band_pixels(window) > 10
    # Above the image, never over it.
    assert not _in_window(bar, window).intersects(_in_window(window.canvas, window))
    assert _in_window(bar, window).bottom() < _in_window(window.canvas, window).top()
    # Every reason, on request (the sentence names two at most).
    reasons = finding.reasons
    assert bar.why_button.text() == f"Why ({len(reasons)} reason{'s' if len(reasons) != 1 else ''})"
    qtbot.mouseClick(bar.why_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bar.popup is not None and bar.popup.isVisible())
    from html import escape
    assert all(escape(r) in bar.popup.text() for r in reasons)
    assert all(r in bar.label.toolTip() for r in reasons)
    bar.popup.close()
    window.metrics.refresh_image()
    label = window.metrics.domain_label
    assert label.isVisibleTo(window.metrics) and label.text().startswith("Out of domain")
    assert f"{finding.confidence:.2f} against {finding.val_confidence:.2f}" in label.text()
    # Labels are still there to correct: the notice warns, it takes nothing away.
    assert np.any(window.doc.labels.array > 0)

    # Dismissed for this item, for the session; the other item still says it.
    first = window.doc.row
    qtbot.mouseClick(bar.dismiss_button, Qt.MouseButton.LeftButton)
    assert not bar.isVisible()
    window.show_row(1 - first)
    qtbot.waitUntil(lambda: window.doc.row == 1 - first)
    assert window.doc.prediction is not None or window.models.run_current()
    _wait_for_prediction(window, qtbot)
    qtbot.waitUntil(bar.isVisible, timeout=5_000)
    window.show_row(first)
    assert not bar.isVisible()
    # Corrected by hand and saved: the labels are a person's now, and the notice goes.
    window.show_row(1 - first)
    assert bar.isVisible()
    window.legend.select_class(1)
    drag(window.canvas, [(20, 20), (60, 20)])
    assert window.save_current()
    assert window.doc.item.status is ItemStatus.CORRECTED
    assert not bar.isVisible()
