"""A long session (1,000 edits, 200 image switches) leaves memory flat: kept documents, their
undo histories and the QImages on screen stay bounded."""
import gc

import numpy as np
import pytest
from PIL import Image
from PySide6.QtGui import QImage

from tests.ui.helpers import drag


def _rss_mb() -> float:
    import os
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _qimages() -> int:
    # type(), not isinstance(): isinstance reads __class__, which makes deprecated module
    # proxies (torch.distributed.reduce_op) warn.
    return sum(1 for o in gc.get_objects() if type(o) is QImage)


def _session(window, rows: int, edits: int, switches: int, start: int) -> None:
    per_switch = max(1, edits // switches)
    for k in range(switches):
        assert window.show_row((start + k * 7) % rows)
        for e in range(per_switch):
            y = 5 + (k * per_switch + e) % 50
            drag(window.canvas, [(4, y), (40, y + 3), (60, y)])


@pytest.mark.slow
def test_thousand_edits_and_two_hundred_switches_keep_memory_flat(window, tmp_path):
    folder = tmp_path / "session"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = 30
    for i in range(rows):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), np.uint8)).save(folder / f"s{i:02d}.png")
    assert window.open_paths([folder])
    _session(window, rows, edits=100, switches=20, start=0)  # warm caches and the kept set
    gc.collect()
    rss, images = _rss_mb(), _qimages()
    _session(window, rows, edits=900, switches=180, start=3)
    gc.collect()
    kept = [window.document_for(r) for r in range(rows)]
    kept = [d for d in kept if d is not None]
    assert len(kept) <= 9  # on screen plus the 8 kept
    history = sum(d.labels.history.nbytes for d in kept)
    assert history < 4 * 2**20
    assert _qimages() <= images + 4, "QImages pile up with switches"
    assert _rss_mb() - rss < 40, f"RSS grew by {_rss_mb() - rss:.0f} MB"
    # edits to documents that left the kept set were saved, not lost
    ws = window.workspace
    saved = [it for it in ws.items if ws.label_path(it).is_file()]
    assert len(saved) >= rows - 9
    assert all((ws.load_labels(it) > 0).any() for it in saved)
