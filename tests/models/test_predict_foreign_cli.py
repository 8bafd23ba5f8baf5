"""``segstudio predict --weights`` with model files of other formats: no ``--model`` needed,
the file's classes and colours in the PNGs, and bad files refused in one line with exit 2."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from foreign_models import (COLORS, NAMES, image, normalised, reference_labels, save_onnx,
                            save_torchscript, write_sidecar)
from segstudio.cli import main


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("SEGSTUDIO_TORCH_THREADS", "1")
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    torch.set_num_threads(1)


@pytest.fixture
def picture(tmp_path):
    rgb = image(70, 90, seed=6)
    path = tmp_path / "street.png"
    Image.fromarray(rgb).save(path)
    return path, rgb


@pytest.mark.parametrize("suffix", [".pt", ".onnx"])
def test_predict_runs_a_model_file_without_naming_an_architecture(tmp_path, picture, capsys,
                                                                  suffix):
    path = tmp_path / f"roads{suffix}"
    net = (save_torchscript if suffix == ".pt" else save_onnx)(path)
    image_path, rgb = picture
    out = tmp_path / "out"
    rc = main(["predict", "--weights", str(path), str(image_path), "--out", str(out),
               "--precision", "fp32"])
    assert rc == 0, capsys.readouterr().err
    said = capsys.readouterr().out
    kind = "TorchScript" if suffix == ".pt" else "ONNX"
    assert f"roads{suffix} ({kind}, trained) on cpu" in said
    with Image.open(out / "street.png") as im:
        assert im.mode == "P"
        labels = np.asarray(im)
        palette = im.getpalette()[:9]
    assert palette == [v for c in COLORS for v in c]      # the file's own class colours
    with torch.no_grad():
        expected = reference_labels(net(normalised(rgb)), rgb.shape[:2])
    assert (labels == expected).mean() >= 0.995


def test_command_line_classes_mean_and_std_override_the_sidecar(tmp_path, picture, capsys):
    path = tmp_path / "roads.pt"
    net = save_torchscript(path)
    image_path, rgb = picture
    out = tmp_path / "out"
    mean, std = (0.45, 0.45, 0.45), (0.25, 0.25, 0.25)
    rc = main(["predict", "--weights", str(path), str(image_path), "--out", str(out),
               "--precision", "fp32", "--classes", "sky,road,tree", "--mean", *map(str, mean),
               "--std", *map(str, std)])
    assert rc == 0, capsys.readouterr().err
    with Image.open(out / "street.png") as im:
        labels = np.asarray(im)
    with torch.no_grad():
        expected = reference_labels(net(normalised(rgb, mean, std)), rgb.shape[:2])
    assert (labels == expected).mean() >= 0.995


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("segstudio predict: error: "), err
    assert "Traceback" not in err
    return lines[0]


def _bad_files(tmp_path) -> dict:
    cases = {}
    random = tmp_path / "random.pt"
    random.write_bytes(np.random.default_rng(0).bytes(2048))
    cases[random] = "random.pt: not a model file segstudio reads; expected"
    pickled = tmp_path / "pickled.pt"
    pickled.write_bytes(pickle.dumps({"state": [1.0, 2.0]}))
    cases[pickled] = "pickled.pt: a Python pickle; segstudio never unpickles model files"
    onnx = tmp_path / "four.onnx"
    save_onnx(onnx, classes=4)                # its sidecar names three classes
    cases[onnx] = "four.onnx: the graph gives 4 output channel(s) but its sidecar"
    nan = tmp_path / "nan.pt"
    save_torchscript(nan, sidecar=False)
    (tmp_path / "nan.pt.segstudio.json").write_text(
        '{"mean": [0.5, 0.5, 0.5], "std": [NaN, 0.2, 0.2]}', encoding="utf-8")
    cases[nan] = "nan.pt.segstudio.json: std holds nan, not a finite number"
    return cases


def test_bad_model_files_exit_2_with_one_line(tmp_path, picture, capsys):
    image_path, _ = picture
    for path, said in _bad_files(tmp_path).items():
        rc = main(["predict", "--weights", str(path), str(image_path), "--out",
                   str(tmp_path / "out")])
        assert rc == 2
        assert said in _one_line_error(capsys)
        assert not (tmp_path / "out" / "street.png").exists()


@pytest.mark.parametrize("args, said", [
    (["--model", "unet"], "--model unet: roads.pt (TorchScript) brings its own network; "
                          "leave --model out"),
    (["--mean", "0.5", "nan", "0.5"], "--mean holds nan, not a finite number"),
    (["--std", "0.5", "0", "0.5"], "--std holds 0.0: it must be positive"),
    (["--classes", "a,b"], "the network gives 3 output channel(s) but its sidecar or "
                           "--classes names 2 classes"),
])
def test_contradicting_arguments_exit_2_with_one_line(tmp_path, picture, capsys, args, said):
    path = tmp_path / "roads.pt"
    save_torchscript(path)
    image_path, _ = picture
    rc = main(["predict", "--weights", str(path), str(image_path), "--out",
               str(tmp_path / "out"), *args])
    assert rc == 2
    assert said in _one_line_error(capsys)


def test_predict_needs_a_model_or_a_weights_file(tmp_path, picture, capsys):
    image_path, _ = picture
    rc = main(["predict", str(image_path), "--out", str(tmp_path / "out")])
    assert rc == 2
    assert "--model NAME or --weights PATH is needed" in _one_line_error(capsys)


def test_ablation_is_refused_for_a_foreign_model(tmp_path, picture, capsys):
    path = tmp_path / "roads.onnx"
    save_onnx(path)
    write_sidecar(path, classes=list(NAMES))
    image_path, _ = picture
    rc = main(["predict", "--weights", str(path), str(image_path), "--out",
               str(tmp_path / "out"), "--ablate", "psp.bin1"])
    assert rc == 2
    assert "--ablate: roads.onnx (ONNX) has no named branches" in _one_line_error(capsys)
