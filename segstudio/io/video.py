"""Frames of a video file as RGB arrays, through OpenCV, with a small cache.

Stepping frame by frame (the common case while labelling) reads on without seeking; a jump
further away seeks, because decoding every frame in between would be slower. Decoded frames
are kept in a least-recently-used cache so that stepping back and forth costs nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from segstudio.io.mp4_samples import missing_frames
from segstudio.io.regular_files import check_regular

VIDEO_SUFFIXES: frozenset[str] = frozenset(
    {".mp4", ".m4v", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv"}
)
# Reading on through this many frames is cheaper than a seek (which decodes from a key frame).
_READ_AHEAD = 16


class VideoError(Exception):
    """A video that cannot be opened, or a frame that cannot be decoded."""


def is_video_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


class VideoSource:
    """Random access to the frames of one video file.

    Frames come back as H×W×3 uint8 RGB arrays marked read-only, because the cache shares them;
    copy one before drawing on it. Safe to call from more than one thread.
    """

    def __init__(self, path: str | Path, cache_frames: int = 64) -> None:
        import cv2

        self.path = Path(path)
        try:
            check_regular(self.path)
        except FileNotFoundError:
            raise VideoError(f"{self.path.name}: the file does not exist") from None
        except OSError as e:
            raise VideoError(f"{self.path.name}: {getattr(e, 'reason', None) or e}") from None
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            self._cap.release()
            raise VideoError(f"{self.path.name}: cannot open this video; the format or codec "
                             "is not supported by OpenCV, or the file is damaged")
        self._lock = threading.Lock()
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = max(1, int(cache_frames))
        self._next = 0  # index of the frame the next plain read() returns
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if count <= 0:
            count = self._count_by_grabbing()
        self.frame_count = count
        if self.frame_count <= 0:
            self.close()
            raise VideoError(f"{self.path.name}: the video holds no readable frames")
        # Frames the index lists but whose data is not in the file (a file cut short).
        lost = missing_frames(self.path)
        self._lost = lost if lost is not None else np.empty(0, np.int64)

    def _count_by_grabbing(self) -> int:
        # Some containers do not store a frame count; walking them once is the only way.
        import cv2

        n = 0
        while self._cap.grab():
            n += 1
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self._next = 0
        return n

    def __len__(self) -> int:
        return self.frame_count

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based) as H×W×3 uint8 RGB."""
        index = int(index)
        if not 0 <= index < self.frame_count:
            raise VideoError(f"{self.path.name}: frame {index} is outside "
                             f"0..{self.frame_count - 1}")
        with self._lock:
            cached = self._cache.get(index)
            if cached is not None:
                self._cache.move_to_end(index)
                return cached
            if self._cap is None:
                raise VideoError(f"{self.path.name}: the video has been closed")
            if self.is_lost(index):
                raise VideoError(
                    f"{self.path.name}: frame {index} cannot be decoded: its data is missing, "
                    f"the file is cut short ({len(self._lost)} of {self.frame_count} frames are "
                    "lost); copy the video again from its source")
            frame = self._decode(index)
            self._cache[index] = frame
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return frame

    def is_lost(self, index: int) -> bool:
        """True when frame ``index`` is listed by the file but its data is not in it."""
        i = int(np.searchsorted(self._lost, index))
        return i < len(self._lost) and int(self._lost[i]) == index

    def _decode(self, index: int) -> np.ndarray:
        import cv2

        if not 0 <= index - self._next <= _READ_AHEAD:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            # A seek into a damaged stretch lands elsewhere (the last frame that decodes);
            # reading on from there would return that frame's picture for this one.
            self._next = index if self._position() == index else -1
        while 0 <= self._next < index:
            if not self._cap.grab():
                break
            self._next += 1
        ok, bgr = self._cap.read() if self._next == index else (False, None)
        if ok and self._position() not in (index + 1, None):
            ok = False
        if not ok or bgr is None:
            # The stream position is now unknown; the next read must seek.
            self._next = -(_READ_AHEAD + 2)
            raise VideoError(f"{self.path.name}: frame {index} cannot be decoded; the file may "
                             "be damaged or shorter than its header says")
        self._next = index + 1
        if bgr.ndim == 2:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        else:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB if bgr.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        if rgb.dtype != np.uint8:
            rgb = (rgb / (np.iinfo(rgb.dtype).max / 255.0)).round().astype(np.uint8)
        if not self.width or not self.height:
            self.height, self.width = rgb.shape[:2]
        rgb.setflags(write=False)
        return rgb

    def _position(self) -> int | None:
        """The index of the frame a plain read() would return now, or None if not reported."""
        import cv2

        pos = self._cap.get(cv2.CAP_PROP_POS_FRAMES)
        return int(round(pos)) if pos is not None and pos >= 0 else None

    def close(self) -> None:
        """Release the file; later reads of uncached frames raise :class:`VideoError`."""
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            if self._cap is not None:
                self._cap.release()
                self._cap = None
            self._cache.clear()
