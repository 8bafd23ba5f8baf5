"""What kind of pictures a folder holds, from file names and headers only: DICOM, video, grey
pictures or colour photos. A new workspace starts with the class set the person last chose for
that kind of data (radiographs and holiday photos are not labelled with the same classes)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from segstudio.io.images import DICOM_SUFFIXES
from segstudio.io.pillow_pixels import open_header
from segstudio.io.regular_files import open_regular
from segstudio.io.video import is_video_path

KINDS = ("dicom", "video", "grey", "photo")
DESCRIBED = {"dicom": "DICOM images", "video": "videos", "grey": "grey pictures",
             "photo": "colour photos"}
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_LOOKED_AT = 12            # headers read at most: a folder of 10,000 images opens as fast


def data_kind(sources: Iterable[str | Path], root: Path | None = None) -> str:
    """``"dicom"`` if any source is a DICOM file, else ``"video"`` if any is a video, else
    ``"grey"`` when the first pictures are all grey, else ``"photo"``."""
    paths = [Path(s) for s in sources]
    if any(p.suffix.lower() in DICOM_SUFFIXES for p in paths):
        return "dicom"
    if any(is_video_path(p) for p in paths):
        return "video"
    for p in paths[:_LOOKED_AT]:
        try:
            with open_regular(root / p if root is not None else p) as f:
                if open_header(f).mode not in _GREY_MODES:
                    return "photo"
        except Exception:            # noqa: BLE001 - an unreadable picture says nothing here
            continue
    return "grey"
