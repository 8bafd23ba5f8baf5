"""Registry facts, build errors, cache-only ImageNet weights and ``segstudio models``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from segstudio.cli import main
from segstudio.models import registry
from segstudio.models.backbones import BackboneWeightsError, ResNet, cached_weights_file
from segstudio.models.registry import (FAMILIES, REGISTRY, ModelConfigError, build_model,
                                       get_spec)

torch.set_num_threads(1)

EXPECTED_NAMES = {
    "fcn8s", "fcn32s", "fcn16s", "fcn_resnet50", "fcn_resnet101", "segnet", "unet", "pspnet",
    "deeplabv1", "deeplabv2", "deeplabv3", "deeplabv3_resnet50", "deeplabv3_resnet101",
    "deeplabv3_mobilenet_v3_large", "refinenet", "maskrcnn"}

BUILDS = [(name, config) for name, spec in REGISTRY.items() for config in spec.configs]


def test_registry_holds_every_zoo_model_with_consistent_facts():
    assert set(REGISTRY) == EXPECTED_NAMES
    for name, spec in REGISTRY.items():
        assert spec.name == name and spec.family in FAMILIES
        assert spec.uses_crf == (name in ("deeplabv1", "deeplabv2"))
        assert spec.instance == (name == "maskrcnn")
        assert spec.output_stride in (1, 4, 8, 16, 32) and 2000 < spec.year < 2030
        assert spec.branches and spec.description and spec.paper
    assert get_spec("fcn8s").title == "FCN-8s"
    assert len({get_spec("unet"), get_spec("unet"), get_spec("segnet")}) == 2   # hashable
    assert [get_spec(f"fcn{s}s").output_stride for s in (32, 16, 8)] == [32, 16, 8]


def test_spec_to_dict_is_json_and_complete():
    data = json.loads(json.dumps(get_spec("pspnet").to_dict()))
    assert data["branches"]["psp.bin6"] == "head.ppm.stages.3"
    assert data["configs"] == ["lite", "paper"] and data["year"] == 2017


def test_unknown_model_error_lists_the_known_names():
    with pytest.raises(KeyError) as info:
        get_spec("fcn4s")
    message = str(info.value)
    assert "fcn4s" in message and "deeplabv3" in message and "refinenet" in message


@pytest.mark.parametrize("name,config", BUILDS)
def test_every_branch_path_resolves_in_the_built_model(name, config):
    model = build_model(name, 3, config)
    for probe, path in get_spec(name).branches.items():
        assert isinstance(model.get_submodule(path), torch.nn.Module), probe


@pytest.mark.parametrize("name,config", [(n, "lite") for n, s in REGISTRY.items()
                                         if "lite" in s.configs]
                         + [("deeplabv3_mobilenet_v3_large", "paper")])
def test_every_branch_yields_a_feature_map_tensor(name, config):
    model = build_model(name, 3, config).eval()
    seen = {}
    for probe, path in get_spec(name).branches.items():
        model.get_submodule(path).register_forward_hook(
            lambda m, i, o, probe=probe: seen.setdefault(probe, o))
    with torch.no_grad():
        model([torch.rand(3, 40, 52)] if get_spec(name).instance else torch.rand(1, 3, 40, 52))
    assert set(seen) == set(get_spec(name).branches)
    for probe, out in seen.items():
        assert isinstance(out, torch.Tensor) and out.ndim == 4, probe


def test_build_rejects_unknown_config_and_bad_class_counts():
    with pytest.raises(ModelConfigError, match="'huge'"):
        build_model("unet", 3, "huge")
    with pytest.raises(ModelConfigError, match="only the 'paper'|has no 'lite'"):
        build_model("fcn_resnet50", 3, "lite")
    for bad in (0, -2, 2.5, True):
        with pytest.raises(ModelConfigError, match="num_classes"):
            build_model("segnet", bad)


def test_imagenet_weights_need_paper_widths_and_a_backbone():
    with pytest.raises(ModelConfigError, match="paper"):
        build_model("pspnet", 3, "lite", pretrained_backbone=True)
    with pytest.raises(ModelConfigError, match="no ImageNet backbone"):
        build_model("unet", 3, "paper", pretrained_backbone=True)


def _empty_hub(tmp_path, monkeypatch) -> Path:
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    return hub


def test_missing_cached_weights_are_reported_never_downloaded(tmp_path, monkeypatch):
    hub = _empty_hub(tmp_path, monkeypatch)
    with pytest.raises(BackboneWeightsError) as info:
        build_model("deeplabv1", 3, "paper", pretrained_backbone=True)
    assert "vgg16-" in str(info.value) and "not in the torch hub cache" in str(info.value)
    assert not hub.exists()


def test_cached_resnet_weights_load_by_name(tmp_path, monkeypatch):
    from torchvision.models import ResNet18_Weights, resnet18

    from segstudio.models.backbones import load_imagenet_resnet

    _empty_hub(tmp_path, monkeypatch)
    target = cached_weights_file(ResNet18_Weights.IMAGENET1K_V1)
    target.parent.mkdir(parents=True)
    torch.manual_seed(1)
    source = resnet18(weights=None).state_dict()
    torch.save(source, target)
    trunk = ResNet(18)
    load_imagenet_resnet(trunk)
    for key, value in trunk.state_dict().items():
        assert torch.equal(value, source[key]), key


def test_cached_weights_of_the_wrong_shape_are_refused(tmp_path, monkeypatch):
    from torchvision.models import ResNet18_Weights

    from segstudio.models.backbones import load_imagenet_resnet

    _empty_hub(tmp_path, monkeypatch)
    target = cached_weights_file(ResNet18_Weights.IMAGENET1K_V1)
    target.parent.mkdir(parents=True)
    torch.save(ResNet(18, width=0.5).state_dict(), target)
    with pytest.raises(BackboneWeightsError, match="shape"):
        load_imagenet_resnet(ResNet(18))


def test_registry_facts_load_without_torch():
    code = ("import sys, segstudio.models.registry as r; "
            "print(len(r.REGISTRY), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(registry.__file__).parents[2]).stdout.split()
    assert out == [str(len(EXPECTED_NAMES)), "False"]


def test_models_command_prints_a_table_row_per_model(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:8] == ["NAME", "TITLE", "YEAR", "FAMILY", "OS", "CRF", "LITE",
                                    "PAPER"]
    table = lines[1:lines.index("")]
    rows = {line.split()[0]: line for line in table}
    assert set(rows) == EXPECTED_NAMES
    assert "aspp.rate24" in rows["deeplabv2"] and " yes " in rows["deeplabv2"]
    assert "2015" in rows["fcn8s"] and " fcn " in rows["fcn8s"]
    assert "for 21 classes" in lines[lines.index("") + 1]


def test_models_command_json_round_trips_the_registry(capsys):
    assert main(["models", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for entry in data.values():
        assert set(entry.pop("parameters")) == set(entry["configs"])
        assert entry.pop("parameters_for_classes") == 21
    assert data == {name: spec.to_dict() for name, spec in REGISTRY.items()}


@pytest.mark.parametrize("name", ["unet", "deeplabv1", "segnet", "fcn8s"])
def test_parameter_counts_equal_the_parameters_of_a_real_build(capsys, name):
    # Counted on the meta device, printed in the table and the JSON: the same number as the
    # parameters of the network built normally, on the CPU.
    torch.manual_seed(0)
    real = sum(p.numel() for p in build_model(name, 21, "lite").parameters())
    assert registry.parameter_count(name, "lite", 21) == real
    assert main(["models", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[name]["parameters"]["lite"] == real
    assert main(["models"]) == 0
    row = next(line.split() for line in capsys.readouterr().out.splitlines()
               if line.startswith(name + " "))
    assert f"{real / 1e6:.2f}M" in row
    assert registry.parameter_count(name, "lite", 2) < real      # the classifier shrinks


def test_fcn_imagenet_loading_reshapes_fc6_fc7_into_convolutions(tmp_path, monkeypatch):
    from torchvision.models import VGG16_Weights

    from segstudio.models.fcn import FCN

    _empty_hub(tmp_path, monkeypatch)
    model = FCN(3, 8, width=0.125)      # lite widths keep the fake ImageNet file small
    fc, c5 = model.fc6.out_channels, model.fc6.in_channels
    source = {f"features.{k}": torch.randn_like(v)
              for k, v in model.backbone.features.state_dict().items()}
    source.update({"classifier.0.weight": torch.randn(fc, c5 * 49),
                   "classifier.0.bias": torch.randn(fc),
                   "classifier.3.weight": torch.randn(fc, fc), "classifier.3.bias": torch.randn(fc),
                   "classifier.6.weight": torch.randn(1000, fc)})
    target = cached_weights_file(VGG16_Weights.IMAGENET1K_V1)
    target.parent.mkdir(parents=True)
    torch.save(source, target)
    model.load_imagenet()
    assert torch.equal(model.fc6.weight, source["classifier.0.weight"].reshape(fc, c5, 7, 7))
    assert torch.equal(model.fc7.weight[:, :, 0, 0], source["classifier.3.weight"])
    assert torch.equal(model.backbone.features[0].weight, source["features.0.weight"])


def test_torchvision_mobilenet_backbone_loads_from_the_cache(tmp_path, monkeypatch):
    from torchvision.models import MobileNet_V3_Large_Weights, mobilenet_v3_large

    _empty_hub(tmp_path, monkeypatch)
    target = cached_weights_file(MobileNet_V3_Large_Weights.IMAGENET1K_V1)
    target.parent.mkdir(parents=True)
    torch.manual_seed(2)
    source = mobilenet_v3_large(weights=None).state_dict()
    torch.save(source, target)
    model = build_model("deeplabv3_mobilenet_v3_large", 3, "paper", pretrained_backbone=True)
    assert torch.equal(model.backbone.get_submodule("16.0").weight,
                       source["features.16.0.weight"])


def test_models_command_says_where_the_zoo_differs_from_the_papers(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    notes = out[out.index("Where the zoo differs from the papers:"):]
    for name in ("fcn32s", "fcn16s", "fcn8s", "deeplabv1", "deeplabv2", "maskrcnn"):
        assert f"\n  {name}: " in notes, name
        assert get_spec(name).description.endswith(get_spec(name).paper_differences[-1])
    assert "224" in get_spec("deeplabv1").description and "435" in notes


@pytest.mark.parametrize("stride", [32, 8])
def test_fcn_note_counts_the_learned_final_upsampling(stride):
    # The note's figure is the weight count of the network's own final upsampling, which is
    # trained (the paper keeps it fixed).
    model = build_model(f"fcn{stride}s", 21, "lite")
    weight = model.upscore.weight
    assert weight.requires_grad and weight.numel() == 21 * 21 * (2 * stride) ** 2
    assert f"= {weight.numel() / 1e6:.2f} M for 21 classes" in get_spec(
        f"fcn{stride}s").description


def test_largefov_note_is_the_field_fc6_really_has():
    # 435 with pool5a, 419 without: the extent of the input gradient of one fc6 unit of a
    # positive-weight copy (so no path cancels), not the tracer's own figure.
    from segstudio.models.deeplab import DeepLabV1
    from tests.explain.support import positive_copy, support_extent

    for pool5a, size in ((True, 435), (False, 419)):
        model = positive_copy(DeepLabV1(3, width=0.125, pool5a=pool5a))
        top, bottom = support_extent(model, (512, 512), 32, 32, axis=0, layer="fc6")
        assert bottom - top + 1 == size and f"{size}" in get_spec("deeplabv1").description


def test_trained_models_are_listed_by_the_name_predict_takes(capsys, tmp_path, monkeypatch):
    from segstudio.paths import weights_dir

    assert main(["models", "--trained", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    unet = rows["chest_xray_unet_lite"]
    assert unet["where"] == "bundled" and unet["arch"] == "unet"
    assert unet["classes"] == ["background", "lungs", "heart", "clavicles"]
    assert unet["file"] == str(weights_dir() / "chest_xray_unet_lite.pt")
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "Trained models (segstudio predict --model NAME):" in out and "chest_xray_unet_lite" in out


def test_predict_takes_a_trained_model_by_its_name(capsys, tmp_path):
    from PIL import Image

    image = tmp_path / "in" / "a.png"
    image.parent.mkdir()
    Image.fromarray(np.full((40, 48), 120, np.uint8)).save(image)
    code = main(["predict", "--model", "chest_xray_unet_lite", str(image), "--out",
                 str(tmp_path / "out"), "--precision", "fp32", "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "UNTRAINED" not in err
    assert (tmp_path / "out" / "a.png").is_file()
    assert main(["predict", "--model", "no_such_model", str(image), "--out",
                 str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err
    assert "neither an architecture" in err and "chest_xray_deeplabv1_lite" in err
    assert "segstudio models" in err and len(err.strip().splitlines()) == 1
