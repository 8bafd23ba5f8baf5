"""A class set as the colour tables 3D Slicer and ITK-SNAP read beside a label volume.

- 3D Slicer's colour table (``.ctbl``): one ``index name R G B A`` line per label, ``#`` for
  comments; names may not contain spaces, so spaces become underscores.
- ITK-SNAP's label description file: ``IDX R G B A VIS MSH "LABEL"`` lines, with A (opacity)
  between 0 and 1 and the label in double quotes.

Both list the classes in order and, last, void (255) as the VOC colour map paints it.
"""

from __future__ import annotations

import re

from segstudio.core.classes import ClassSet
from segstudio.core.palette import VOID_INDEX


def _entries(classes: ClassSet) -> list[tuple[int, str, tuple[int, int, int]]]:
    table = classes.color_table()
    rows = [(c.index, c.name, tuple(int(v) for v in c.color)) for c in classes]
    rows.append((VOID_INDEX, "void", tuple(int(v) for v in table[VOID_INDEX])))
    return rows


def slicer_color_table(classes: ClassSet) -> str:
    """The text of a 3D Slicer colour table file for ``classes`` (background transparent)."""
    lines = ["# Color table file written by segstudio", f"# {len(classes) + 1} values"]
    for index, name, (r, g, b) in _entries(classes):
        alpha = 0 if index == 0 else 255
        lines.append(f"{index} {_one_word(name)} {r} {g} {b} {alpha}")
    return "\n".join(lines) + "\n"


def itksnap_label_description(classes: ClassSet) -> str:
    """The text of an ITK-SNAP label description file for ``classes``."""
    lines = ["################################################",
             "# ITK-SnAP Label Description File, written by segstudio",
             "# IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL",
             "################################################"]
    for index, name, (r, g, b) in _entries(classes):
        visible = 0 if index == 0 else 1
        label = name.replace('"', "'")
        lines.append(f"{index:5d} {r:5d} {g:4d} {b:4d} {float(visible):8.2f} {visible:2d} "
                     f"{visible:2d}    \"{label}\"")
    return "\n".join(lines) + "\n"


def _one_word(name: str) -> str:
    word = re.sub(r"\s+", "_", name.strip())
    return word or "unnamed"
