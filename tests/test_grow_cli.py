"""``segstudio grow``: seeds PNG + image → grown label PNG; bad input is one line, exit 2."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main


def _scene(tmp_path, deep: bool = False):
    """A bright square on a dark field, and seeds: a dab inside (class 1), one outside (0)."""
    image = np.full((60, 80), 30, np.uint16 if deep else np.uint8)
    image[15:45, 20:60] = 40000 if deep else 220
    Image.fromarray(image).save(tmp_path / "image.png")
    seeds = np.full((60, 80), 255, np.uint8)
    seeds[28:32, 38:42] = 1
    seeds[2:4, 2:10] = 0
    im = Image.fromarray(seeds, mode="L").convert("P")
    im.putpalette([0, 0, 0, 255, 0, 0] + [9, 9, 9] * 254)
    im.save(tmp_path / "seeds.png")
    truth = np.zeros((60, 80), np.uint8)
    truth[15:45, 20:60] = 1
    return truth


@pytest.mark.parametrize("deep", [False, True])
def test_grow_writes_the_grown_labels_with_the_seeds_palette(tmp_path, capsys, deep):
    truth = _scene(tmp_path, deep)
    out = tmp_path / "out" / "labels.png"
    args = ["grow", "--image", str(tmp_path / "image.png"), "--seeds",
            str(tmp_path / "seeds.png"), "--out", str(out)]
    assert main(args) == 0
    written = Image.open(out)
    assert written.mode == "P" and written.getpalette()[3:6] == [255, 0, 0]
    labels = np.array(written)
    assert (labels == truth).mean() > 0.99
    counts = np.bincount(labels.reshape(-1), minlength=2)
    assert f"class 0: {counts[0]} px, class 1: {counts[1]} px" in capsys.readouterr().out
    # Heavy smoothing blurs the square into its surroundings: the option reaches the growth.
    assert main(args + ["--smoothing", "12"]) == 0
    assert (np.array(Image.open(out)) != labels).any()
    assert [p.name for p in out.parent.iterdir()] == ["labels.png"]     # no temporary left


def test_grow_size_mismatch_and_missing_seeds_are_one_line_exit_2(tmp_path):
    _scene(tmp_path)
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(tmp_path / "small.png")
    Image.fromarray(np.full((60, 80), 255, np.uint8)).save(tmp_path / "empty.png")
    for seeds, message in (("small.png", "10×10 but the image image.png is 80×60"),
                           ("empty.png", "no seeds"), ("missing.png", "does not exist")):
        out = subprocess.run([sys.executable, "-m", "segstudio", "grow", "--image",
                              str(tmp_path / "image.png"), "--seeds", str(tmp_path / seeds),
                              "--out", str(tmp_path / "labels.png")],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 2, out.stderr
        assert message in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "labels.png").exists()


def test_grow_refuses_a_folder_as_out_and_a_bad_window(tmp_path, capsys):
    _scene(tmp_path)
    args = ["grow", "--image", str(tmp_path / "image.png"), "--seeds", str(tmp_path / "seeds.png")]
    assert main(args + ["--out", str(tmp_path)]) == 2
    assert main(args + ["--out", str(tmp_path / "l.png"), "--window", "100", "0"]) == 2
    err = capsys.readouterr().err
    assert "is a folder" in err and "width must be positive" in err


def test_grow_on_a_real_dicom_through_its_window(tmp_path, capsys):
    """pydicom's CT_small through the file's own window: seeds in the body and in the air of
    the two top corners; the grown body matches the tissue density (> −400 HU)."""
    import cv2
    from pydicom.data import get_testdata_file

    from segstudio.io.images import read_image

    path = get_testdata_file("CT_small.dcm")
    tissue = read_image(path).pixels > -400
    seeds = np.full(tissue.shape, 255, np.uint8)
    cv2.circle(seeds, (64, 80), 6, 1, -1)
    assert tissue[74:87, 58:71].all()
    seeds[:3, :12] = seeds[:3, -12:] = 0
    Image.fromarray(seeds).save(tmp_path / "seeds.png")
    out = tmp_path / "body.png"
    assert main(["grow", "--image", path, "--seeds", str(tmp_path / "seeds.png"),
                 "--out", str(out)]) == 0
    body = np.array(Image.open(out)) == 1
    count, ids, stats, _ = cv2.connectedComponentsWithStats(tissue.astype(np.uint8))
    largest = ids == 1 + np.argmax(stats[1:, cv2.CC_STAT_AREA])
    assert (body == largest).mean() >= 0.98
    assert "128×128" in capsys.readouterr().out
