"""``segstudio rf`` prints the receptive fields of a registry model's branches."""

import json

import pytest

from segstudio.cli import main

registry = pytest.importorskip("segstudio.models.registry")


def _fields(capsys, *argv):
    assert main(["rf", *argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    return report, {row["name"]: row for row in report["fields"]}


def test_fcn8s_vgg_fields_match_the_hand_computed_values(capsys):
    report, rows = _fields(capsys, "--model", "fcn8s")
    assert report["model"] == "fcn8s" and report["config"] == "lite"
    assert rows["backbone.pool3"]["size"] == [44, 44] and rows["backbone.pool3"]["jump"] == [8, 8]
    assert rows["backbone.pool5"]["size"] == [212, 212]
    # fc6 is a 7x7 convolution on pool5: 212 + 6 * 32.
    assert rows["fc7"]["size"] == [404, 404] and rows["fc7"]["jump"] == [32, 32]
    assert rows["output"]["jump"] == [1, 1]


def test_pyramid_bins_see_more_the_coarser_they_are(capsys):
    _, rows = _fields(capsys, "--model", "pspnet", "--input-size", "256", "256")
    layer4 = rows["backbone.layer4"]
    assert layer4["jump"] == [8, 8]
    # The 1x1 bin pools all 32 units of the stride-8 map: layer4 + 31 * 8 pixels.
    assert rows["psp.bin1"]["size"][0] == layer4["size"][0] + 31 * 8
    sizes = [rows[f"psp.bin{b}"]["size"][0] for b in (1, 2, 3, 6)]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] > layer4["size"][0]
    assert rows["psp.bin1"]["covers_image_size"] and not rows["backbone.layer1"][
        "covers_image_size"]


def test_one_aspp_rate_of_the_paper_configuration(capsys):
    _, rows = _fields(capsys, "--model", "deeplabv3", "--config", "paper", "--layer",
                      "aspp.rate12")
    assert list(rows) == ["aspp.rate12"]
    _, stages = _fields(capsys, "--model", "deeplabv3", "--config", "paper", "--layer",
                        "backbone.layer4")
    # A 3x3 conv at rate 12 on the stride-16 map adds 2 * 12 * 16 pixels.
    assert rows["aspp.rate12"]["size"][0] == stages["backbone.layer4"]["size"][0] + 384


@pytest.mark.parametrize("name", list(registry.REGISTRY))
def test_every_model_reports_a_branch_at_its_output_stride(capsys, name):
    spec = registry.get_spec(name)
    config = "lite" if "lite" in spec.configs else "paper"
    _, rows = _fields(capsys, "--model", name, "--config", config, "--input-size", "128", "128")
    jumps = {row["jump"][0] for row in rows.values() if "jump" in row}
    assert spec.output_stride in jumps
    assert all(row["size"][0] >= 1 for row in rows.values() if "size" in row)
    if not spec.instance:
        assert rows["output"]["jump"] == [1, 1]


def test_table_lists_branches_with_size_and_jump(capsys):
    assert main(["rf", "--model", "unet"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "U-Net (lite), input 512×512, output stride 1"
    enc2 = next(line for line in out.splitlines() if line.startswith("enc2 "))
    assert enc2.split()[1:4] == ["downs.0", "14", "2"]


def test_unknown_model_layer_or_configuration_is_a_clean_error(capsys):
    assert main(["rf", "--model", "nonet"]) == 2
    assert "unknown model 'nonet'" in capsys.readouterr().err
    assert main(["rf", "--model", "unet", "--layer", "psp.bin1"]) == 2
    assert "unet has no branch or module 'psp.bin1'" in capsys.readouterr().err
    assert main(["rf", "--model", "fcn_resnet50", "--config", "lite"]) == 2
    assert "no 'lite' configuration" in capsys.readouterr().err


def test_model_with_only_a_paper_configuration_needs_no_config_flag(capsys):
    report, rows = _fields(capsys, "--model", "deeplabv3_mobilenet_v3_large", "--input-size",
                           "128", "128")
    assert report["config"] == "paper"
    assert rows["aspp.rate12"]["jump"] == [16, 16]
    # Stages come first, in order, before the heads that read them.
    assert list(rows)[:2] == ["backbone.aux", "backbone.out"] and list(rows)[-1] == "output"
