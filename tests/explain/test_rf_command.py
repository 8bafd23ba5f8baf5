"""``segstudio rf`` prints the receptive fields of a registry model's branches."""

import json

import pytest

from segstudio.cli import main
from tests.explain.support import positive_copy, support_extent

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
    assert enc2.split()[1:5] == ["downs.0", "14", "14", "2"]     # size, per unit, jump
    output = next(line for line in out.splitlines() if line.startswith("output "))
    assert "188–204" in output.split()


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


def test_fields_through_upsampling_give_their_smallest_and_largest_size(capsys):
    _, rows = _fields(capsys, "--model", "fcn8s", "--input-size", "256", "256")
    # The recursion's one number (460) lies between what the output pixels really see.
    assert rows["output"]["size"] == [460, 460]
    assert rows["output"]["size_min"] == [436, 436] and rows["output"]["size_max"] == [468, 468]
    assert rows["fc7"]["size_min"] == rows["fc7"]["size_max"] == [404, 404]
    _, rows = _fields(capsys, "--model", "unet", "--input-size", "256", "256")
    assert rows["output"]["size_min"] == [188, 188] and rows["output"]["size_max"] == [204, 204]


def test_at_gives_the_exact_box_and_the_taps_that_read_the_map(capsys):
    report, rows = _fields(capsys, "--model", "deeplabv3", "--input-size", "128", "128",
                           "--at", "64", "64")
    assert report["at"] == [64, 64]
    out = rows["output"]
    x0, y0, x1, y1 = out["box"]
    assert out["unit"] == [64, 64] and x1 - x0 + 1 == out["size"][1] and y0 < 0
    # On the 8x8 stride-16 map, rates 12 and 18 reach past the map from every unit: only the
    # centre tap reads it, so the branches are 1x1 convolutions there.
    assert rows["aspp.rate12"]["valid_taps"] == rows["aspp.rate18"]["valid_taps"] == 1
    assert "valid_taps" not in rows["backbone.layer4"] and "valid_taps" not in out
    _, rows = _fields(capsys, "--model", "deeplabv3", "--input-size", "512", "512",
                      "--at", "256", "256")
    # The 32x32 map: rate 12 from unit 16 stays on it, rate 18 does not.
    assert rows["aspp.rate12"]["valid_taps"] == 9 and rows["aspp.rate18"]["valid_taps"] == 1
    _, rows = _fields(capsys, "--model", "deeplabv3", "--input-size", "512", "512",
                      "--at", "0", "0")
    assert rows["aspp.rate6"]["valid_taps"] == 4


def test_tap_curve_reproduces_deeplab_v3_figure_4(capsys):
    report, _ = _fields(capsys, "--model", "deeplabv3", "--layer", "output", "--tap-curve")
    curve = report["tap_curve"]
    assert curve["map_size"] == 65 and curve["kernel"] == 3
    by_rate = dict(zip(curve["rates"], zip(curve["valid_fraction"], curve["only_centre"],
                                           curve["all_valid"])))
    assert by_rate[1][2] > 0.9 and by_rate[1][1] == 0
    fractions = curve["valid_fraction"]
    assert all(a >= b for a, b in zip(fractions, fractions[1:]))
    for rate in (65, 66, 70):
        assert by_rate[rate] == (round(1 / 9, 4), 1.0, 0.0)


def test_tap_curve_needs_an_atrous_branch(capsys):
    assert main(["rf", "--model", "fcn8s", "--tap-curve"]) == 2
    assert "no atrous branch" in capsys.readouterr().err


def test_at_outside_the_input_is_a_clean_error(capsys):
    assert main(["rf", "--model", "fcn8s", "--input-size", "64", "64", "--at", "64", "3"]) == 2
    assert "outside the 64×64 input" in capsys.readouterr().err


def test_weights_trace_the_network_the_checkpoint_builds(capsys):
    # The bundled chest LargeFOV was trained before pool5a existed: fc6 sees 419 pixels, not the
    # 435 of a fresh build. The real network agrees: the input gradient of one fc6 unit (ones,
    # positive weights) spans 419 pixels.
    from segstudio.models.checkpoint import load_checkpoint
    from segstudio.paths import weights_dir

    path = weights_dir() / "chest_xray_deeplabv1_lite.pt"
    report, rows = _fields(capsys, "--weights", str(path), "--input-size", "512", "512",
                           "--at", "256", "256")
    assert report["model"] == "deeplabv1" and report["weights"] == str(path)
    assert rows["fc6"]["size"] == [419, 419]
    _, fresh = _fields(capsys, "--model", "deeplabv1", "--input-size", "512", "512")
    assert fresh["fc6"]["size"] == [435, 435]

    x0, y0, x1, y1 = rows["fc6"]["box"]
    fx, fy = rows["fc6"]["unit"]
    exact = positive_copy(load_checkpoint(path)[0])
    assert support_extent(exact, (512, 512), fy, fx, axis=1, layer="fc6") == (x0, x1)
    assert support_extent(exact, (512, 512), fy, fx, axis=0, layer="fc6") == (y0, y1)
    assert x1 - x0 + 1 == 419


def test_weights_that_contradict_model_or_config_are_clean_errors(capsys, tmp_path):
    from segstudio.paths import weights_dir

    path = str(weights_dir() / "chest_xray_deeplabv1_lite.pt")
    assert main(["rf", "--weights", path, "--model", "fcn8s"]) == 2
    assert "holds a 'deeplabv1' network, not 'fcn8s'" in capsys.readouterr().err
    assert main(["rf", "--weights", path, "--config", "paper"]) == 2
    assert "holds the 'lite' configuration" in capsys.readouterr().err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert main(["rf", "--weights", str(junk)]) == 2
    assert "junk.pt: not a segstudio checkpoint" in capsys.readouterr().err
    assert main(["rf"]) == 2
    assert "give --model NAME or --weights FILE" in capsys.readouterr().err


def test_tap_curve_table_prints_a_column_per_valid_count(capsys):
    assert main(["rf", "--model", "deeplabv3", "--layer", "output", "--tap-curve", "65"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("rate"))
    assert header.split() == ["rate", "valid", "1", "valid", "2", "valid", "4", "valid", "6",
                              "valid", "9", "valid"]
    row = next(line.split() for line in lines if line.split()[:1] == ["33"])
    assert row[2:] == ["0.000", "0.030", "0.969", "0.000", "0.000"]
