"""What a command may write: never one of its inputs, and nothing it did not write itself unless
asked.

Every command that writes a file or a folder checks its outputs here before any work starts:

- An output is never one of the command's inputs. Paths are compared after resolving links, and
  as files (``os.path.samefile``: the same device and inode), so a symbolic link or a hard link
  to an input is caught as surely as the same name.
- A folder the command will replace as a whole may not hold an input (nor be one, nor lie
  inside the folder it replaces).
- An existing file is replaced only when it is one of the command's own earlier results, or
  when the user gives ``--overwrite``. "One of ours" is exact, never guessed from a name: a PNG
  written by a command carries a ``Software`` text chunk ``segstudio COMMAND`` (see
  :func:`png_mark`), and only that command's own mark counts; commands whose files cannot carry
  a mark say what counts through their own ``ours`` test.

Failures raise :class:`OutputError`, whose message is one line naming the flag and the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

MARK_KEY = "Software"


class OutputError(ValueError):
    """An output that would replace an input, or a file the command did not write."""


def png_mark(command: str):
    """PNG text chunks that mark a file as written by ``segstudio COMMAND``: give it as
    ``pnginfo=`` to ``Image.save``."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(MARK_KEY, f"segstudio {command}")
    return info


def written_by(path: str | Path, command: str) -> bool:
    """Whether ``path`` is a PNG carrying ``command``'s mark. Only the header chunks are read;
    a file that is not a regular PNG is not ours."""
    from segstudio.io.pillow_pixels import open_header
    from segstudio.io.regular_files import open_regular

    try:
        f = open_regular(Path(path))
    except OSError:                          # also a pipe or a device: never ours
        return False
    with f:
        try:
            with open_header(f) as im:
                return im.format == "PNG" and im.info.get(MARK_KEY) == f"segstudio {command}"
        except Exception:  # noqa: BLE001 - anything Pillow cannot open is not one of ours
            return False


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` name the same file: the same path once links are resolved, or
    the same inode (a hard link, or a link through another folder)."""
    return Inputs([("", b)]).holding(a) is not None


class Inputs:
    """A command's inputs, each known by its resolved path and its file identity (device and
    inode), so that many outputs are checked against many inputs in one look-up each."""

    def __init__(self, pairs: Iterable[tuple[str, str | Path | None]]) -> None:
        self._by_path: dict[str, tuple[str, Path]] = {}
        self._by_id: dict[tuple[int, int], tuple[str, Path]] = {}
        for what, path in pairs:
            if path is None:
                continue
            entry = (what, Path(path))
            try:
                self._by_path.setdefault(os.path.realpath(path), entry)
            except (OSError, ValueError):
                pass
            ident = _identity(path)
            if ident is not None:
                self._by_id.setdefault(ident, entry)

    def holding(self, out: str | Path) -> tuple[str, Path] | None:
        """The input ``out`` names (through any link), or None."""
        try:
            found = self._by_path.get(os.path.realpath(out))
        except (OSError, ValueError):
            found = None
        if found is None:
            ident = _identity(out)
            found = self._by_id.get(ident) if ident is not None else None
        return found


def _identity(path: str | Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it, once links are resolved."""
    try:
        p, f = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    except (OSError, ValueError):
        return False
    if p == f or f in p.parents:
        return True
    try:                     # the same folder reached through a bind mount or a hard-linked path
        return os.path.samefile(p, f) or any(os.path.samefile(q, f) for q in p.parents
                                               if q.exists())
    except (OSError, ValueError):
        return False


def check_output(out: str | Path, inputs: Inputs | Iterable[tuple[str, str | Path | None]], *,
                 flag: str = "--out", overwrite: bool = False,
                 ours: Callable[[Path], bool] | None = None) -> Path:
    """Check the file ``out`` before anything is computed: it must not be a folder, nor one of
    ``inputs`` (pairs of the flag that named an input and its path, None paths skipped; or an
    :class:`Inputs`), and an existing file is replaced only if ``ours(out)`` says the command
    wrote it, or with ``overwrite``. Returns ``out`` as a Path."""
    out = Path(out)
    found = (inputs if isinstance(inputs, Inputs) else Inputs(inputs)).holding(out)
    if found is not None:
        what, path = found
        shown = f"{what} {path}" if what else str(path)
        raise OutputError(f"{flag} {out} is the same file as {shown}; writing there would "
                          "destroy it, so choose another file")
    if out.is_dir():
        raise OutputError(f"{flag} {out} is a folder; give the name of the file to write")
    if (out.exists() or out.is_symlink()) and not overwrite and not (ours and ours(out)):
        raise OutputError(f"{flag} {out} already exists and was not written by this command; "
                          "give --overwrite to replace it")
    return out


def check_outputs(outs: Iterable[str | Path], inputs: Iterable[str | Path], *,
                  flag: str = "--out", overwrite: bool = False,
                  ours: Callable[[Path], bool] | None = None) -> None:
    """:func:`check_output` for each file a command will write into a folder (``flag`` names
    the folder), against every input file."""
    known = Inputs(("the input", p) for p in inputs)
    for out in outs:
        check_output(out, known, flag=flag, overwrite=overwrite, ours=ours)


def check_replaced_folder(folder: str | Path, inputs: Iterable[tuple[str, str | Path]], *,
                          flag: str = "--out") -> None:
    """Check a folder a command will replace as a whole: no input may be it or lie inside it,
    or replacing the folder would delete that input."""
    folder = Path(folder)
    for what, path in inputs:
        if _inside(Path(path), folder):
            raise OutputError(f"{flag}: writing {folder} would replace {what} {path}, which "
                              "lies inside it; choose another folder")


def check_outside_model(out: str | Path, model: str | Path | None, *, flag: str = "--out",
                        model_flag: str = "--weights") -> None:
    """An output may not go inside a model folder the command reads: a file added there would
    change the model's identity (its caches and calibrations are keyed on the folder's files)
    and mix results into the user's copy of the model."""
    if model is None or not Path(model).is_dir():
        return
    if _inside(Path(out), Path(model)):
        raise OutputError(f"{flag} {out}: inside the model folder {model_flag} {model}; write "
                          "the results somewhere else")
