"""Sizes known before anything is decoded: a label PNG's header, an item's picture.

A label file can claim any size: a 173-byte labelme file or a PNG header may declare 50,000²
pixels. Importers compare such a claim with the size of the item's picture first and allocate
nothing for a file that does not fit, so a false claim costs a message, never the memory it
names. The picture's size comes from its header where the header can tell, so that importing
labels for large pictures does not decode every one of them.
"""

from __future__ import annotations

from pathlib import Path

from segstudio.io.images import ImageReadError
from segstudio.io.pillow_pixels import open_header, orientation_of
from segstudio.io.regular_files import open_regular
from segstudio.io.workspace_error import WorkspaceError

# EXIF orientations that turn the picture by a quarter: width and height trade places.
_QUARTER_TURNS = frozenset({5, 6, 7, 8})


class SizeUnknown(Exception):
    """The item's picture cannot be read; the message says why."""


def png_size(path: str | Path) -> tuple[int, int] | None:
    """``(width, height)`` from a label image's header, decoding nothing; None when the header
    cannot be read (the reader that decodes it then says why)."""
    try:
        with open_regular(path) as f, open_header(f) as im:
            return im.width, im.height
    except Exception:  # noqa: BLE001 - any failure means "unknown"; load_label_png says why
        return None


def header_size(workspace, item) -> tuple[int, int] | None:
    """``(width, height)`` of the item's picture as shown (EXIF turns applied) from the image
    file's header, or None when only a decode can tell (video frames, DICOM, damaged files)."""
    if item.frame is not None:
        return None
    try:
        with open_regular(workspace.source_path(item)) as f:
            if f.read(132)[128:132] == b"DICM":
                return None
            with open_header(f) as im:
                size = im.width, im.height
                turned = orientation_of(im, loaded=False) in _QUARTER_TURNS
    except Exception:  # noqa: BLE001 - unknown from the header: the decode decides
        return None
    return size[::-1] if turned else size


def decoded_size(workspace, item) -> tuple[int, int]:
    """``(width, height)`` of the item's picture, decoded as it is shown; SizeUnknown when it
    cannot be read."""
    try:
        image = workspace.read_image(item)
    except (ImageReadError, WorkspaceError) as e:
        raise SizeUnknown(str(e)) from None
    return image.width, image.height


def fits(workspace, item, declared: tuple[int, int]) -> tuple[bool, tuple[int, int]]:
    """Whether ``declared`` (width, height) is the size of the item's picture, and that size.

    The header answers when it agrees. A PNG may keep its EXIF orientation after the pixels,
    where the header does not reach: a claim of the turned size, and a picture whose header
    cannot tell, are settled by decoding the item's own picture (its size is the file's own,
    checked by the image reader), never by anything the label file claims.
    """
    size = header_size(workspace, item)
    if size is not None and (declared == size or declared != size[::-1]):
        return declared == size, size
    size = decoded_size(workspace, item)
    return declared == size, size


def picture_name(workspace, item) -> str:
    """The file name of the item's picture, as messages give it."""
    return Path(workspace.source_path(item)).name

