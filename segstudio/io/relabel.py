"""Changing a labelled workspace's class set by class name: every label and prediction file is
rewritten so each pixel keeps the name of its class.

The rewrite touches many files, so it keeps a journal (``.segstudio-relabel.json`` in the root):
the mapping and, for each file to rewrite, its identity (inode, size, modification time) before
the change. Each file is replaced atomically, which gives it a new identity; so after a crash the
files still holding their recorded identity are exactly the ones left to do, and
:func:`finish_interrupted_relabel` completes the change when the workspace next opens. The class
set in the workspace file changes last, and the journal goes after it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from segstudio.core.class_mapping import ClassMapping
from segstudio.core.classes import ClassSet, ClassSetError
from segstudio.core.label_paths import prediction_of
from segstudio.io.atomic import atomic_write_text
from segstudio.io.voc import VocError, load_label_png, save_label_png
from segstudio.io.workspace_error import WorkspaceError

JOURNAL = ".segstudio-relabel.json"


def _identity(path: Path) -> list[int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def label_files(ws) -> list[str]:
    """The workspace's label and prediction files that exist, relative to its root."""
    found = []
    for item in ws.items:
        for rel in (str(item.label), prediction_of(str(item.label))):
            try:
                path = ws.checked(item, rel)
            except WorkspaceError:
                continue                 # a linked folder: refused when it is written
            if path.is_file():
                found.append(rel)
    return found


def relabel_by_name(ws, new: ClassSet, *,
                    progress: Callable[[int, int], None] | None = None) -> ClassMapping:
    """Give workspace ``ws`` the class set ``new``, rewriting every label and prediction file
    so each pixel keeps its class name; the old set's names that ``new`` lacks are appended to
    it. Returns the mapping used (its ``target`` is the workspace's set afterwards). The
    workspace file stays locked throughout, so no other segstudio writes labels or classes in
    between (and classes it added before are mapped too)."""
    with ws.transaction():
        mapping = ClassMapping.by_name(ws.classes, new)
        files = {rel: _identity(ws.root / rel) for rel in label_files(ws)}
        journal = {"format": "segstudio-relabel", "version": 1, "from": ws.classes.to_dict(),
                   "to": mapping.target.to_dict(), "files": files}
        try:
            atomic_write_text(ws.root / JOURNAL, json.dumps(journal))
        except OSError as e:
            raise WorkspaceError(f"{JOURNAL}: cannot be written ({e.strerror or e}); the class "
                                 "set was not changed") from None
        _rewrite(ws, mapping, files, progress)
        _finish(ws, mapping.target)
    return mapping


def finish_interrupted_relabel(ws) -> bool:
    """Complete a class-set change that a crash interrupted (see the module's doc); True if
    there was one. A journal that cannot be read is left in place and reported."""
    path = ws.root / JOURNAL
    if not path.is_file():
        return False
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
        old, new = ClassSet.from_dict(journal["from"]), ClassSet.from_dict(journal["to"])
        files = {str(k): (list(v) if v is not None else None)
                 for k, v in dict(journal["files"]).items()}
    except (OSError, ValueError, KeyError, TypeError, ClassSetError, RecursionError) as e:
        raise WorkspaceError(f"{JOURNAL}: an interrupted change of the class set cannot be "
                             f"finished, its journal is damaged ({e}); the labels may be partly "
                             "in each set. The file is kept for inspection.") from None
    mapping = ClassMapping.by_name(old, new)
    if mapping.target != new:
        raise WorkspaceError(f"{JOURNAL}: the journal's two class sets do not fit together; "
                             "the file is kept for inspection")
    known = {str(it.label) for it in ws.items} | {prediction_of(str(it.label)) for it in ws.items}
    _rewrite(ws, mapping, {rel: ident for rel, ident in files.items() if rel in known}, None)
    _finish(ws, new)
    return True


def _rewrite(ws, mapping: ClassMapping, files: dict, progress) -> None:
    by_rel = {}
    for item in ws.items:
        by_rel[str(item.label)] = item
        by_rel[prediction_of(str(item.label))] = item
    total = len(files)
    for done, (rel, before) in enumerate(sorted(files.items()), 1):
        path = ws.root / rel
        if before is None or _identity(path) != before:
            continue                                   # rewritten already (or gone)
        item = by_rel[rel]
        try:
            path = ws.checked(item, rel)
            labels = load_label_png(path)
            save_label_png(path, mapping.apply(labels), mapping.target)
        except (VocError, OSError) as e:
            raise WorkspaceError(f"{rel}: {e}; the change of the class set stopped here and is "
                                 "finished when the workspace next opens") from None
        if progress is not None:
            progress(done, total)


def _finish(ws, classes: ClassSet) -> None:
    """The new set goes into the workspace file (written now, not handed to a background
    writer), then the journal goes."""
    ws.classes = classes
    ws.write_file(ws.to_dict())
    (ws.root / JOURNAL).unlink(missing_ok=True)
