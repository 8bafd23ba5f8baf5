"""Mutated workspace files, class sets, checkpoint metadata, labelme files and VOC trees: the
readers raise only their own error classes, quickly."""
from __future__ import annotations

import copy
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from segstudio.core.classes import ClassSet, ClassSetError
from segstudio.io.class_files import load_class_set
from segstudio.io.workspace import Workspace, WorkspaceError
from segstudio.io.labels import LabelImportError, import_voc_tree, read_labelme_json
from segstudio.io.voc import VocError, VocSample, read_voc, read_voc_classes, write_voc
from segstudio.models.checkpoint import CheckpointError, read_meta

CLASSES = ClassSet(["bg", "cat", "dog"])
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])
SECONDS = 2.0  # each call must answer within this, whatever the document
ODD_VALUES = [None, True, False, 0, -1, 2 ** 63, 1e308, float("nan"), "", "../x", "/abs", "C:x",
              "ü" * 3, [], {}, [1, 2, 3], {"a": 1}, [[]], "a" * 10_000, -0.0, [None] * 5]


def _mutate(doc, rng: random.Random, steps: int):
    """Apply ``steps`` random edits: replace, drop or duplicate a node, or change a type."""
    doc = copy.deepcopy(doc)
    for _ in range(steps):
        path = []
        node = doc
        while isinstance(node, (dict, list)) and node and rng.random() < 0.7:
            key = rng.choice(list(node.keys()) if isinstance(node, dict) else range(len(node)))
            path.append((node, key))
            node = node[key]
        if not path:
            doc = rng.choice(ODD_VALUES + [doc])
            continue
        parent, key = path[-1]
        action = rng.randrange(4)
        if action == 0:
            parent[key] = copy.deepcopy(rng.choice(ODD_VALUES))
        elif action == 1:
            del parent[key]
        elif action == 2 and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        else:
            parent[key] = str(parent[key]) if not isinstance(parent[key], str) else 7
    return doc


def _timed(call, errors):
    start = time.perf_counter()
    try:
        call()
    except errors:
        pass
    assert time.perf_counter() - start < SECONDS


@pytest.fixture(scope="module")
def workspace_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("ws")
    for i in range(3):
        Image.fromarray(np.full((5, 6, 3), 40 * i, np.uint8)).save(root / f"im{i}.png")
    ws = Workspace.open(root, classes=CLASSES)
    ws.save_labels(ws.items[0], np.ones((5, 6), np.uint8), by="ann")
    ws.set_status(ws.items[1], ws.items[1].status, by="rev")
    ws.save()
    return root, json.loads(ws.file_path().read_text(encoding="utf-8"))


@FUZZ
@given(seed=st.integers(0, 2 ** 32 - 1), steps=st.integers(1, 6))
def test_mutated_workspace_file_opens_or_raises_workspace_error(workspace_dir, seed, steps):
    root, valid = workspace_dir
    doc = _mutate(valid, random.Random(seed), steps)
    (root / Workspace.FILE_NAME).write_text(json.dumps(doc), encoding="utf-8")

    def open_and_use():
        ws = Workspace.open(root)
        for item in ws.items:
            assert root.resolve() in ws.label_path(item).resolve().parents
            ws.load_labels(item)
        json.dumps(ws.to_dict())

    _timed(open_and_use, WorkspaceError)
    _timed(lambda: Workspace.from_paths([root / "im0.png", root / "im2.png"]), WorkspaceError)


@FUZZ
@given(seed=st.integers(0, 2 ** 32 - 1), steps=st.integers(1, 6))
def test_mutated_class_set_file_loads_or_raises_class_set_error(tmp_path, seed, steps):
    doc = _mutate(CLASSES.to_dict(), random.Random(seed), steps)
    path = tmp_path / "classes.json"
    path.write_text(json.dumps(doc), encoding="utf-8")

    def load():
        classes = load_class_set(path)
        assert len(classes.palette()) >= 3 * len(classes)

    _timed(load, ClassSetError)


@pytest.fixture(scope="module")
def checkpoint_payload():
    return {"format": "segstudio-checkpoint", "version": 1,
            "state_dict": {"w": torch.zeros(2)},
            "meta": {"arch": "unet", "config": "lite", "classes": CLASSES.to_dict(),
                     "mean": [0.4, 0.4, 0.4], "std": [0.2, 0.2, 0.2], "trained": True,
                     "training": {"epochs": 3}, "format_version": 1}}


