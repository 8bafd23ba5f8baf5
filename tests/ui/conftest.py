import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def image_folder(tmp_path):
    """Three small images: a grey gradient, an RGB picture, a 16-bit grey PNG."""
    folder = tmp_path / "images"
    folder.mkdir()
    yy, xx = np.mgrid[0:120, 0:160]
    Image.fromarray(((xx + yy) % 256).astype(np.uint8)).save(folder / "a_gradient.png")
    rgb = np.zeros((90, 130, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[30:60, 40:90] = (20, 180, 40)
    Image.fromarray(rgb).save(folder / "b_picture.png")
    deep = (xx * 400).astype(np.uint16)
    Image.fromarray(deep).save(folder / "c_deep.png")
    return folder


@pytest.fixture
def window(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from segstudio.ui.main_window import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings)
    win.interactive = False          # errors go to the status bar, not modal dialogs
    win.discard_changes_on_close = True
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    qtbot.waitExposed(win)
    return win
