"""The model card in the Model panel, and the out-of-domain notice on the canvas and in the
Scores panel: quiet on the phantom demo, loud on a real CT from pydicom."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from segstudio.ui.canvas import domain_notice
from segstudio.ui.launchers import open_demo


def _wait_for_prediction(window, qtbot):
    qtbot.waitUntil(lambda: window.doc is not None and window.doc.prediction is not None
                    and window.is_idle(), timeout=180_000)


def _red_band_pixels(window) -> int:
    image = window.canvas.grab().toImage()
    count = 0
    for x in range(20, min(image.width(), 400), 7):
        for y in range(10, 24, 3):
            c = image.pixelColor(x, y)
            count += c.red() > 140 and c.green() < 80 and c.blue() < 80
    return count


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


def test_a_real_ct_is_called_out_on_the_canvas_and_in_the_scores(window, qtbot, tmp_path):
    path = get_testdata_file("CT_small.dcm", download=False)
    if path is None:
        pytest.skip("pydicom does not ship CT_small.dcm here")
    folder = tmp_path / "ct"
    folder.mkdir()
    shutil.copy(path, folder / "ct.dcm")
    window.models.start()
    qtbot.waitUntil(lambda: window.models._catalog_loaded, timeout=120_000)
    assert window.open_paths([folder])
    qtbot.waitUntil(lambda: window.doc is not None)
    entry = window.models.panel.current_entry()
    assert entry.choice.checkpoint.name == "chest_xray_unet_lite.pt"
    assert window.models.run_current()
    _wait_for_prediction(window, qtbot)
    finding = window.doc.prediction.domain
    assert finding.out_of_domain
    text = domain_notice.notice_text(window)
    assert text.startswith("Out of domain: trained on synthetic images; on this image its "
                           "confidence is")
    assert text.endswith("treat as a rough start")
    qtbot.waitUntil(lambda: _red_band_pixels(window) > 10, timeout=5_000)
    window.metrics.refresh_image()
    label = window.metrics.domain_label
    assert label.isVisibleTo(window.metrics) and label.text().startswith("Out of domain")
    assert f"{finding.confidence:.2f} against {finding.val_confidence:.2f}" in label.text()
    # Labels are still there to correct: the notice warns, it takes nothing away.
    assert np.any(window.doc.labels.array > 0)
