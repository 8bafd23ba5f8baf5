"""``segstudio predict``: label PNGs, overlays, warnings, torchrun sharding and clean errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from segstudio.cli import main
from segstudio.core.classes import chest_xray
from segstudio.models import registry
from segstudio.models.checkpoint import CheckpointMeta, save_checkpoint
from segstudio.models.engine import Predictor
from segstudio.refine.crf import refine_probabilities

ARCH = "unet"


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("SEGSTUDIO_TORCH_THREADS", "1")
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    torch.set_num_threads(1)


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(3)
    model = registry.build_model(ARCH, 4, config="lite").eval()
    meta = CheckpointMeta(arch=ARCH, config="lite", classes=chest_xray(), trained=True,
                          training={"epochs": 1})
    path = tmp_path / "unet.ckpt"
    save_checkpoint(path, model, meta)
    return path


def _images(folder, sizes):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for name, (h, w) in sizes.items():
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(folder / f"{name}.png")
        arrays[name] = rgb
    return arrays


def test_predict_writes_palette_label_pngs_equal_to_the_predictor(tmp_path, checkpoint, capsys):
    images = _images(tmp_path / "in", {"a": (32, 48), "b": (40, 40)})
    out = tmp_path / "out"
    rc = main(["predict", "--model", ARCH, "--weights", str(checkpoint), str(tmp_path / "in"),
               "--out", str(out), "--overlay", "--device", "cpu", "--precision", "fp32"])
    assert rc == 0
    stdout = capsys.readouterr().out
    assert "[1/2] a.png -> a.png" in stdout and "[2/2] b.png -> b.png" in stdout
    assert "trained" in stdout and "UNTRAINED" not in stdout
    assert not (out / "SegmentationObject").exists()      # a semantic network has no objects
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu", precision="fp32")
    for name, rgb in images.items():
        with Image.open(out / f"{name}.png") as im:
            assert im.mode == "P"
            assert im.getpalette()[:12] == chest_xray().palette()[:12]
            labels = np.asarray(im)
        expected = predictor.predict(rgb).labels
        np.testing.assert_array_equal(labels, expected)
        with Image.open(out / f"{name}_overlay.png") as im:
            overlay = np.asarray(im.convert("RGB")).astype(int)
        colors = chest_xray().color_table()[expected].astype(int)
        assert np.abs(overlay - (rgb.astype(int) + colors) / 2).max() <= 1


def test_without_weights_it_warns_loudly_that_the_network_is_untrained(tmp_path, capsys):
    _images(tmp_path / "in", {"x": (32, 32)})
    rc = main(["predict", "--model", ARCH, "--classes", "chest-xray",
               str(tmp_path / "in" / "x.png"), "--out", str(tmp_path / "out")])
    assert rc == 0
    captured = capsys.readouterr()
    assert "WARNING" in captured.err and "UNTRAINED" in captured.err
    assert "UNTRAINED" in captured.out
    with Image.open(tmp_path / "out" / "x.png") as im:
        assert im.size == (32, 32) and np.asarray(im).max() < 4


def test_under_torchrun_each_rank_takes_every_world_size_th_input(tmp_path, monkeypatch,
                                                                  checkpoint):
    _images(tmp_path / "in", {"a": (32, 32), "b": (32, 32), "c": (32, 32)})
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    rc = main(["predict", "--model", ARCH, "--weights", str(checkpoint), str(tmp_path / "in"),
               "--out", str(tmp_path / "out")])
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b.png"]


def test_unreadable_image_is_skipped_by_name_and_the_run_fails(tmp_path, checkpoint, capsys):
    _images(tmp_path / "in", {"good": (32, 32)})
    (tmp_path / "in" / "broken.png").write_text("not a png at all")
    rc = main(["predict", "--model", ARCH, "--weights", str(checkpoint), str(tmp_path / "in"),
               "--out", str(tmp_path / "out")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "broken.png: skipped" in err and "1 of 2 image(s) could not be read" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]


def test_checkpoint_of_another_model_is_a_clean_error(tmp_path, checkpoint, capsys):
    _images(tmp_path / "in", {"a": (32, 32)})
    rc = main(["predict", "--model", "segnet", "--weights", str(checkpoint),
               str(tmp_path / "in"), "--out", str(tmp_path / "out")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "segstudio predict: error: unet.ckpt: holds a 'unet' network, but 'segnet'" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, message", [
    (["--model", "hypernet"], "--model hypernet: neither an architecture"),
    (["--model", ARCH, "--device", "tpu"], "unknown device 'tpu'"),
    (["--model", ARCH, "--classes", "nonsense.json"], "--classes nonsense.json"),
])
def test_bad_options_are_clean_errors(tmp_path, capsys, argv, message):
    _images(tmp_path / "in", {"a": (32, 32)})
    rc = main(["predict", *argv, str(tmp_path / "in"), "--out", str(tmp_path / "out")])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_missing_input_is_a_clean_error(tmp_path, capsys):
    rc = main(["predict", "--model", ARCH, str(tmp_path / "nothing.png"),
               "--out", str(tmp_path / "out")])
    assert rc == 2
    assert "nothing.png: no such file or folder" in capsys.readouterr().err


def test_crf_option_writes_the_refined_labels(tmp_path, checkpoint):
    images = _images(tmp_path / "in", {"a": (40, 48)})
    rc = main(["predict", "--model", ARCH, "--weights", str(checkpoint), str(tmp_path / "in"),
               "--out", str(tmp_path / "out"), "--crf", "--precision", "fp32"])
    assert rc == 0
    probs = Predictor.from_checkpoint(checkpoint, device="cpu", precision="fp32") \
        .predict(images["a"]).probabilities
    expected = refine_probabilities(images["a"], probs).argmax(axis=0)
    with Image.open(tmp_path / "out" / "a.png") as im:
        np.testing.assert_array_equal(np.asarray(im), expected)


def test_model_without_a_lite_configuration_runs_in_its_own(tmp_path, capsys):
    _images(tmp_path / "in", {"a": (32, 40)})
    rc = main(["predict", "--model", "deeplabv3_mobilenet_v3_large", str(tmp_path / "in"),
               "--out", str(tmp_path / "out")])
    assert rc == 0
    assert "deeplabv3_mobilenet_v3_large (paper, UNTRAINED)" in capsys.readouterr().out
    with Image.open(tmp_path / "out" / "a.png") as im:
        assert im.size == (40, 32)


def test_the_bundled_mask_rcnn_writes_its_objects_and_eval_scores_them(tmp_path, capsys):
    import json

    from segstudio.io.voc import VocSample, load_label_png, write_voc
    from segstudio.paths import weights_dir
    from segstudio.train.synth import classes_for, generate

    samples = list(generate("shapes", 4, size=128, seed=7))
    write_voc(tmp_path / "voc", [VocSample(s.id, s.image, s.labels, s.instances)
                                 for s in samples], classes_for("shapes"))
    tree = tmp_path / "voc" / "VOCdevkit" / "VOC2012"
    weights = weights_dir() / "shapes_maskrcnn_lite.pt"
    out = tmp_path / "pred"
    assert main(["predict", "--model", "maskrcnn", "--weights", str(weights), "--device", "cpu",
                 "--out", str(out), str(tree / "JPEGImages")]) == 0
    predictor = Predictor.from_checkpoint(weights, device="cpu", precision="fp32")
    for s in samples:
        rgb = np.asarray(Image.open(tree / "JPEGImages" / f"{s.id}.jpg").convert("RGB"))
        expected = predictor.predict(rgb).instances
        np.testing.assert_array_equal(load_label_png(out / "SegmentationObject" / f"{s.id}.png"),
                                      expected)
    capsys.readouterr()
    assert main(["eval", "--pred", str(out), "--gt", str(tree / "SegmentationClass"),
                 "--json"]) == 0
    objects = json.loads(capsys.readouterr().out)["instances"]
    truth = sum(len(np.unique(s.instances[s.instances > 0])) for s in samples)
    assert objects["TP"] + objects["FN"] == truth and objects["images"] == 4
    assert objects["recall"] > 0.7 and objects["precision"] > 0.5
