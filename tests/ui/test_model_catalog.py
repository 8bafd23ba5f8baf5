"""The model list survives bad files in the user's models folder: each is listed as broken with
its reason, and every other model stays."""

from __future__ import annotations

import math
import shutil

import torch

from segstudio.paths import weights_dir
from segstudio.ui.panels.model import ModelPanel
from segstudio.ui.background.workers import USER_GROUP, build_catalog


def _bad_copies(folder):
    """A good user model, one with an infinite colour, one with NaN weights, one not a torch
    file; returns the good one's path."""
    folder.mkdir(parents=True)
    good = folder / "mine.pt"
    shutil.copy(weights_dir() / "chest_xray_unet_lite.pt", good)
    payload = torch.load(good, weights_only=True)
    payload["meta"]["classes"]["classes"][1]["color"][0] = math.inf
    torch.save(payload, folder / "infinite_colour.pt")
    payload = torch.load(good, weights_only=True)
    payload["state_dict"] = {k: torch.full_like(v, math.nan) if v.is_floating_point() else v
                             for k, v in payload["state_dict"].items()}
    torch.save(payload, folder / "diverged.pt")
    (folder / "notes.pt").write_text("not a checkpoint")
    return good


def test_bad_user_checkpoints_are_listed_as_broken_and_hide_nothing(tmp_path, qtbot):
    user = tmp_path / "models"
    good = _bad_copies(user)
    healthy = build_catalog([tmp_path / "empty", weights_dir()])
    entries = build_catalog([user, weights_dir()])

    broken = {e.choice.checkpoint.name: e for e in entries if e.broken}
    assert set(broken) == {"infinite_colour.pt", "diverged.pt", "notes.pt"}
    assert "colour (inf, 200, 0)" in broken["infinite_colour.pt"].broken
    assert "NaN or infinite" in broken["diverged.pt"].broken
    assert all(e.group == USER_GROUP and not e.trained for e in broken.values())
    usable = [e for e in entries if not e.broken]
    assert len(usable) == len(healthy) + 1                 # every model of the list, and mine
    assert any(e.choice.checkpoint == good and e.trained for e in usable)

    panel = ModelPanel()
    qtbot.addWidget(panel)
    panel.set_catalog(entries)
    assert panel.current_entry() is not None and not panel.current_entry().broken
    combo = panel.model_combo
    rows = {combo.itemText(r): r for r in range(combo.count())}
    row = rows["diverged — broken, cannot be used"]
    assert not combo.model().item(row).isEnabled()
    assert "training diverged" in combo.itemData(row, 3)          # the tooltip says why
