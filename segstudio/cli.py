"""The ``segstudio`` command.

With no subcommand it opens the GUI (optionally on PATHS). Subcommands run headless; each lives
in its own module under :mod:`segstudio.commands` with ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``. Their modules are imported only when named, so ``--help`` and the GUI
start stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

from segstudio import __version__
from segstudio.commands import CommandError


def _command_modules() -> dict[str, str]:
    """Map each subcommand name to its module, from the files in ``segstudio/commands``."""
    import segstudio.commands as pkg

    found = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_"):
            found[info.name.replace("_", "-")] = f"{pkg.__name__}.{info.name}"
    return found


def build_parser(with_commands: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segstudio",
        description="Semantic segmentation studio. With no command, opens the GUI on PATHS "
                    "(images, folders, videos) or on the bundled demo.",
    )
    parser.add_argument("--version", action="version", version=f"segstudio {__version__}")
    modules = _command_modules()
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in sorted(modules):
        if with_commands and name not in with_commands:
            sub.add_parser(name, help="(run 'segstudio %s --help')" % name)
            continue
        mod = importlib.import_module(modules[name])
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def build_gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segstudio",
        description="Open the segstudio window on PATHS (images, folders, videos), or on the "
                    "bundled demo when none are given. Run 'segstudio --help' for commands.",
    )
    parser.add_argument("paths", nargs="*", help="images, folders or videos to open")
    parser.add_argument("--screenshot", metavar="FILE",
                        help="open PATHS, wait until the window is idle, save a screenshot of the "
                             "main window to FILE and exit")
    parser.add_argument("--no-demo", action="store_true", help="start with an empty window")
    parser.add_argument("--demo", choices=("chest", "context", "shapes"),
                        help="open a bundled demo with its trained model: chest X-ray phantoms, "
                             "the boat-or-car context scene, or shapes for Mask R-CNN instances")
    parser.add_argument("--size", default=None,
                        help="window size WxH (default: the size it was left at, else 1280x800; "
                             "never larger than the screen, except for --screenshot)")
    return parser


def _out_of_memory_line(exc: BaseException) -> str:
    """One line for an allocation that failed: a refusal's own message, else what failed."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if text.startswith("not enough memory"):
        return text
    detail = f" ({text[:200]})" if text else ""
    return ("not enough memory: the work needed more than could be allocated" + detail
            + "; close other programs or give it a smaller input")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    modules = _command_modules()
    first = next((a for a in argv if not a.startswith("-")), None)
    if first in modules:
        parser = build_parser(with_commands=[first])
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:
            # argparse has printed its one error line (or the help): report its status, so a
            # caller in this process gets 2 back like any other refused command.
            return exc.code if isinstance(exc.code, int) else 2
        try:
            return int(args._run(args) or 0)
        except CommandError as exc:
            print(f"segstudio {first}: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("segstudio: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:
            # The reader went away (`segstudio models | head`): not an error of ours.
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except Exception as exc:
            # An allocation that failed although the command's estimate let it start: one line,
            # as for any refused command, never a traceback. Anything else is a bug: raise it.
            from segstudio.io.decode_memory import is_out_of_memory

            if not is_out_of_memory(exc):
                raise
            print(f"segstudio {first}: error: {_out_of_memory_line(exc)}", file=sys.stderr)
            return 2
    if any(a in ("-h", "--help") for a in argv) and not any(
            not a.startswith("-") for a in argv):
        build_parser().print_help()
        print("\nGUI: segstudio [PATHS ...] [--screenshot FILE] [--no-demo] [--size WxH]")
        return 0
    if "--version" in argv:
        print(f"segstudio {__version__}")
        return 0
    args = build_gui_parser().parse_args(argv)
    from segstudio.ui.app import run_gui

    return run_gui(args)
