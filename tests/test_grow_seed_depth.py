"""``segstudio grow`` reads seeds at their full depth: a 16-bit value is never taken modulo
256 (300 would become class 44); values that are neither a class nor "no seed" are refused by
name, and a seed file too big for memory says so instead of calling itself damaged."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main
from segstudio.refine.grow import GrowError, seed_values


def _scene(tmp_path, seeds16):
    image = np.full((40, 50), 30, np.uint8)
    image[10:30, 15:35] = 220
    Image.fromarray(image).save(tmp_path / "image.png")
    Image.fromarray(seeds16.astype(np.uint16)).save(tmp_path / "seeds.png")
    assert Image.open(tmp_path / "seeds.png").mode.startswith("I;16")
    return ["grow", "--image", str(tmp_path / "image.png"), "--seeds",
            str(tmp_path / "seeds.png"), "--out", str(tmp_path / "out.png")]


def _seeds(no_seed: int):
    seeds = np.full((40, 50), no_seed, np.int64)
    seeds[18:22, 23:27] = 1
    seeds[1:3, 1:6] = 0
    return seeds


def test_a_16_bit_value_past_the_classes_is_refused_by_name_not_wrapped(tmp_path, capsys):
    argv = _scene(tmp_path, _seeds(300))            # meant as "no seed"; 300 % 256 = 44
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["segstudio grow: error: --seeds seeds.png: seed value 300 is neither a "
                     "class (0–254) nor 'no seed' (255)"]
    assert not (tmp_path / "out.png").exists()


def test_16_bit_seeds_within_the_classes_grow_like_8_bit_ones(tmp_path):
    argv = _scene(tmp_path, _seeds(255))
    assert main(argv) == 0
    grown = np.asarray(Image.open(tmp_path / "out.png"))
    assert set(np.unique(grown)) == {0, 1}
    assert grown[20, 25] == 1 and grown[35, 45] == 0


def test_seed_values_names_every_value_outside_the_range():
    with pytest.raises(GrowError, match=r"seed values 256, 300, 1000 are neither"):
        seed_values(np.array([[0, 256, 300, 1000, 255]], np.int32))
    with pytest.raises(GrowError, match=r"seed value -3 is neither"):
        seed_values(np.array([[0, -3]], np.int32))
    assert seed_values(np.array([[0, 7, 255]], np.int32)).dtype == np.uint8


def test_a_seed_file_that_cannot_be_allocated_is_not_called_damaged(tmp_path, monkeypatch,
                                                                    capsys):
    from segstudio.io import pillow_pixels

    argv = _scene(tmp_path, _seeds(255))

    real = pillow_pixels.copy_in_strips

    def no_room_for_deep_seeds(im, shape, dtype, *rest):
        if dtype is np.int32:                     # the seeds' full-depth array only
            raise MemoryError()
        return real(im, shape, dtype, *rest)

    monkeypatch.setattr(pillow_pixels, "copy_in_strips", no_room_for_deep_seeds)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("segstudio grow: error: --seeds seeds.png: not enough memory (needs "
                          "about ") and "damaged" not in err
    assert not (tmp_path / "out.png").exists()
