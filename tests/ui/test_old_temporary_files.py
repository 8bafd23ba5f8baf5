"""A file named like an older version's temporary file is kept when the workspace opens, and the
window names it so that the user can decide."""
import os
import subprocess
import sys
import time

import numpy as np
from PIL import Image


def test_the_window_names_an_old_temporary_file_it_kept(window, tmp_path):
    folder = tmp_path / "ws"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 9, 3), np.uint8)).save(folder / "a.png")
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout)
    old = folder / "labels" / f".a.png.{dead}-abcdefgh.part"
    old.parent.mkdir()
    old.write_bytes(b"half")
    t = time.time() - 7200
    os.utime(old, (t, t))
    assert window.open_paths([folder])
    assert old.read_bytes() == b"half"
    assert window.notice.isVisible()
    assert f"labels/{old.name}: kept" in window.notice.text()
    assert "older segstudio" in window.notice.text()
