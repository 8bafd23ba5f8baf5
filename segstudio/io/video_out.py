"""Writing an mp4 in the most widely playable codec the installed encoders offer.

H.264 plays in browsers and slide software; MPEG-4 Part 2 ('mp4v', all that OpenCV's own wheels
can encode) often does not. So: H.264 through PyAV's libx264 when PyAV is installed (the
``h264`` extra), else H.264 through OpenCV when its FFmpeg has an encoder for it, else mp4v —
and the writer says which one it used, so the user is told.

Each H.264 route is tried once per process on a tiny clip that is read back, since an encoder
can open and still write nothing readable (OpenCV's hardware H.264 on a machine without the
device).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

H264_PYAV = "H.264 (libx264)"
H264_OPENCV = "H.264 (OpenCV)"
MPEG4 = "MPEG-4 Part 2 (mp4v)"
ADVICE = ("browsers and slide software may refuse it; install PyAV (pip install av, or the "
          "h264 extra) to write H.264")
_probed: dict[str, bool] = {}


class VideoOutError(Exception):
    """No encoder can write the video; the message says why."""


def _pyav():
    try:
        import av
    except ImportError:
        return None
    return av


class _PyAvOut:
    codec = H264_PYAV

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        av = _pyav()
        self.container = av.open(str(path), mode="w", format="mp4")
        try:
            stream = self.container.add_stream("libx264",
                                               rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height = size
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "18", "preset": "veryfast"}
        except Exception:
            self.container.close()
            raise
        self.stream = stream
        self.av = av

    def write(self, rgb: np.ndarray) -> None:
        frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        """Flush and close; after a failure (a full disk) a second call does nothing."""
        container, self.container = self.container, None
        if container is None:
            return
        try:
            for packet in self.stream.encode():
                container.mux(packet)
        finally:
            container.close()


class _OpenCvOut:
    def __init__(self, path: Path, fps: float, size: tuple[int, int], fourcc: str) -> None:
        import cv2

        self.codec = H264_OPENCV if fourcc == "avc1" else MPEG4
        with _quiet_stderr():
            self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
        if not self.writer.isOpened():
            raise VideoOutError(f"OpenCV cannot write '{fourcc}' videos here")

    def write(self, rgb: np.ndarray) -> None:
        self.writer.write(np.ascontiguousarray(rgb[..., ::-1]))

    def close(self) -> None:
        self.writer.release()


@contextlib.contextmanager
def _quiet_stderr():
    """Silence FFmpeg's own lines on file descriptor 2 while an encoder is tried."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _works(route: str) -> bool:
    """Whether ``route`` writes a clip that reads back (tried once per process)."""
    if route not in _probed:
        import cv2

        ok = False
        fd, name = tempfile.mkstemp(suffix=".mp4")
        os.close(fd)
        try:
            out = _PyAvOut(Path(name), 10.0, (32, 24)) if route == "pyav" else \
                _OpenCvOut(Path(name), 10.0, (32, 24), "avc1")
            for i in range(3):
                out.write(np.full((24, 32, 3), 60 * i, np.uint8))
            out.close()
            with _quiet_stderr():
                cap = cv2.VideoCapture(name)
                ok = bool(cap.read()[0])
                cap.release()
        except Exception:   # noqa: BLE001 - any failure means this route is not available
            ok = False
        finally:
            with contextlib.suppress(OSError):
                os.unlink(name)
        _probed[route] = ok
    return _probed[route]


def open_video_out(path: str | Path, fps: float, size: tuple[int, int], *,
                   prefer_h264: bool = True):
    """A writer of RGB frames of ``size`` (width, height) to the mp4 ``path``, with ``codec``
    naming what it encodes and ``write(rgb)`` / ``close()``. H.264 needs even sizes: give
    ``size`` even (``even_size``)."""
    path = Path(path)
    if prefer_h264 and size[0] % 2 == 0 and size[1] % 2 == 0:
        if _pyav() is not None and _works("pyav"):
            return _PyAvOut(path, fps, size)
        if _works("opencv"):
            return _OpenCvOut(path, fps, size, "avc1")
    try:
        return _OpenCvOut(path, fps, size, "mp4v")
    except VideoOutError:
        raise VideoOutError(f"{path.name}: neither PyAV nor OpenCV can write mp4 videos here; "
                            "install PyAV (pip install av)") from None


def even_size(width: int, height: int) -> tuple[int, int]:
    """The largest even width and height within the given ones (H.264 and mp4v need them)."""
    return max(2, width - width % 2), max(2, height - height % 2)


def describe(codec: str) -> str:
    """The codec for a message: plain when widely playable, with advice when not."""
    return codec if codec != MPEG4 else f"{codec}: {ADVICE}"
