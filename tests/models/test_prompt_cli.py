"""``segstudio prompt``: the written mask, the printed scores, and clean refusals."""

import numpy as np
import pytest
from PIL import Image

from prompt_doubles import DiskNetwork, save_small_sam
from segstudio.cli import main

pytest.importorskip("segment_anything")


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "picture.png"
    rgb = np.random.default_rng(1).integers(0, 256, (90, 130, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def _double(monkeypatch, network):
    from segstudio.models import prompted

    monkeypatch.setattr(prompted.PromptedSegmenter, "from_file",
                        classmethod(lambda cls, path, device="cpu": cls(network, device, "double")))


def test_points_give_a_full_size_palette_mask_where_clicked(tmp_path, picture, monkeypatch,
                                                            capsys):
    _double(monkeypatch, DiskNetwork(radius=80.0))
    out = tmp_path / "masks" / "object.png"
    code = main(["prompt", "--weights", str(picture), "--image", str(picture), "--point", "40",
                 "30", "--point", "50", "30", "--negative", "45", "30", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "candidate 1: predicted IoU 0.500  (written)" in printed
    im = Image.open(out)
    assert im.mode == "P" and im.size == (130, 90)
    mask = np.asarray(im)
    assert set(np.unique(mask)) == {0, 1}
    assert mask[30, 36] == 1 and mask[30, 54] == 1 and mask[30, 45] == 0


def test_one_point_prints_three_candidates_and_mask_picks_one(tmp_path, picture, monkeypatch,
                                                              capsys):
    _double(monkeypatch, DiskNetwork(radius=20.0))
    sizes = {}
    for n in (1, 3):
        out = tmp_path / f"m{n}.png"
        assert main(["prompt", "--weights", "w.pth", "--image", str(picture), "--point", "60",
                     "40", "--mask", str(n), "--out", str(out)]) == 0
        sizes[n] = int(np.asarray(Image.open(out)).sum())
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("candidate")]
    assert lines[:3] == ["candidate 1: predicted IoU 0.900  (written)",
                         "candidate 2: predicted IoU 0.700", "candidate 3: predicted IoU 0.500"]
    assert lines[5] == "candidate 3: predicted IoU 0.500  (written)"
    assert sizes[1] > sizes[3] > 0                # the best is the double's 2× disk, 3rd its 1×


def test_a_box_with_a_small_sam_file(tmp_path, picture, capsys):
    weights = save_small_sam(tmp_path / "medsam_like.pth", wrap=True)
    out = tmp_path / "box.png"
    assert main(["prompt", "--weights", str(weights), "--image", str(picture), "--box", "10",
                 "10", "80", "60", "--out", str(out), "--cache"]) == 0
    assert Image.open(out).size == (130, 90)
    assert capsys.readouterr().out.count("candidate") == 1


@pytest.mark.parametrize("extra, message", [
    (["--point", "500", "5"], "outside the 130×90 image"),
    (["--box", "50", "10", "20", "30"], "empty"),
    (["--box", "1", "1", "9", "9", "--negative", "3", "3"], "--negative needs"),
    (["--point", "5", "5", "--mask", "0"], "numbered from 1"),
    (["--point", "5", "5", "--mask", "4"], "gives 3 candidates"),
])
def test_bad_prompts_exit_2_with_one_line(tmp_path, picture, extra, message, capsys):
    weights = save_small_sam(tmp_path / "w.pth")
    code = main(["prompt", "--weights", str(weights), "--image", str(picture), "--out",
                 str(tmp_path / "m.png")] + extra)
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "m.png").exists()


def test_bad_files_exit_2_naming_them(tmp_path, picture, capsys):
    broken = tmp_path / "sam_vit_h_4b8939.pth"
    broken.write_bytes(b"PK\x03\x04 truncated")
    for weights, image, message in [
            (broken, picture, "sam_vit_h_4b8939.pth: not a readable PyTorch weights file"),
            (tmp_path / "none.pth", picture, "no such weights file"),
            (broken, tmp_path / "missing.png", "missing.png")]:
        code = main(["prompt", "--weights", str(weights), "--image", str(image), "--point", "1",
                     "1", "--out", str(tmp_path / "m.png")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and message in err and len(err.splitlines()) == 1, err


def test_points_and_a_box_together_are_a_usage_error(tmp_path, picture):
    assert main(["prompt", "--weights", "w", "--image", str(picture), "--point", "1", "1",
                 "--box", "0", "0", "5", "5", "--out", str(tmp_path / "m.png")]) == 2


def test_the_encoder_precision_is_chosen_by_hand_or_said(tmp_path, picture, capsys, monkeypatch):
    from segstudio.models import device

    weights = save_small_sam(tmp_path / "small.pth")
    args = ["prompt", "--weights", str(weights), "--image", str(picture), "--box", "10", "10",
            "80", "60", "--device", "cpu"]
    assert main(args + ["--out", str(tmp_path / "a.png"), "--precision", "bf16"]) == 0
    out = capsys.readouterr().out
    assert "image encoder precision bf16: chosen by hand" in out and "encoder bf16)" in out
    monkeypatch.setattr(device, "cpu_flags", lambda: frozenset({"avx512f"}))
    assert main(args + ["--out", str(tmp_path / "b.png")]) == 0
    out = capsys.readouterr().out
    assert "image encoder precision fp32: this CPU has no native bf16 units" in out
    assert "encoder fp32)" in out
