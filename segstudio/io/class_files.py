"""Class set files: a :class:`~segstudio.core.classes.ClassSet` as JSON on disk.

The class set itself is plain data in ``core``; reading and writing its file lives here, with
the other file formats, so that writes go through :mod:`segstudio.io.atomic`.
"""

from __future__ import annotations

import json
from pathlib import Path

from segstudio.core.classes import ClassSet, ClassSetError
from segstudio.io.atomic import atomic_write_text


def save_class_set(classes: ClassSet, path: str | Path) -> None:
    """Write ``classes`` to ``path`` atomically (the old file stays whole if writing fails)."""
    atomic_write_text(Path(path), json.dumps(classes.to_dict(), indent=2) + "\n")


def load_class_set(path: str | Path) -> ClassSet:
    """Read a class set file; :class:`ClassSetError` names the file and what is wrong."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        # ValueError: bad JSON, or an integer longer than Python converts (4300 digits).
        raise ClassSetError(f"{path.name}: cannot read class set ({exc})") from None
    except RecursionError:
        raise ClassSetError(f"{path.name}: not a class set (nested too deeply)") from None
    if not isinstance(data, dict):
        raise ClassSetError(f"{path.name}: not a class set (expected a JSON object)")
    return ClassSet.from_dict(data)