@FUZZ
@given(seed=st.integers(0, 2 ** 32 - 1), steps=st.integers(1, 6))
def test_mutated_checkpoint_metadata_reads_or_raises_checkpoint_error(tmp_path, checkpoint_payload,
                                                                     seed, steps):
    payload = dict(checkpoint_payload)
    payload["meta"] = _mutate(checkpoint_payload["meta"], random.Random(seed), steps)
    if random.Random(seed + 1).random() < 0.3:
        payload = _mutate(payload | {"state_dict": {}}, random.Random(seed + 2), 1)
    path = tmp_path / "m.ckpt"
    torch.save(payload, path)
    _timed(lambda: read_meta(path), CheckpointError)


LABELME = {"version": "5.0.1", "imageHeight": 20, "imageWidth": 30, "imagePath": "x.png",
           "shapes": [{"label": "cat", "shape_type": "polygon",
                       "points": [[1, 1], [10, 2], [5, 12]]},
                      {"label": "dog", "shape_type": "rectangle", "points": [[12, 3], [25, 15]]},
                      {"label": "new", "shape_type": "circle", "points": [[8, 8], [11, 8]]},
                      {"label": "dog", "shape_type": "line", "points": [[0, 19], [29, 0]]},
                      {"label": "cat", "shape_type": "point", "points": [[3, 3]]}]}


@FUZZ
@given(seed=st.integers(0, 2 ** 32 - 1), steps=st.integers(1, 8))
def test_mutated_labelme_file_reads_or_raises_label_import_error(tmp_path, seed, steps):
    path = tmp_path / "x.json"
    path.write_text(json.dumps(_mutate(LABELME, random.Random(seed), steps)), encoding="utf-8")

    def read():
        labels, _ = read_labelme_json(path, CLASSES)
        assert labels.dtype == np.uint8 and labels.ndim == 2

    _timed(read, LabelImportError)


@pytest.fixture(scope="module")
def voc_tree(tmp_path_factory):
    out = tmp_path_factory.mktemp("voc")
    samples = [VocSample(f"v{i}", np.full((4, 5, 3), i, np.uint8), np.full((4, 5), i % 3, np.uint8))
               for i in range(4)]
    write_voc(out, samples, CLASSES, val_fraction=0.25)
    return out


def _damage(tree, rng: random.Random) -> None:
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    for _ in range(rng.randint(1, 3)):
        victim = rng.choice(files)
        if not victim.is_file():
            continue
        what = rng.randrange(5)
        if what == 0:
            victim.unlink()
        elif what == 1:
            victim.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(40))))
        elif what == 2:
            victim.write_text(rng.choice(["../../etc/passwd\n", "v0\nv0\n", "\x00\xff",
                                          "missing\n", "CON\n", "v1 v2\n"]), encoding="latin-1")
        elif what == 3:
            victim.unlink()
            victim.mkdir()
        else:
            shutil.rmtree(victim.parent)
            files = sorted(p for p in tree.rglob("*") if p.is_file()) or [tree / "gone"]


@FUZZ
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_damaged_voc_tree_reads_or_raises_voc_error(tmp_path, voc_tree, seed):
    tmp_path = Path(tempfile.mkdtemp(dir=tmp_path))
    tree = tmp_path / "copy"
    shutil.copytree(voc_tree, tree)
    _damage(tree / "VOCdevkit" / "VOC2012", random.Random(seed))
    _timed(lambda: read_voc(tree, "train"), VocError)
    _timed(lambda: read_voc(tree, "val"), VocError)
    _timed(lambda: read_voc_classes(tree), VocError)
    for i in range(4):
        Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / f"v{i}.png")
    ws = Workspace.open(tmp_path, classes=CLASSES)

    def do_import():
        report = import_voc_tree(tree, ws)
        assert set(report.imported) <= {f"v{i}" for i in range(4)}
        for ident in report.imported:
            item = next(it for it in ws.items if it.id == ident)
            assert ws.load_labels(item).shape == (4, 5)

    _timed(do_import, LabelImportError)
