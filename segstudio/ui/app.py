"""Starting the GUI: the application object, the window, and ``--screenshot`` mode."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from segstudio.paths import resources_dir
from segstudio.core.classes import chest_xray
from segstudio.ui.launchers import demo_paths, open_demo


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w < 200 or h < 150:
            raise ValueError
        return w, h
    except ValueError:
        raise SystemExit(f"segstudio: error: --size expects WxH like 1280x800, got {text!r}") from None


def run_gui(args) -> int:
    size = _parse_size(args.size) if args.size else None
    demo = getattr(args, "demo", None)
    if demo and args.paths:
        print("segstudio: error: --demo opens its own images; give it no PATHS",
              file=sys.stderr)
        return 2
    paths = [Path(p) for p in args.paths] or ([] if args.no_demo or demo else demo_paths())
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"segstudio: error: no such file or folder: {', '.join(map(str, missing))}",
              file=sys.stderr)
        return 2
    from PySide6.QtCore import QSize, QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from segstudio.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    from segstudio.ui.binding_check import BindingDefect, check_qt_binding

    try:
        check_qt_binding()
    except BindingDefect as exc:
        print(f"segstudio: error: {exc}", file=sys.stderr)
        if not args.screenshot:
            from PySide6.QtWidgets import QMessageBox

            QMessageBox.critical(None, "segstudio cannot start", str(exc))
        return 1
    from segstudio.ui.theme import follow_color_scheme

    scheme = follow_color_scheme(app)  # noqa: F841 - kept alive while the app runs
    app.setApplicationName("segstudio")
    app.setOrganizationName("segstudio")
    icon = resources_dir() / "icons" / "segstudio.svg"
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    win = MainWindow()
    app.aboutToQuit.connect(win.models.shutdown)
    app.aboutToQuit.connect(win.smart.close)
    app.aboutToQuit.connect(win.ws_writer.flush)
    win.interactive = not args.screenshot
    if args.screenshot:
        # A picture of a known size, whatever the screen; the user's remembered size stays.
        win.remember_geometry = False
        win.resize(*(size or (1280, 800)))
    else:
        # The size asked for, else the last one, else 1280×800: never more than the screen.
        win.place_on_screen(QSize(*size) if size else None)
    win.show()
    # On the bundled demo, the default (bundled, trained) model runs at once so a new user sees
    # a prediction; on the user's own files, models run when asked.
    win.models.run_when_ready = not args.paths and bool(paths)
    if demo:
        QTimer.singleShot(0, lambda: open_demo(win, demo))
    else:
        QTimer.singleShot(0, win.models.start)
    if paths:
        # The bundled demo brings its own class set; the user's own folders start with the
        # set last chosen for their kind of data.
        classes = None if args.paths else chest_xray()
        QTimer.singleShot(0, lambda: win.open_paths(paths, classes=classes))
    if not args.screenshot:
        # After the paths above, so that restored work is what stays on screen.
        from segstudio.paths import user_data_dir
        from segstudio.ui.background.autosave import offer_recovery

        QTimer.singleShot(0, lambda: offer_recovery(win, user_data_dir() / "recovery"))
    if args.screenshot:
        shooter = ScreenshotWhenIdle(win, Path(args.screenshot))
        QTimer.singleShot(0, shooter.start)
    return app.exec()


class ScreenshotWhenIdle:
    """Waits until the window has shown its content and no work is running, then saves it."""

    TIMEOUT_S = 600.0
    SETTLE_POLLS = 3

    def __init__(self, window, path: Path) -> None:
        self.window = window
        self.path = path
        self._quiet = 0
        self._started = time.monotonic()

    def start(self) -> None:
        from PySide6.QtCore import QTimer

        self.timer = QTimer(self.window)
        self.timer.setInterval(100)
        self.timer.timeout.connect(self._poll)
        self.timer.start()

    def _poll(self) -> None:
        from PySide6.QtWidgets import QApplication

        if time.monotonic() - self._started > self.TIMEOUT_S:
            print("segstudio: error: the window did not become idle in time", file=sys.stderr)
            QApplication.exit(1)
            return
        self._quiet = self._quiet + 1 if self.window.is_idle() else 0
        if self._quiet < self.SETTLE_POLLS:
            return
        self.timer.stop()
        QApplication.processEvents()
        image = self.window.grab().toImage()
        from segstudio.io.atomic import atomic_write_with

        fmt = (self.path.suffix.lstrip(".") or "png").upper()
        try:
            from PySide6.QtCore import QBuffer, QByteArray, QIODevice

            data = QByteArray()
            buf = QBuffer(data)
            buf.open(QIODevice.OpenModeFlag.WriteOnly)
            if not image.save(buf, fmt):
                raise OSError(f"cannot write {fmt} images")
            atomic_write_with(self.path, lambda f: f.write(bytes(data.data())))
        except OSError as exc:
            print(f"segstudio: error: could not save the screenshot to {self.path}: {exc}",
                  file=sys.stderr)
            QApplication.exit(1)
            return
        print(f"saved screenshot {self.path} ({image.width()}×{image.height()})")
        self.window.discard_changes_on_close = True
        QApplication.exit(0)
