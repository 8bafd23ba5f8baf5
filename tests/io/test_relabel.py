"""Changing a labelled workspace's class set by name: every pixel keeps its class name, and a
change cut short by a crash is finished when the workspace next opens."""

import json

import numpy as np
import pytest
from PIL import Image

from segstudio.core.classes import chest_xray, from_names
from segstudio.io import relabel as relabel_module
from segstudio.io.relabel import JOURNAL, relabel_by_name
from segstudio.io.workspace import ItemStatus, Workspace, WorkspaceError


@pytest.fixture
def labelled(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (12, 16), np.uint8)).save(tmp_path / f"i{i}.png")
    ws = Workspace.open(tmp_path, classes=chest_xray())
    truth = {}
    for item in ws.items:
        labels = rng.integers(0, 4, (12, 16)).astype(np.uint8)
        labels[0, 0] = 255
        ws.save_labels(item, labels, status=ItemStatus.CORRECTED)
        ws.save_prediction(item, labels[::-1].copy())
        truth[item.id] = labels
    return tmp_path, truth


def _names(ws, labels):
    return np.array([("void" if v == 255 else ws.classes[int(v)].name) for v in labels.ravel()])


def test_every_pixel_keeps_its_class_name_and_missing_names_are_added(labelled):
    root, truth = labelled
    ws = Workspace.open(root)
    before = {it.id: _names(ws, ws.load_labels(it)) for it in ws.items}
    new = from_names(["background", "heart", "liver"])
    mapping = relabel_by_name(ws, new)
    assert mapping.target.names == ("background", "heart", "liver", "lungs", "clavicles")
    again = Workspace.open(root)
    assert again.classes.names == mapping.target.names
    for item in again.items:
        assert (_names(again, again.load_labels(item)) == before[item.id]).all()
        pred = again.load_prediction(item)
        assert (_names(again, pred) == _names(ws, mapping.apply(truth[item.id][::-1]))).all()
    assert not (root / JOURNAL).exists()


def test_a_change_cut_short_is_finished_when_the_workspace_opens(labelled, monkeypatch):
    root, truth = labelled
    ws = Workspace.open(root)
    new = from_names(["background", "clavicles", "heart", "lungs"])
    real = relabel_module.save_label_png
    calls = []

    def dies_after_three(path, labels, classes):
        if len(calls) == 3:
            raise OSError(5, "Input/output error")
        calls.append(path)
        real(path, labels, classes)

    monkeypatch.setattr(relabel_module, "save_label_png", dies_after_three)
    with pytest.raises(WorkspaceError, match="finished when the workspace next opens"):
        relabel_by_name(ws, new)
    assert (root / JOURNAL).exists()
    # the workspace file still names the old set; three files were already rewritten
    assert json.loads((root / Workspace.FILE_NAME).read_text())["classes"]["classes"][1]["name"] == "lungs"
    monkeypatch.setattr(relabel_module, "save_label_png", real)
    reopened = Workspace.open(root)
    assert reopened.classes.names == ("background", "clavicles", "heart", "lungs")
    assert not (root / JOURNAL).exists()
    old = chest_xray()
    for item in reopened.items:          # each file mapped exactly once
        got = reopened.load_labels(item)
        want = truth[item.id]
        assert all(("void" if g == 255 else reopened.classes[int(g)].name)
                   == ("void" if w == 255 else old[int(w)].name)
                   for g, w in zip(got.ravel(), want.ravel()))


def test_a_damaged_journal_is_named_and_kept(labelled):
    root, _ = labelled
    (root / JOURNAL).write_text("{not json")
    with pytest.raises(WorkspaceError, match="journal is damaged"):
        Workspace.open(root)
    assert (root / JOURNAL).read_text() == "{not json"
