"""``segstudio-workspace.json``: reading it with every check a damaged or hostile file needs,
and writing it (see ``docs/workspace-format.md``).

A file nested thousands deep, with a number thousands of digits long, a version that is no
version, or items whose sources leave the workspace is refused with one line saying what is
wrong, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

from segstudio.io.workspace_error import WorkspaceError

FORMAT_NAME = "segstudio-workspace"
FORMAT_VERSION = 1
_MAX_KNOWN_VERSION = 1000           # past this a "version" is damage, not a newer segstudio
_MAX_NESTING = 64                   # deeper JSON than this is damage (the format needs 5 levels)


def encode_workspace_file(data: dict) -> str:
    """The file's text: UTF-8 JSON, or ASCII escapes where a file name is not valid UTF-8."""
    text = json.dumps(data, indent=1, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(data, indent=1, ensure_ascii=True)
    return text + "\n"


def _is_inside(rel: str) -> bool:
    """True for a relative path that stays inside the workspace (no absolute, no '..', no
    control characters)."""
    if not rel.strip() or ":" in rel or any(ord(c) < 32 or ord(c) == 127 for c in rel):
        return False
    parts = rel.replace("\\", "/").split("/")
    return not rel.startswith(("/", "\\")) and ".." not in parts


def read_workspace_file(path: Path) -> dict | None:
    """The file's content, checked for what the workspace relies on; None when there is none.
    A damaged or hostile file is a :class:`WorkspaceError` saying what is wrong with it."""
    return load_workspace_file(path)[1]


def load_workspace_file(path: Path) -> tuple[bytes | None, dict | None]:
    """The file's bytes and its checked content, (None, None) when there is none. The bytes
    tell a later writer whether anyone changed the file since (see ``workspace_lock``)."""
    raw = read_workspace_bytes(path)
    return raw, None if raw is None else parse_workspace_file(path.name, raw)


def read_workspace_bytes(path: Path) -> bytes | None:
    """The file's bytes, unchecked; None when there is none."""
    if not path.is_file():
        return None
    try:
        return path.read_bytes()
    except FileNotFoundError:           # replaced or removed since the check
        return None
    except OSError as e:
        raise WorkspaceError(f"{path.name}: cannot be read ({e.strerror or e})") from None


def parse_workspace_file(name: str, raw: bytes) -> dict:
    """The content of a workspace file called ``name`` holding ``raw``, checked."""
    damaged = (f"{name}: the workspace file is damaged ({{}}); repair it or move it aside "
               "to start the workspace afresh")
    try:
        data = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise WorkspaceError(damaged.format("its brackets are nested too deeply")) from None
    except UnicodeDecodeError:
        raise WorkspaceError(damaged.format("it is not UTF-8 text")) from None
    except json.JSONDecodeError as e:
        raise WorkspaceError(damaged.format(str(e)[:200])) from None
    except ValueError:                   # Python refuses numbers of more than 4,300 digits
        raise WorkspaceError(damaged.format("it holds a number thousands of digits long")) from None
    if _too_deep(data):
        raise WorkspaceError(damaged.format(f"values are nested more than {_MAX_NESTING} deep"))
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise WorkspaceError(f"{name}: not a segstudio workspace file")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise WorkspaceError(damaged.format(f"its format version must be a whole number from 1 "
                                            f"on, not {json.dumps(version)[:40]}"))
    if version > _MAX_KNOWN_VERSION:
        raise WorkspaceError(damaged.format(f"its format version {str(version)[:20]}… is no "
                                            "version a segstudio has written"))
    if version > FORMAT_VERSION:
        raise WorkspaceError(f"{name}: written by a newer segstudio (format version "
                             f"{version}); update segstudio to open it")
    items = data.get("items", [])
    if not isinstance(items, list) or not all(
            isinstance(r, dict) and isinstance(r.get("source"), str) and _is_inside(r["source"])
            and (r.get("frame") is None or isinstance(r.get("frame"), int)) for r in items):
        raise WorkspaceError(f"{name}: the item list is damaged; each item needs a relative "
                             "'source' and an integer or null 'frame'")
    files = data.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) and _is_inside(f) for f in files):
        raise WorkspaceError(f"{name}: the file list is damaged")
    return data


def _too_deep(data: object) -> bool:
    """True when lists and objects nest deeper than ``_MAX_NESTING`` (checked without recursion,
    so saving such a file later cannot overflow the stack either)."""
    level = [data]
    for _ in range(_MAX_NESTING):
        level = [v for x in level if isinstance(x, (dict, list))
                 for v in (x.values() if isinstance(x, dict) else x)]
        if not level:
            return False
    return any(isinstance(x, (dict, list)) for x in level)
