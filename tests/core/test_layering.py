"""core/ and io/ must load without Qt or torch: they are the fast, plain layer."""

import subprocess
import sys


def test_core_and_io_import_neither_qt_nor_torch():
    code = (
        "import sys, importlib, pkgutil\n"
        "import segstudio.core, segstudio.io\n"
        "for pkg in (segstudio.core, segstudio.io):\n"
        "    for m in pkgutil.iter_modules(pkg.__path__):\n"
        "        importlib.import_module(pkg.__name__ + '.' + m.name)\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'PySide6', 'torch', 'torchvision'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_import_contracts_hold():
    """import-linter's contracts in pyproject.toml: Qt only in ui; no torch in core/io; core
    imports only core; no import cycles between the packages, modules and rooms of any package."""
    import pathlib
    import shutil

    root = pathlib.Path(__file__).resolve().parents[2]
    exe = shutil.which("lint-imports", path=str(pathlib.Path(sys.executable).parent))
    assert exe, "import-linter is part of the test extra"
    out = subprocess.run([exe, "--no-cache"], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
