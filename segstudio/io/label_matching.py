"""Which label file goes with which workspace item, settled before any file is read.

Files are matched to items by name: a file's stem is an item's id. A match is never guessed:
when several files of the source share an item's name, or several items share a file's name,
nothing is imported for them and the report names every file. Items a person corrected or
reviewed are left as they are unless the import was asked to replace them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from segstudio.io.workspace import Item, ItemStatus

# Labels a person made or checked: an import replaces them only when asked to.
PERSON_MADE = frozenset({ItemStatus.CORRECTED, ItemStatus.REVIEWED})


@dataclass
class Matches:
    """Label files paired with items, and what could not be paired."""

    pairs: list[tuple[Item, Path]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)    # file names matching no item
    ambiguous: list[str] = field(default_factory=list)    # one line per name, naming the files
    kept: list[str] = field(default_factory=list)         # ids of person-made items left alone


def match_files(files: Iterable[Path], workspace, *, root: Path, replace: bool) -> Matches:
    """Pair ``files`` (found under ``root``, in the order given) with the workspace's items."""
    by_stem: dict[str, list[Path]] = {}
    for path in files:
        by_stem.setdefault(path.stem, []).append(path)
    items: dict[str, list[Item]] = {}
    for item in workspace.items:
        items.setdefault(item.id, []).append(item)
    found = Matches()
    for ident, paths in by_stem.items():
        candidates = items.get(ident)
        if not candidates:
            found.unmatched.extend(p.name for p in paths)
        elif len(paths) > 1:
            found.ambiguous.append(
                f"{len(paths)} files match item {ident}: "
                f"{', '.join(_shown(p, root) for p in paths)}; none of them was imported "
                "(keep one, or import the others from a folder of their own)")
        elif len(candidates) > 1:
            found.ambiguous.append(
                f"{_shown(paths[0], root)} matches {len(candidates)} items named {ident} "
                f"({', '.join(Path(c.source).as_posix() for c in candidates)}); it was not "
                "imported (rename the file or the images)")
        elif candidates[0].status in PERSON_MADE and not replace:
            found.kept.append(ident)
        else:
            found.pairs.append((candidates[0], paths[0]))
    return found


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name
