"""``segstudio predict --ablate`` zeroes a branch as the Branches view does."""

import numpy as np
import pytest
import torch
from PIL import Image

from segstudio.cli import main
from segstudio.paths import weights_dir


@pytest.fixture
def scene(tmp_path):
    from segstudio.train.synth import make_sample

    path = tmp_path / "in" / "scene.png"
    path.parent.mkdir()
    Image.fromarray(make_sample("context", 3, size=96, seed=1).image).save(path)
    return path


def _labels(tmp_path, scene, model, *extra):
    out = tmp_path / ("out" + "_".join(extra).replace(".", "_"))
    argv = ["predict", str(scene), "--out", str(out), "--model", model, "--weights",
            str(weights_dir() / f"context_{model}_lite.pt"), "--device", "cpu",
            "--precision", "fp32", "--threads", "1"]
    for branch in extra:
        argv += ["--ablate", branch]
    assert main(argv) == 0
    return np.array(Image.open(out / "scene.png"))


def test_ablated_prediction_matches_the_branch_view(tmp_path, scene, capsys):
    from segstudio.explain.probes import ablate_branches, predict_labels
    from segstudio.models.checkpoint import load_checkpoint
    from segstudio.models.registry import REGISTRY

    full = _labels(tmp_path, scene, "deeplabv3")
    ablated = _labels(tmp_path, scene, "deeplabv3", "aspp.rate6", "aspp.image_pool")
    assert "zeroed branches: aspp.rate6, aspp.image_pool" in capsys.readouterr().out
    model, meta = load_checkpoint(weights_dir() / "context_deeplabv3_lite.pt")
    rgb = np.array(Image.open(scene).convert("RGB"))
    x = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255
    x = (x - torch.tensor(meta.mean).view(3, 1, 1)) / torch.tensor(meta.std).view(3, 1, 1)
    with ablate_branches(model, REGISTRY["deeplabv3"].branches, ["aspp.rate6",
                                                                  "aspp.image_pool"]):
        expected = predict_labels(model, x)
    assert (ablated == expected).mean() > 0.999
    assert (full == predict_labels(model, x)).mean() > 0.999
    # Zeroing the projection leaves only the classifier's bias: one class everywhere.
    flat = _labels(tmp_path, scene, "deeplabv3", "aspp.project")
    assert len(np.unique(flat)) == 1 and len(np.unique(full)) > 1


def test_unknown_branch_lists_the_valid_ones(tmp_path, scene, capsys):
    assert main(["predict", str(scene), "--out", str(tmp_path / "o"), "--model", "pspnet",
                 "--weights", str(weights_dir() / "context_pspnet_lite.pt"),
                 "--ablate", "aspp.rate6"]) == 2
    err = capsys.readouterr().err
    assert "--ablate: no branch 'aspp.rate6'" in err and "psp.bin1" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def _run(tmp_path, inputs, model, *extra):
    out = tmp_path / "out"
    argv = ["predict", *map(str, inputs), "--out", str(out), "--model", model, "--weights",
            str(weights_dir() / f"context_{model}_lite.pt"), "--device", "cpu",
            "--precision", "fp32", "--threads", "1", *extra]
    return main(argv), out


def _normalised(model_name):
    from segstudio.models.checkpoint import load_checkpoint

    model, meta = load_checkpoint(weights_dir() / f"context_{model_name}_lite.pt")
    model = model.float().eval()

    def x(path):
        rgb = np.array(Image.open(path).convert("RGB"))
        t = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255
        return ((t - torch.tensor(meta.mean).view(3, 1, 1))
                / torch.tensor(meta.std).view(3, 1, 1))[None]
    return model, x


def test_swap_from_the_twin_matches_injecting_its_output_by_hand(tmp_path, capsys):
    from segstudio.explain.counterfactual import scene_pair

    scene, twin = scene_pair(2, size=128)
    (tmp_path / "in").mkdir()
    (tmp_path / "twins").mkdir()
    Image.fromarray(scene.image).save(tmp_path / "in" / "s.png")
    Image.fromarray(twin.image).save(tmp_path / "twins" / "s.png")
    rc, out = _run(tmp_path, [tmp_path / "in" / "s.png"], "pspnet", "--ablate", "psp.bin1",
                   "--ablate-with", "swap", "--swap-from", str(tmp_path / "twins"))
    assert rc == 0
    assert "replaced branches: psp.bin1 by their output on" in capsys.readouterr().out
    model, x = _normalised("pspnet")
    module = model.get_submodule("head.ppm.stages.0")
    kept = {}
    handle = module.register_forward_hook(lambda _m, _i, o: kept.setdefault("t", o))
    with torch.no_grad():
        model(x(tmp_path / "twins" / "s.png"))
    handle.remove()
    handle = module.register_forward_hook(lambda _m, _i, o: kept["t"])
    with torch.no_grad():
        expected = model(x(tmp_path / "in" / "s.png"))["out"][0].argmax(0).numpy()
    handle.remove()
    got = np.array(Image.open(out / "s.png"))
    assert (got == expected).mean() > 0.999
    with torch.no_grad():
        full = model(x(tmp_path / "in" / "s.png"))["out"][0].argmax(0).numpy()
    assert (got != full).sum() > 100             # the swap changed the prediction


