"""Hugging Face model folders: a tiny random SegFormer saved with save_pretrained gives the
labels transformers itself gives; pickled weights and shipped code are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from foreign_models import (MEAN, NAMES, STD, image, normalised,  # noqa: E402
                            reference_labels, save_segformer, write_sidecar)
from segstudio.cli import main  # noqa: E402
from segstudio.models.engine import Predictor  # noqa: E402
from segstudio.models.formats import ModelFormatError, load_any  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("SEGSTUDIO_TORCH_THREADS", "1")
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def segformer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf") / "tiny-segformer"
    model = save_segformer(folder)
    return folder, model


def test_a_segformer_folder_labels_an_image_as_transformers_itself_does(segformer):
    folder, model = segformer
    loaded = load_any(folder)
    assert loaded.format == "huggingface" and loaded.meta.arch == "Hugging Face segformer"
    assert loaded.meta.classes.names == NAMES                          # from id2label
    assert loaded.meta.mean == pytest.approx(MEAN) and loaded.meta.std == pytest.approx(STD)
    assert loaded.weights_file == folder / "model.safetensors"
    rgb = image(70, 90, seed=11)
    with torch.no_grad():
        logits = model(pixel_values=normalised(rgb)).logits
    assert logits.shape[-2:] != rgb.shape[:2]               # a quarter of the input: resized
    expected = reference_labels(logits, rgb.shape[:2])
    prediction = Predictor.from_model(loaded, device="cpu", precision="fp32").predict(rgb)
    assert len(np.unique(expected)) >= 2
    assert (prediction.labels == expected).mean() >= 0.995


def test_predict_runs_a_hugging_face_folder(segformer, tmp_path, capsys):
    from PIL import Image

    folder, model = segformer
    rgb = image(64, 80, seed=12)
    Image.fromarray(rgb).save(tmp_path / "scene.png")
    rc = main(["predict", "--weights", str(folder), str(tmp_path / "scene.png"), "--out",
               str(tmp_path / "out"), "--precision", "fp32"])
    assert rc == 0, capsys.readouterr().err
    assert "tiny-segformer (Hugging Face segformer, trained)" in capsys.readouterr().out
    with Image.open(tmp_path / "out" / "scene.png") as im:
        labels = np.asarray(im)
    with torch.no_grad():
        expected = reference_labels(model(pixel_values=normalised(rgb)).logits, rgb.shape[:2])
    assert (labels == expected).mean() >= 0.995


def _copy(folder, dest):
    import shutil

    shutil.copytree(folder, dest)
    return dest


def test_pickled_weights_are_refused(segformer, tmp_path):
    folder = _copy(segformer[0], tmp_path / "pickled")
    (folder / "model.safetensors").unlink()
    torch.save(segformer[1].state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(ModelFormatError, match=r"^pickled: holds only pickled weights "
                                               r"\(pytorch_model.bin\)"):
        load_any(folder)


def test_code_shipped_in_the_folder_is_refused_before_transformers_sees_it(segformer, tmp_path,
                                                                           monkeypatch):
    import transformers

    folder = _copy(segformer[0], tmp_path / "remote")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSemanticSegmentation": "evil.Model"}
    (folder / "config.json").write_text(json.dumps(config))

    def never(*_a, **_k):
        raise AssertionError("from_pretrained ran on a refused folder")

    monkeypatch.setattr(transformers.AutoModelForSemanticSegmentation, "from_pretrained", never)
    with pytest.raises(ModelFormatError, match=r"^remote: its config asks for code shipped"):
        load_any(folder)


def test_processor_values_in_pixel_units_become_0_to_1_units(segformer, tmp_path):
    folder = _copy(segformer[0], tmp_path / "pixel-units")
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "do_rescale": False, "do_normalize": True, "image_mean": [127.5, 127.5, 127.5],
        "image_std": 63.75}))
    loaded = load_any(folder)
    assert loaded.meta.mean == pytest.approx((0.5, 0.5, 0.5))
    assert loaded.meta.std == pytest.approx((0.25, 0.25, 0.25))


@pytest.mark.parametrize("change, said", [
    ({"id2label": {"0": "a", "2": "b", "1": "c", "5": "d"}}, "must run 0..3 without gaps"),
    ({"id2label": {"0": "a", "1": "a", "2": "b"}}, "class names must be unique"),
    ({"id2label": ["a", "b"]}, "id2label is not a mapping"),
    ({"model_type": "no-such-model"}, "transformers cannot load it"),
])
def test_a_bad_config_is_refused_in_one_line(segformer, tmp_path, change, said):
    folder = _copy(segformer[0], tmp_path / "bad")
    config = json.loads((folder / "config.json").read_text())
    config.update(change)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError) as info:
        load_any(folder)
    assert str(info.value).startswith("bad") and said in str(info.value)
    assert "\n" not in str(info.value)


def test_a_sidecar_in_the_folder_renames_the_classes(segformer, tmp_path):
    folder = _copy(segformer[0], tmp_path / "renamed")
    write_sidecar(folder, classes=["sky", "street", "tram"], std=[0.5, 0.5, 0.5])
    loaded = load_any(folder)
    assert loaded.meta.classes.names == ("sky", "street", "tram")
    assert loaded.meta.std == pytest.approx((0.5, 0.5, 0.5))
    assert loaded.meta.mean == pytest.approx(MEAN)            # the processor's still
