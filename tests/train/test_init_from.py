"""Fine-tuning: a run starts from a trained checkpoint, its classes matched by name."""

import pytest
import torch

from segstudio.core.classes import from_names
from segstudio.models import registry
from segstudio.models.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from segstudio.paths import weights_dir
from segstudio.train.init_from import InitError, load_initial_weights
from segstudio.train.loop import TrainError, train
from test_loop import write_demo

torch.set_num_threads(1)
CHEST_UNET = weights_dir() / "chest_xray_unet_lite.pt"


def _classes(*names):
    return from_names(names)


def test_same_classes_start_from_exactly_the_checkpoints_network():
    bundled, meta = load_checkpoint(CHEST_UNET)
    torch.manual_seed(3)
    fresh = registry.build_model("unet", len(meta.classes), config="lite")
    report = load_initial_weights(fresh, "unet", "lite", meta.classes, CHEST_UNET)
    assert report.matched == list(meta.classes.names) and report.fresh == []
    assert report.per_class > 0 and tuple(report.mean) == tuple(meta.mean)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fresh.eval()(x)["out"], bundled(x)["out"])


def test_other_classes_carry_over_by_name_and_new_ones_start_fresh():
    bundled, meta = load_checkpoint(CHEST_UNET)
    names = ("background", "heart", "nodule", "lungs")        # reordered, one dropped, one new
    torch.manual_seed(3)
    fresh = registry.build_model("unet", 4, config="lite")
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    report = load_initial_weights(fresh, "unet", "lite", _classes(*names), CHEST_UNET)
    assert report.matched == ["background", "heart", "lungs"] and report.fresh == ["nodule"]
    old, new = bundled.state_dict(), fresh.state_dict()
    changed = [k for k in new if new[k].shape[:1] == (4,) and new[k].dim() > 0
               and not torch.equal(new[k], old[k])]
    assert changed, "the scoring layer must be remapped, not copied in order"
    for key in changed:
        for j, name in enumerate(names):
            if name == "nodule":
                torch.testing.assert_close(new[key][j], before[key][j])
            else:
                torch.testing.assert_close(new[key][j], old[key][meta.classes.names.index(name)])
    shared = [k for k in new if k not in changed and new[k].dtype.is_floating_point]
    assert all(torch.equal(new[k], old[k]) for k in shared)


def test_mask_rcnn_box_regressors_move_four_values_per_class(tmp_path):
    torch.manual_seed(0)
    source = registry.build_model("maskrcnn", 3, config="lite")
    path = tmp_path / "shapes.pt"
    save_checkpoint(path, source, CheckpointMeta("maskrcnn", "lite",
                                                 _classes("background", "circle", "square")))
    target = registry.build_model("maskrcnn", 3, config="lite")
    report = load_initial_weights(target, "maskrcnn", "lite",
                                  _classes("background", "square", "star"), path)
    assert report.fresh == ["star"] and report.per_class >= 3
    old = source.roi_heads.box_predictor.bbox_pred.weight
    new = target.roi_heads.box_predictor.bbox_pred.weight
    torch.testing.assert_close(new[4:8], old[8:12])           # square: 2nd class there, 1st here
    torch.testing.assert_close(new[0:4], old[0:4])
    mask_old = source.roi_heads.mask_predictor.mask_fcn_logits.weight
    torch.testing.assert_close(target.roi_heads.mask_predictor.mask_fcn_logits.weight[1],
                               mask_old[2])


def test_a_checkpoint_of_another_kind_or_untrained_is_refused(tmp_path):
    fresh = registry.build_model("fcn8s", 4, config="lite")
    with pytest.raises(InitError, match="'unet' network .* 'fcn8s' \\(lite\\) run"):
        load_initial_weights(fresh, "fcn8s", "lite", _classes("a", "b", "c", "d"), CHEST_UNET)
    path = tmp_path / "random.pt"
    save_checkpoint(path, fresh, CheckpointMeta("fcn8s", "lite", _classes("a", "b", "c", "d"),
                                                trained=False))
    with pytest.raises(InitError, match="random weights"):
        load_initial_weights(fresh, "fcn8s", "lite", _classes("a", "b", "c", "d"), path)
    (tmp_path / "broken.pt").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(InitError, match="broken.pt"):
        load_initial_weights(fresh, "fcn8s", "lite", _classes("a", "b", "c", "d"),
                             tmp_path / "broken.pt")


