"""``segstudio prompt`` checks its memory and its prompts before the encoder runs: a machine
without room, or a point off the image, is one line and exit 2 in under a second, not a
traceback after the encoder's 40 s."""

import numpy as np
import pytest
from PIL import Image

from prompt_doubles import DiskNetwork, save_small_sam
from segstudio.cli import main
from segstudio.io import decode_memory

pytest.importorskip("segment_anything")


def _vit_b_on_meta():
    """ViT-B's network with no memory behind it: only its shape is used before the encoder."""
    import torch

    from segstudio.models.prompted import SamNetwork, SamSpec, build_sam

    spec = SamSpec(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11),
                   window_size=14)
    with torch.device("meta"):
        return SamNetwork(build_sam(spec))


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "small.png"
    Image.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(path)
    return path


def _install(monkeypatch, network):
    from segstudio.models import prompted

    monkeypatch.setattr(prompted.PromptedSegmenter, "from_file",
                        classmethod(lambda cls, path, device="cpu": cls(network, device, "n")))


def test_the_vit_b_encoder_estimate_covers_its_global_attention():
    from segstudio.models.prompt_memory import embed_bytes, encoder_bytes

    need = encoder_bytes(_vit_b_on_meta())
    # 12 heads × 4096² float32 scores, several copies: the measured peak is 3.97 GB in all.
    assert 3.0e9 < need < 4.0e9
    assert encoder_bytes(DiskNetwork()) == 0
    assert embed_bytes(DiskNetwork(), 1000, 2000) == 12 * 1000 * 2000


def test_an_embedding_that_cannot_fit_is_refused_before_the_encoder(tmp_path, picture,
                                                                   monkeypatch, capsys):
    network = _vit_b_on_meta()
    encoded = []
    monkeypatch.setattr(type(network), "encode", lambda self, *a: encoded.append(1))
    _install(monkeypatch, network)
    monkeypatch.setattr(decode_memory, "available_memory", lambda: 2_000_000_000)
    out = tmp_path / "mask.png"
    code = main(["prompt", "--weights", str(picture), "--image", str(picture), "--point", "30",
                 "20", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(
        "segstudio prompt: error: not enough memory for the image embedding of 64×48 pixels: "
        "needs about 3."), err
    assert err[0].endswith("GB, 2.0 GB available")
    assert not encoded and not out.exists()


def test_weights_that_cannot_be_loaded_are_refused_before_reading_them(tmp_path, picture,
                                                                      monkeypatch, capsys):
    from segstudio.models import prompted

    weights = save_small_sam(tmp_path / "small_sam.pth")
    read = []
    real = prompted.load_weights_file
    monkeypatch.setattr(prompted, "load_weights_file", lambda p: read.append(p) or real(p))
    size = weights.stat().st_size
    assert size > 100_000                        # room for the picture, not for the weights
    monkeypatch.setattr(decode_memory, "available_memory", lambda: size)
    code = main(["prompt", "--weights", str(weights), "--image", str(picture), "--point", "30",
                 "20", "--out", str(tmp_path / "mask.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("segstudio prompt: error: not enough memory for loading "
                             "small_sam.pth: needs about ")
    assert not read and not (tmp_path / "mask.png").exists()


@pytest.mark.parametrize("prompt, message", [
    (["--point", "64", "20"], "--point 64 20: outside the 64×48 image"),
    (["--point", "10", "10", "--negative", "5", "-1"], "--negative 5 -1: outside the 64×48"),
    (["--box", "0", "0", "100", "10"], "--box 0 0 100 10: not inside the 64×48 image"),
    (["--box", "20", "10", "5", "30"], "--box 20 10 5 30: empty"),
])
def test_prompts_off_the_image_are_refused_before_the_encoder(tmp_path, picture, monkeypatch,
                                                             capsys, prompt, message):
    network = DiskNetwork()
    _install(monkeypatch, network)
    code = main(["prompt", "--weights", str(picture), "--image", str(picture), *prompt,
                 "--out", str(tmp_path / "mask.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert network.seen == []                      # the encoder never ran
    assert not (tmp_path / "mask.png").exists()


def test_a_box_reaching_the_far_edges_is_inside(tmp_path, picture, monkeypatch):
    _install(monkeypatch, DiskNetwork())
    assert main(["prompt", "--weights", str(picture), "--image", str(picture), "--box", "0",
                 "0", "64", "48", "--out", str(tmp_path / "mask.png")]) == 0
