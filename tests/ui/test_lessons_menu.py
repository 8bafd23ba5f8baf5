"""The Lessons menu: each lab opens from the menu, measures live, shows its numbers and exports
its figure for slides."""

import pytest
from PySide6.QtWidgets import QApplication

from segstudio.ui.lessons.page import LessonPage

WAIT_MS = 240_000


@pytest.fixture(autouse=True)
def _one_image(monkeypatch):
    monkeypatch.setattr(LessonPage, "default_images", 1)


def _lessons_menu(window):
    return next(a.menu() for a in window.menuBar().actions()
                if a.menu() is not None and a.text().replace("&", "") == "Lessons")


def _open(window, qtbot, name):
    menu = _lessons_menu(window)
    action = window.lesson_actions[name]
    assert action in menu.actions()
    action.trigger()
    page = window.lesson_pages[name]
    assert page.isVisible()
    return page


def _measured(page, qtbot):
    qtbot.waitUntil(lambda: bool(page.number_lines) and not page.busy, timeout=WAIT_MS)
    return page.number_lines


def _exports(page, tmp_path, needle):
    png = page.export(tmp_path / "figure.png")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 1000
    svg = page.export(tmp_path / "figure.svg")
    text = svg.read_text(encoding="utf-8")
    assert "<svg" in text and needle in text


def _fits_small_screen(page):
    hint = page.minimumSizeHint()
    assert hint.width() <= 1280 and hint.height() <= 720
    assert page.width() <= 1280 and page.height() <= 720


def test_lessons_menu_lists_one_entry_per_lab(window):
    texts = [a.text().replace("&", "") for a in _lessons_menu(window).actions()]
    assert len(texts) == 4
    assert texts[0].startswith("1 Upsampling") and texts[3].startswith("4 Atrous")


def test_upsampling_lab_shows_the_measured_kernels_checkerboard_and_indices(window, qtbot,
                                                                          tmp_path):
    from segstudio.explain.lessons.upsampling import run_upsampling_lab

    page = _open(window, qtbot, "upsampling")
    lines = _measured(page, qtbot)
    assert lines == page.numbers(run_upsampling_lab("chest", "fcn8s", 1))
    assert "stride-8 lattice" in lines[1] and "top left" in lines[2]
    assert page.numbers_label.text() == "\n".join(lines)
    _exports(page, tmp_path, "Checkerboard")
    _fits_small_screen(page)


def test_skips_lab_measures_each_fcn_and_the_zeroed_skips(window, qtbot, tmp_path):
    from segstudio.explain.lessons.skips import run_skips_lab

    page = _open(window, qtbot, "skips")
    lines = _measured(page, qtbot)
    assert lines == page.numbers(run_skips_lab("chest", 1))
    assert any(line.startswith("fcn8s − score_pool3:") for line in lines)
    _exports(page, tmp_path, "fcn32s")
    _fits_small_screen(page)


def test_crf_lab_measures_again_with_the_slider_widths(window, qtbot, tmp_path):
    from segstudio.explain.lessons.crf_lab import run_crf_lab

    page = _open(window, qtbot, "crf")
    first = _measured(page, qtbot)
    assert "θα 80 px" in first[0] and first[1].startswith("deeplabv1: whole")
    page.sliders["bilateral_sxy"].setValue(20)
    page.sliders["gaussian_sxy"].setValue(5)
    page.run()
    qtbot.waitUntil(lambda: bool(page.number_lines) and "θα 20 px" in page.number_lines[0]
                    and not page.busy, timeout=WAIT_MS)
    assert page.number_lines == page.numbers(run_crf_lab("chest", 1, page.params()))
    assert page.number_lines != first
    _exports(page, tmp_path, "deeplabv2")
    _fits_small_screen(page)
    page.close()
    assert page._crf is None


def test_lab_window_stays_responsive_while_measuring(window, qtbot):
    page = _open(window, qtbot, "skips")
    assert page.busy                       # the measurement runs off the GUI thread
    QApplication.processEvents()
    assert page.export("unused.png") is None and "measure first" in page.status.text()
    page.cancel()
    qtbot.waitUntil(lambda: not page.busy, timeout=WAIT_MS)
    assert page.number_lines == []


def test_atrous_lab_opens_the_context_demo_in_the_context_tab(window, qtbot, tmp_path):
    page = _open(window, qtbot, "atrous")
    assert page.export(tmp_path / "none.png") is None
    assert page.open_view("context")
    assert window.explain.current_view() is window.explain.context
    assert window.workspace is not None
    qtbot.waitUntil(lambda: window.doc is not None and window.doc.prediction is not None,
                    timeout=WAIT_MS)
    _fits_small_screen(page)


def test_figure_caption_lines_fit_the_figure_width(window, qtbot):
    from PySide6.QtGui import QFont, QFontMetrics

    from segstudio.ui.explain.figure_export import MARGIN, figure_size

    page = _open(window, qtbot, "upsampling")
    _measured(page, qtbot)
    font = QFont()
    font.setPixelSize(13)
    metrics = QFontMetrics(font)
    width = figure_size(page.figure)[0] - 2 * MARGIN
    assert len(page.figure.caption) > len(page.number_lines)        # long lines were broken
    assert all(metrics.horizontalAdvance(line) <= width for line in page.figure.caption)
    joined = " ".join(" ".join(line.split()) for line in page.figure.caption)
    assert joined == " ".join(" ".join(line.split()) for line in page.number_lines)


def test_a_lab_without_its_bundled_model_says_so_on_the_page(window, qtbot, tmp_path,
                                                           monkeypatch):
    import segstudio.explain.lessons.common as common

    monkeypatch.setattr(common, "weights_dir", lambda: tmp_path)
    page = _open(window, qtbot, "skips")
    qtbot.waitUntil(lambda: not page.busy, timeout=WAIT_MS)
    assert "chest_xray_fcn32s_lite.pt is not installed" in page.status.text()
    assert page.number_lines == [] and not page.png_button.isEnabled()


@pytest.mark.parametrize("name", ["skips", "crf"])
def test_closing_the_window_while_a_lab_measures_ends_its_thread(window, qtbot, name):
    page = _open(window, qtbot, name)
    assert page.busy
    task = page.task
    window.close()
    assert not task.isRunning()
    if name == "crf":
        assert page._crf is None             # the CRF worker process is gone too
