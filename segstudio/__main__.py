"""``python -m segstudio`` is the same as the ``segstudio`` command."""

import multiprocessing
import sys

from segstudio.cli import main

if __name__ == "__main__":
    # The dense CRF runs in a spawned process; a frozen (PyInstaller) build needs this first.
    multiprocessing.freeze_support()
    sys.exit(main())
