"""``segstudio card``: a model card measured for a model file of another format, written beside
it, read back with the model, and the out-of-domain check working with it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from foreign_models import image, save_onnx, save_torchscript, write_sidecar
from segstudio.cli import main
from segstudio.core.classes import chest_xray
from segstudio.models import domain
from segstudio.models.engine import Predictor
from segstudio.models.formats import load_any
from segstudio.models.model_card import read_card


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("SEGSTUDIO_TORCH_THREADS", "1")
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def xray(tmp_path_factory):
    root = tmp_path_factory.mktemp("card")
    assert main(["demo-data", "--kind", "xray", "--n", "4", "--size", "32", "--out",
                 str(root / "demo")]) == 0
    return root / "demo" / "VOCdevkit" / "VOC2012"


def _model(tmp_path, suffix):
    path = tmp_path / f"chest{suffix}"
    (save_torchscript if suffix == ".pt" else save_onnx)(path, classes=4, sidecar=False)
    write_sidecar(path, classes=list(chest_xray().names))
    return path


@pytest.mark.parametrize("suffix", [".pt", ".onnx"])
def test_card_writes_a_sidecar_the_model_then_carries(tmp_path, xray, capsys, suffix):
    path = _model(tmp_path, suffix)
    assert "card" not in load_any(path).meta.training
    assert main(["card", str(path), "--data", str(xray)]) == 0, capsys.readouterr().err
    out = tmp_path / "chest.card.json"
    assert capsys.readouterr().out.startswith("chest.card.json: ")
    data = json.loads(out.read_text())
    assert data["data"]["val_images"] >= 1 and 0 < data["validation"]["confidence"] <= 1
    assert data["validation"]["num_classes"] == 4
    loaded = load_any(path)
    card = read_card(loaded.meta.training)
    assert card is not None and card.val_images == data["data"]["val_images"]
    # The out-of-domain check now has a yardstick for this model.
    rgb = image(32, 32)
    prediction = Predictor.from_model(loaded, device="cpu", precision="fp32").predict(rgb)
    assert domain.check(loaded.meta, prediction, rgb) is not None


def test_a_card_this_command_did_not_write_is_replaced_only_with_overwrite(tmp_path, xray,
                                                                          capsys):
    path = _model(tmp_path, ".pt")
    card = tmp_path / "chest.card.json"
    card.write_text("{}")
    assert main(["card", str(path), "--data", str(xray)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"segstudio card: error: the card {card} already exists and was not "
                   "written by this command; give --overwrite to replace it")
    assert card.read_text() == "{}"
    assert main(["card", str(path), "--data", str(xray), "--overwrite"]) == 0
    first = json.loads(card.read_text())
    assert first["extra"]["written_by"] == "segstudio card"
    # Its own card is measured again without asking.
    card.write_text(json.dumps({**first, "intended_use": "edited"}))
    assert main(["card", str(path), "--data", str(xray)]) == 0
    assert json.loads(card.read_text())["intended_use"] != "edited"


def test_data_with_more_classes_than_the_model_is_one_error_line(tmp_path, xray, capsys):
    path = tmp_path / "three.pt"
    save_torchscript(path, classes=3, sidecar=False)
    rc = main(["card", str(path), "--data", str(xray)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("segstudio card: error: ")
    assert not (tmp_path / "three.card.json").exists()


def test_a_bad_model_file_is_one_error_line(tmp_path, xray, capsys):
    path = tmp_path / "noise.pt"
    path.write_bytes(np.random.default_rng(0).bytes(512))
    assert main(["card", str(path), "--data", str(xray)]) == 2
    assert capsys.readouterr().err.strip() == (
        "segstudio card: error: noise.pt: not a model file segstudio reads; expected a "
        "segstudio checkpoint or TorchScript archive (.pt), an ONNX model (.onnx), or a "
        "Hugging Face or smp model folder (config.json with model.safetensors)")
