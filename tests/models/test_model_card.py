"""Model cards: the bundled checkpoints carry one, training writes one, and predictions on
images unlike the training data are called out (the phantom demo stays quiet)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import torch
from pydicom.data import get_testdata_file

from segstudio import paths
from segstudio.cli import main
from segstudio.io.images import read_image
from segstudio.models import domain
from segstudio.models.checkpoint import load_checkpoint, read_meta
from segstudio.models.engine import Predictor
from segstudio.models.model_card import (ModelCard, describe_images, histogram_stats,
                                         read_card, sidecar_path)

WEIGHTS = paths.resources_dir() / "weights"
CHEST = WEIGHTS / "chest_xray_unet_lite.pt"
CONTEXT = WEIGHTS / "context_pspnet_lite.pt"      # the context demo's model


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("SEGSTUDIO_TORCH_THREADS", "1")
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    torch.set_num_threads(1)


def _dicom(name):
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom does not ship {name} here")
    return path


def _predictor(path):
    model, meta = load_checkpoint(path)
    return Predictor(model, meta, device="cpu", precision="fp32", num_threads=1)


@pytest.mark.parametrize("path", sorted(WEIGHTS.glob("*.pt")), ids=lambda p: p.stem)
def test_every_bundled_checkpoint_has_a_card_from_its_synthetic_training_set(path):
    meta = read_meta(path)
    card = read_card(meta.training)
    assert card is not None, f"{path.name} has no model card"
    assert card.data_kind == "synthetic" and "generated" in card.data_description
    assert card.train_images == 320 and card.val_images == 80
    # 128 px sets; the models trained on the current context scenes need 256 px (see README).
    assert card.size_min == card.size_max and card.size_min in ((128, 128), (256, 256))
    assert card.num_classes == len(meta.classes) == len(card.class_fractions) \
        == len(card.predicted_fractions)
    assert 0 < card.intensity["p1"] <= card.intensity["p50"] <= card.intensity["p99"] <= 255 \
        or card.intensity["p1"] == 0
    assert 1 / card.num_classes < card.val_confidence <= 1 and card.val_entropy >= 0
    assert "not a medical device" in card.intended_use
    # Measured on the stored weights: close to the validation score the run recorded.
    recorded = meta.training.get("val_mIoU")
    if recorded is not None:
        assert card.val_scores["mIoU"] == pytest.approx(recorded, abs=0.03)


def test_cards_are_sidecars_and_the_checkpoints_themselves_are_unchanged():
    # The weights are the files as trained and stored (float16 where the README says so);
    # git sees no change to them, only the new sidecars.
    out = subprocess.run(["git", "status", "--porcelain", "--", str(WEIGHTS)], capture_output=True,
                         text=True, cwd=paths.resources_dir().parent)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    changed = [line for line in out.stdout.splitlines() if line.strip().endswith(".pt")]
    assert changed == []
    assert sidecar_path(CHEST).is_file()
    state = torch.load(WEIGHTS / "context_pspnet_lite.pt", weights_only=True)["state_dict"]
    assert any(t.dtype == torch.float16 for t in state.values())


def test_card_round_trips_and_reads_as_sentences():
    card = read_card(read_meta(CHEST).training)
    again = ModelCard.from_dict(json.loads(json.dumps(card.to_dict())))
    assert again == card
    text = "\n".join(card.summary_lines())
    assert "synthetic" in text and "320 train, 80 validation" in text
    assert "Validation: mIoU" in text and "not a medical device" in text


def test_a_malformed_card_is_ignored_not_fatal():
    assert read_card({"card": {"data": {"train_images": "many"}}}) is None
    assert read_card({}) is None


def test_intensity_statistics_are_exact_for_eight_bit_images():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (20, 30, 3), dtype=np.uint8) for _ in range(3)]
    grey = [np.clip(np.rint(im.astype(np.float32) @ np.array([0.299, 0.587, 0.114],
                                                              np.float32)), 0, 255) for im in images]
    allpx = np.concatenate([g.ravel() for g in grey])
    summary = describe_images([(im, None) for im in images])
    assert summary["count"] == 3 and summary["size_max"] == (30, 20)
    assert summary["intensity"]["mean"] == pytest.approx(allpx.mean(), abs=1e-3)
    assert summary["intensity"]["std"] == pytest.approx(allpx.std(), abs=1e-3)
    stats = histogram_stats(np.bincount(allpx.astype(int), minlength=256))
    assert stats["p50"] == np.percentile(allpx, 50, method="inverted_cdf")


def test_the_phantom_demo_is_in_domain():
    rgb = read_image(paths.resources_dir() / "demo" / "chest_phantom_01.png").to_rgb8()
    predictor = _predictor(CHEST)
    finding = domain.check(predictor.meta, predictor.predict(rgb), rgb)
    assert finding is not None and not finding.out_of_domain, finding.reasons
    ctx = read_image(paths.resources_dir() / "demo" / "context_01.png").to_rgb8()
    predictor = _predictor(CONTEXT)
    assert not domain.check(predictor.meta, predictor.predict(ctx), ctx).out_of_domain


DEMOS = {"chest_xray": "chest_phantom_01.png", "context": "context_01.png",
         "shapes": "shapes_01.png"}


# The chest SegNet draws the heart twice too large on the 160 px demo phantom (see below): the
# one bundled model that is rightly not quiet there.
WRONG_ON_DEMO = {"chest_xray_segnet_lite"}
# The context models once flagged on today's demo scene (mostly grass) were trained on the
# previous scenes (water and road around the objects); all are now retrained on the current ones
# and must be quiet there (see resources/weights/README.md).


@pytest.mark.parametrize("path", [p for p in sorted(WEIGHTS.glob("*.pt"))
                                  if p.stem not in WRONG_ON_DEMO],
                         ids=lambda p: p.stem)
def test_every_bundled_model_is_quiet_on_its_own_demo_image(path):
    demo = next(v for k, v in DEMOS.items() if path.name.startswith(k))
    rgb = read_image(paths.resources_dir() / "demo" / demo).to_rgb8()
    predictor = _predictor(path)
    finding = domain.check(predictor.meta, predictor.predict(rgb), rgb)
    assert finding is not None and not finding.out_of_domain, finding.reasons


def test_a_model_that_is_wrong_on_the_demo_is_flagged_for_what_it_gets_wrong():
    from segstudio.core.metrics import scores
    from segstudio.train.synth import make_sample

    truth = make_sample("xray", 0, size=160, seed=2026).labels      # how the demo was made
    rgb = read_image(paths.resources_dir() / "demo" / "chest_phantom_01.png").to_rgb8()
    path = WEIGHTS / "chest_xray_segnet_lite.pt"
    predictor = _predictor(path)
    prediction = predictor.predict(rgb)
    card = read_card(predictor.meta.training)
    assert scores(truth, prediction.labels, 4).miou < card.val_scores["mIoU"] - 0.05
    heart = float((prediction.labels == 2).mean())
    assert heart > 1.5 * float((truth == 2).mean())
    finding = domain.check(predictor.meta, prediction, rgb)
    assert finding.out_of_domain and any("'heart'" in r for r in finding.reasons)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "examples_overlay.dcm",
                                  "examples_rgb_color.dcm"])
def test_real_dicoms_are_out_of_domain_for_the_phantom_model(name):
    rgb = read_image(_dicom(name)).to_rgb8()
    predictor = _predictor(CHEST)
    finding = domain.check(predictor.meta, predictor.predict(rgb), rgb)
    assert finding.out_of_domain
    message = finding.message()
    assert message.startswith("trained on synthetic images; on this image its confidence is ")
    assert f"against {finding.val_confidence:.2f} on its validation data" in message
    assert message.endswith("treat as a rough start")


def test_grey_radiographs_are_out_of_domain_for_the_colour_scene_model():
    rgb = read_image(_dicom("CT_small.dcm")).to_rgb8()
    predictor = _predictor(CONTEXT)
    finding = domain.check(predictor.meta, predictor.predict(rgb), rgb)
    assert finding.out_of_domain
    assert any("grey image" in r for r in finding.reasons)


def test_no_card_means_no_finding(tmp_path):
    from segstudio.core.classes import chest_xray

    predictor = Predictor.untrained("unet", chest_xray(), device="cpu", precision="fp32",
                                    num_threads=1)
    rgb = np.zeros((32, 32, 3), np.uint8)
    assert domain.check(predictor.meta, predictor.predict(rgb), rgb) is None


def test_predict_warns_by_name_about_out_of_domain_images_only(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "ct.dcm").write_bytes(open(_dicom("CT_small.dcm"), "rb").read())
    (folder / "phantom.png").write_bytes(
        (paths.resources_dir() / "demo" / "chest_phantom_01.png").read_bytes())
    assert main(["predict", "--model", "unet", "--weights", str(CHEST), "--device", "cpu",
                 "--precision", "fp32", "--threads", "1", "--out", str(tmp_path / "out"),
                 str(folder)]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert warnings[0].startswith("warning: ct.dcm: trained on synthetic images")
    assert "treat as a rough start" in warnings[0]
    assert (tmp_path / "out" / "ct.png").is_file() and (tmp_path / "out" / "phantom.png").is_file()


# -- a card that cannot be read is said, not silently dropped ----------------------------------
def _every_number(data, value):
    if isinstance(data, dict):
        return {k: _every_number(v, value) for k, v in data.items()}
    if isinstance(data, list):
        return [_every_number(v, value) for v in data]
    return value if isinstance(data, (int, float)) and not isinstance(data, bool) else data


def _card_with(section, key, value):
    data = json.loads(sidecar_path(CHEST).read_text())
    data[section][key] = value
    return json.dumps(data)


UNREADABLE = {
    "not-json": ("{oops", "not JSON: "),
    "all-nan": (lambda: json.dumps(_every_number(json.loads(sidecar_path(CHEST).read_text()),
                                                 float("nan"))),
                "a histogram count is nan, not a finite number"),
    "folder": (None, "this is a folder, not a regular file"),
    "nested-100000-deep": ("[" * 100_000 + "]" * 100_000, "nested too deeply to be a card"),
    "huge-negative-mean": (lambda: _card_with("data", "image_means", [-1e308, 149.3]),
                           "an image grey mean is -1e+308, outside 0–65535"),
    "confidence-5": (lambda: _card_with("validation", "confidence", 5.0),
                     "the validation confidence is 5, outside 0–1"),
    "negative-sd": (lambda: _card_with("data", "image_stds", [-4.0, 70.0]),
                    "an image grey sd is -4, outside 0–65535"),
    "negative-count": (lambda: _card_with("data", "train_images", -320),
                       "the training image count is -320, below 0"),
    "infinite-mean": (lambda: _card_with("data", "intensity", {"mean": float("inf"),
                                                               "std": 61.1}),
                      "the grey mean is inf, not a finite number"),
}


def _checkpoint_with_unreadable_card(tmp_path, kind):
    weights = tmp_path / "chest.pt"
    weights.write_bytes(CHEST.read_bytes())
    content, reason = UNREADABLE[kind]
    side = sidecar_path(weights)
    if content is None:
        side.mkdir()
    else:
        side.write_text(content() if callable(content) else content)
    sentence = (f"model card chest.card.json could not be read ({reason}")
    return weights, sentence


@pytest.mark.parametrize("kind", list(UNREADABLE))
def test_an_unreadable_card_is_a_warning_from_predict(tmp_path, capsys, kind):
    weights, sentence = _checkpoint_with_unreadable_card(tmp_path, kind)
    phantom = paths.resources_dir() / "demo" / "chest_phantom_01.png"
    assert main(["predict", "--model", "unet", "--weights", str(weights), "--device", "cpu",
                 "--precision", "fp32", "--threads", "1", "--out", str(tmp_path / "out"),
                 str(phantom)]) == 0
    err = capsys.readouterr().err
    (warning,) = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warning.startswith(f"warning: {sentence}"), warning
    assert warning.endswith("); inputs are not checked against its training data")
    assert len(warning) < 300 and "Traceback" not in err
    assert (tmp_path / "out" / "chest_phantom_01.png").is_file()


@pytest.mark.parametrize("kind", list(UNREADABLE))
def test_an_unreadable_card_is_said_in_the_model_panel(tmp_path, qtbot, kind):
    from segstudio.ui.background.workers import model_info
    from segstudio.ui.panels.model import ModelPanel

    weights, sentence = _checkpoint_with_unreadable_card(tmp_path, kind)
    panel = ModelPanel()
    qtbot.addWidget(panel)
    panel.show_model(model_info(_predictor(weights), "chest"))
    text = panel.card_label.text()
    assert text.startswith("M" + sentence[1:]) and text.endswith(
        "inputs are not checked against its training data.")
    assert "e0443e" in panel.card_label.styleSheet()
    # A readable card afterwards is shown as usual, not in red.
    panel.show_model(model_info(_predictor(CHEST), "chest"))
    assert "320 train, 80 validation" in panel.card_label.text()
    assert panel.card_label.styleSheet() == ""


def test_an_unreadable_card_inside_the_checkpoint_is_named_by_the_file(tmp_path):
    payload = torch.load(CHEST, weights_only=True)
    card = json.loads(sidecar_path(CHEST).read_text())
    card["validation"]["entropy"] = -1.0
    payload["meta"]["training"]["card"] = card
    weights = tmp_path / "inside.pt"
    torch.save(payload, weights)
    meta = read_meta(weights)
    assert read_card(meta.training) is None
    assert domain.unchecked_warning(meta) == (
        "model card in inside.pt could not be read (the validation entropy is -1, outside "
        "0–∞); inputs are not checked against its training data")


def test_a_readable_card_gives_no_warning_and_no_card_is_not_a_problem(tmp_path):
    assert domain.unchecked_warning(read_meta(CHEST)) is None
    bare = tmp_path / "bare.pt"
    bare.write_bytes(CHEST.read_bytes())
    meta = read_meta(bare)
    assert read_card(meta.training) is None and domain.unchecked_warning(meta) is None
