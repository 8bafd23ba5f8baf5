"""The system's dark colour scheme is followed, and painted widgets stay readable in it."""

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication


def _lightness(widget, x, y):
    img = widget.grab().toImage()
    return img.pixelColor(x, y).lightness()


def test_dark_scheme_gives_dark_widgets_with_light_text_and_back(window, image_folder, qtbot):
    from segstudio.ui.theme import SchemeFollower, is_dark

    app = QApplication.instance()
    before_style, before_palette = app.style().name(), app.palette()
    follower = SchemeFollower(app)
    try:
        follower.apply(Qt.ColorScheme.Dark)
        qtbot.wait(20)                                  # palette-change events
        assert is_dark(app.palette()) and is_dark(window.palette())
        text = window.palette().windowText().color().lightness()
        assert text - window.palette().window().color().lightness() > 120
        window.open_paths([image_folder])
        legend = window.legend
        qtbot.wait(20)
        assert _lightness(legend, 2, 2) < 100          # the panel itself is dark
        # Class 0 is black: its swatch keeps a rim that shows on the dark list.
        from segstudio.ui.panels.legend import swatch
        img = swatch((0, 0, 0)).pixmap(14, 14).toImage()
        assert img.pixelColor(0, 0).lightness() > 100 and img.pixelColor(7, 7).lightness() == 0
        bar = window.explain.activations.color_bar
        assert bar.palette().windowText().color().lightness() > 180
        follower.apply(Qt.ColorScheme.Light)
        assert not is_dark(app.palette())
    finally:
        app.setStyle(before_style)
        app.setPalette(before_palette)