def test_mean_over_a_reference_folder_matches_the_mean_computed_by_hand(tmp_path, scene,
                                                                        capsys):
    from segstudio.train.synth import make_sample

    refs = tmp_path / "refs"
    refs.mkdir()
    for i in range(3):
        Image.fromarray(make_sample("context", 50 + i, size=96, seed=1).image).save(
            refs / f"r{i}.png")
    rc, out = _run(tmp_path, [scene], "deeplabv3", "--ablate", "aspp.rate6", "--ablate-with",
                   "mean", "--reference", str(refs))
    assert rc == 0
    assert "by their mean over 3 image(s) of" in capsys.readouterr().out
    model, x = _normalised("deeplabv3")
    module = model.get_submodule("head.aspp.convs.1")
    seen = []
    handle = module.register_forward_hook(lambda _m, _i, o: seen.append(o))
    with torch.no_grad():
        for p in sorted(refs.iterdir()):
            model(x(p))
    handle.remove()
    mean = sum(t[0].mean(dim=(1, 2)) for t in seen) / len(seen)
    handle = module.register_forward_hook(
        lambda _m, _i, o: mean.view(1, -1, 1, 1).expand(o.shape).clone())
    with torch.no_grad():
        expected = model(x(scene))["out"][0].argmax(0).numpy()
    handle.remove()
    assert (np.array(Image.open(out / "scene.png")) == expected).mean() > 0.999


@pytest.mark.parametrize("extra, message", [
    (["--ablate", "psp.bin1", "--ablate-with", "swap"],
     "--ablate-with swap needs --swap-from IMAGE|DIR"),
    (["--ablate-with", "mean"], "--ablate-with mean: name the branch to replace with --ablate"),
    (["--ablate", "psp.bin1", "--reference", "."], "--reference is for --ablate-with mean"),
    (["--ablate", "psp.bin1", "--swap-from", "."], "--swap-from is for --ablate-with swap"),
    (["--ablate", "psp.bin1", "--ablate-with", "swap", "--swap-from", "nowhere.png"],
     "--swap-from nowhere.png: no such file or folder"),
])
def test_bad_replacement_options_are_one_line(tmp_path, scene, capsys, extra, message):
    rc, out = _run(tmp_path, [scene], "pspnet", *extra)
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_mean_with_an_empty_reference_folder_is_one_line(tmp_path, scene, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    rc, out = _run(tmp_path, [scene], "pspnet", "--ablate", "psp.bin1", "--ablate-with", "mean",
                   "--reference", str(empty))
    err = capsys.readouterr().err
    assert rc == 2 and f"--reference {empty}: no images in it" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_swap_with_an_image_of_another_size_is_one_line(tmp_path, scene, capsys):
    from segstudio.train.synth import make_sample

    other = tmp_path / "other.png"
    Image.fromarray(make_sample("context", 1, size=64, seed=1).image).save(other)
    rc, _ = _run(tmp_path, [scene], "pspnet", "--ablate", "psp.bin1", "--ablate-with", "swap",
                 "--swap-from", str(other))
    err = capsys.readouterr().err
    assert rc == 2 and "a swap needs the same size" in err and len(err.strip().splitlines()) == 1


def test_the_default_mean_reference_is_refused_for_a_model_of_other_classes(tmp_path, scene,
                                                                            capsys):
    rc, _ = main(["predict", str(scene), "--out", str(tmp_path / "o"), "--model", "pspnet",
                  "--weights", str(weights_dir() / "chest_xray_pspnet_lite.pt"), "--device",
                  "cpu", "--ablate", "psp.bin1", "--ablate-with", "mean"]), None
    err = capsys.readouterr().err
    assert rc == 2 and "give --reference DIR" in err and len(err.strip().splitlines()) == 1


def test_the_default_mean_reference_is_generated_held_out_scenes(tmp_path, scene, capsys):
    from segstudio.explain.counterfactual import REFERENCE, reference_scenes
    from segstudio.train.synth import make_sample

    rc, out = _run(tmp_path, [scene], "pspnet", "--ablate", "psp.bin1", "--ablate-with", "mean")
    assert rc == 0
    said = capsys.readouterr().out
    assert "mean over 16 held-out context scenes generated now (seed 1, from 100, 256 px)" in said
    first = reference_scenes(count=1)[0]
    assert (first == make_sample("context", REFERENCE["start"], size=256, seed=1).image).all()
    assert (out / "scene.png").is_file()


def test_a_swap_folder_without_a_partner_for_every_input_writes_nothing(tmp_path, capsys):
    from segstudio.train.synth import make_sample

    (tmp_path / "in").mkdir()
    (tmp_path / "twins").mkdir()
    for name in ("a", "b"):
        Image.fromarray(make_sample("context", 1, size=64).image).save(
            tmp_path / "in" / f"{name}.png")
    Image.fromarray(make_sample("context", 2, size=64).image).save(tmp_path / "twins" / "a.png")
    rc, out = _run(tmp_path, [tmp_path / "in"], "pspnet", "--ablate", "psp.bin1",
                   "--ablate-with", "swap", "--swap-from", str(tmp_path / "twins"))
    err = capsys.readouterr().err
    assert rc == 2 and "no b.png in it to swap with" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