def test_fine_tuning_the_bundled_model_keeps_what_it_knows(tmp_path):
    data = write_demo(tmp_path / "voc", "xray", 8, 128, seed=5)
    heard = []
    kwargs = dict(epochs=1, batch_size=2, crop=96, lr=1e-4, device="cpu", max_steps=1)
    tuned = train("unet", data, out=tmp_path / "tuned.pt", init=CHEST_UNET, notice=heard.append,
                  **kwargs)
    scratch = train("unet", data, out=tmp_path / "scratch.pt", **kwargs)
    assert heard and "chest_xray_unet_lite.pt" in heard[0]
    assert tuned.best_miou > 0.5 > scratch.best_miou
    _, meta = load_checkpoint(tmp_path / "tuned.pt")
    bundled_meta = load_checkpoint(CHEST_UNET)[1]
    assert meta.training["started_from"] == "chest_xray_unet_lite.pt"
    assert "--init" in meta.training["command"]
    assert tuple(meta.mean) == pytest.approx(tuple(bundled_meta.mean))    # its normalisation
    with pytest.raises(TrainError, match="'unet' network"):
        train("fcn8s", data, out=tmp_path / "x.pt", init=CHEST_UNET, **kwargs)


CHEST_FCN8S = weights_dir() / "chest_xray_fcn8s_lite.pt"


def test_fcn_upsamplers_with_two_class_axes_carry_over_class_by_class():
    """FCN-8s's upscore layers are C × C × 4 × 4: both axes follow the classes by name."""
    bundled, meta = load_checkpoint(CHEST_FCN8S)
    names = ("background", "heart", "nodule", "lungs")
    torch.manual_seed(3)
    fresh = registry.build_model("fcn8s", 4, config="lite")
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    report = load_initial_weights(fresh, "fcn8s", "lite", _classes(*names), CHEST_FCN8S)
    assert report.matched == ["background", "heart", "lungs"] and report.fresh == ["nodule"]
    old, new = bundled.state_dict(), fresh.state_dict()
    two_axes = [k for k in new if new[k].dim() == 4 and new[k].shape[:2] == (4, 4)]
    assert "upscore2.weight" in two_axes
    src = {n: meta.classes.names.index(n) for n in names if n != "nodule"}
    for key in two_axes:
        for j, a in enumerate(names):
            for j2, b in enumerate(names):
                if a in src and b in src:                  # matched on both axes: carried over
                    assert torch.equal(new[key][j, j2], old[key][src[a], src[b]]), key
                else:                                      # touches the new class: fresh
                    assert torch.equal(new[key][j, j2], before[key][j, j2]), key
    same = registry.build_model("fcn8s", len(meta.classes), config="lite")
    load_initial_weights(same, "fcn8s", "lite", meta.classes, CHEST_FCN8S)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(same.eval()(x)["out"], bundled(x)["out"])


def test_train_command_starts_from_the_bundled_fcn8s(tmp_path, capsys):
    from segstudio.cli import main

    assert main(["demo-data", "--kind", "xray", "--n", "6", "--size", "64",
                 "--out", str(tmp_path / "d")]) == 0
    out = tmp_path / "ft.pt"
    code = main(["train", "--model", "fcn8s", "--data", str(tmp_path / "d" / "VOCdevkit" /
                                                          "VOC2012"),
                 "--epochs", "1", "--batch-size", "2", "--crop", "64", "--device", "cpu",
                 "--init", str(CHEST_FCN8S), "--out", str(out)])
    text = capsys.readouterr()
    assert code == 0, text.err
    assert "started from chest_xray_fcn8s_lite.pt" in text.out
    assert "classes carried over: background, lungs, heart, clavicles" in text.out
    _, meta = load_checkpoint(out)
    assert meta.training["started_from"] == CHEST_FCN8S.name
