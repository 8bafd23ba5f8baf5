"""Prompted segmentation: geometry of prompts and masks, weights files, the embedding cache."""

import numpy as np
import pytest
import torch

from prompt_doubles import SCORES, DiskNetwork, save_small_sam, small_sam_spec
from segstudio.models.prompt_cache import EmbeddingCache, image_key, weights_key
from segstudio.models.prompted import (EmbeddingCancelled, PromptedError, PromptedSegmenter,
                                       load_weights_file, sam_from_state_dict, unwrap_state_dict)

pytest.importorskip("segment_anything")


def _image(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _centroid(mask):
    ys, xs = np.nonzero(mask)
    return xs.mean() + 0.5, ys.mean() + 0.5


@pytest.mark.parametrize("size", [(300, 600), (700, 350), (1024, 1024), (97, 1500)])
def test_a_click_lands_on_its_pixel_through_resize_and_padding(size):
    height, width = size
    net = DiskNetwork(radius=24.0)
    seg = PromptedSegmenter(net)
    emb = seg.embed(_image(height, width))
    # The network saw the image resized to a longest side of 1024, not padded (padding is its own).
    assert tuple(net.seen[0].shape[2:]) == emb.input_size and max(emb.input_size) == 1024
    x, y = int(width * 0.7), int(height * 0.4)
    pred = seg.predict(emb, [(x, y)], [1], multimask=False)
    mask = pred.mask(0)
    assert mask.shape == (height, width)
    assert mask[y, x]
    cx, cy = _centroid(mask)
    assert abs(cx - (x + 0.5)) < 1.0 and abs(cy - (y + 0.5)) < 1.0
    # A disk of 24 input pixels is 24 / scale image pixels across in both directions.
    r = 24.0 * max(height, width) / 1024
    ys, xs = np.nonzero(mask)
    if r > 4 and x + r < width and y + r < height and x > r and y > r:
        assert abs((xs.max() - xs.min() + 1) / 2 - r) < 1.5
        assert abs((ys.max() - ys.min() + 1) / 2 - r) < 1.5


def test_a_background_point_and_a_box_land_where_given():
    seg = PromptedSegmenter(DiskNetwork(radius=40.0))
    emb = seg.embed(_image(300, 600))
    pred = seg.predict(emb, [(300, 150), (310, 150)], [1, 0])
    mask = pred.mask(0)
    assert mask[150, 300 - 14] and not mask[150, 310]        # the background point is carved out
    box = seg.predict(emb, box=(100, 50, 199, 120)).mask(0)
    ys, xs = np.nonzero(box)
    assert abs(xs.min() - 100) <= 1 and abs(xs.max() - 199) <= 1
    assert abs(ys.min() - 50) <= 1 and abs(ys.max() - 120) <= 1


def test_one_point_is_ambiguous_and_gives_three_candidates_best_first():
    seg = PromptedSegmenter(DiskNetwork())
    emb = seg.embed(_image(200, 200))
    pred = seg.predict(emb, [(100, 100)], [1])
    assert len(pred) == 3
    assert list(pred.scores) == sorted(SCORES, reverse=True)
    # The double's best (0.9) is its second, twice-as-wide disk.
    areas = [pred.mask(i).sum() for i in range(3)]
    assert areas[0] > areas[2] and areas[1] > areas[0]
    assert len(seg.predict(emb, [(100, 100), (10, 10)], [1, 0])) == 1


def test_bad_prompts_are_refused_with_a_reason():
    seg = PromptedSegmenter(DiskNetwork())
    emb = seg.embed(_image(100, 120))
    with pytest.raises(PromptedError, match="outside the 120×100 image"):
        seg.predict(emb, [(120, 5)], [1])
    with pytest.raises(PromptedError, match="empty"):
        seg.predict(emb, box=(10, 10, 5, 20))
    with pytest.raises(PromptedError, match="at least one point"):
        seg.predict(emb)


def test_embedding_reports_progress_per_encoder_block_and_cancels_between_blocks(tmp_path):
    seg = PromptedSegmenter.from_file(save_small_sam(tmp_path / "small.pth"))
    seen = []
    emb = seg.embed(_image(90, 130), progress=lambda i, n: seen.append((i, n)))
    assert seen == [(0, 3), (1, 3), (2, 3), (1, 1)]
    assert emb.features.shape == (1, 32, 8, 8)
    asked = []

    def cancelled():
        asked.append(1)
        return len(asked) > 2

    with pytest.raises(EmbeddingCancelled):
        seg.embed(_image(90, 130), cancelled=cancelled)
    assert len(asked) == 3                      # stopped inside the encoder, not after it


def test_a_small_sam_of_the_package_runs_end_to_end(tmp_path):
    seg = PromptedSegmenter.from_file(save_small_sam(tmp_path / "small.pth", wrap=True))
    emb = seg.embed(_image(90, 130))
    pred = seg.predict(emb, [(60, 40)], [1])
    assert len(pred) == 3 and pred.mask(1).shape == (90, 130) and pred.mask(1).dtype == bool
    again = seg.predict(emb, [(60, 40), (5, 5)], [1, 0], mask_input=pred.low_res[0])
    assert len(again) == 1 and np.isfinite(again.scores).all()


def test_official_vit_b_key_names_and_shapes_load():
    from segment_anything import build_sam_vit_b

    with torch.device("meta"):
        official = build_sam_vit_b().state_dict()
    sam, spec = sam_from_state_dict(official, "sam_vit_b.pth", meta=True)
    assert spec.name == "ViT-B" and spec.global_attn_indexes == (2, 5, 8, 11)
    assert spec.num_heads == 12 and spec.window_size == 14 and spec.img_size == 1024
    assert set(sam.state_dict()) == set(official)
    # MedSAM's training checkpoints wrap the same dict under "model".
    assert unwrap_state_dict({"model": official, "epoch": 1}, "medsam.pth") is official


def test_wrong_and_damaged_files_get_a_message_naming_the_file(tmp_path):
    good = save_small_sam(tmp_path / "small.pth")
    broken = tmp_path / "broken.pth"
    broken.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(PromptedError, match="broken.pth: not a readable PyTorch weights file"):
        load_weights_file(broken)
    text = tmp_path / "notes.pth"
    text.write_text("hello")
    with pytest.raises(PromptedError, match="notes.pth"):
        load_weights_file(text)
    other = tmp_path / "other.pth"
    torch.save({"backbone.conv1.weight": torch.zeros(3)}, other)
    with pytest.raises(PromptedError, match="other.pth: not a Segment Anything or MedSAM"):
        load_weights_file(other)
    state = torch.load(good, weights_only=True)
    state["mask_decoder.iou_token.weight"] = torch.zeros(1, 7)
    with pytest.raises(PromptedError, match="do not fit"):
        sam_from_state_dict(state, "odd.pth")
    with pytest.raises(PromptedError, match="no such weights file"):
        load_weights_file(tmp_path / "missing.pth")


def test_cache_serves_memory_then_disk_and_keys_on_pixels_and_weights(tmp_path):
    weights = save_small_sam(tmp_path / "w.pth")
    seg = PromptedSegmenter(DiskNetwork(img_size=128))
    rgb = _image(60, 80)
    cache = EmbeddingCache(tmp_path / "cache", memory_items=2)
    wkey = weights_key(weights)
    first = cache.get_or_compute(wkey, rgb, lambda: seg.embed(rgb), seg.check_embedding)
    assert cache.get_or_compute(wkey, rgb, lambda: pytest.fail("recomputed"),
                                seg.check_embedding) is first
    assert cache.hits == {"memory": 1, "disk": 0, "computed": 1}
    fresh = EmbeddingCache(tmp_path / "cache")
    again = fresh.get_or_compute(wkey, rgb.copy(), lambda: pytest.fail("recomputed"),
                                 seg.check_embedding)
    assert fresh.hits["disk"] == 1
    assert again.original_size == (60, 80) and torch.equal(again.features, first.features)
    # Other pixels (another display window) and other weights are other embeddings.
    assert image_key(rgb) != image_key(np.clip(rgb.astype(int) + 1, 0, 255).astype(np.uint8))
    weights.write_bytes(weights.read_bytes() + b"\0")
    assert weights_key(weights) != wkey
    # A damaged cache file is dropped and the embedding computed again.
    (cached,) = (tmp_path / "cache").glob("*/*.pt")
    cached.write_bytes(b"garbage")
    calls = []
    EmbeddingCache(tmp_path / "cache").get_or_compute(
        wkey, rgb, lambda: calls.append(1) or seg.embed(rgb), seg.check_embedding)
    assert calls == [1]


def test_cache_prunes_the_oldest_files_beyond_its_size(tmp_path):
    seg = PromptedSegmenter(DiskNetwork(img_size=128))
    cache = EmbeddingCache(tmp_path / "cache", disk_bytes=3000)
    for seed in range(4):
        rgb = _image(30, 30, seed)
        cache.get_or_compute("w", rgb, lambda rgb=rgb: seg.embed(rgb), seg.check_embedding)
    files = list((tmp_path / "cache").glob("*/*.pt"))
    assert 1 <= len(files) < 4
    assert sum(f.stat().st_size for f in files) <= 3000


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_a_weights_file_whose_pickle_would_run_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "sam_vit_b_01ec64.pth"
    torch.save({"model": _RunsCode(str(marker))}, evil)
    with pytest.raises(PromptedError, match="sam_vit_b_01ec64.pth"):
        load_weights_file(evil)
    assert not marker.exists()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_weights_holding_nan_or_infinity_are_refused_at_load_naming_the_weight(tmp_path, bad):
    path = save_small_sam(tmp_path / "medsam_diverged.pth", wrap=True)
    data = torch.load(path, weights_only=True)
    data["model"]["mask_decoder.iou_token.weight"][0, 3] = bad
    torch.save(data, path)
    with pytest.raises(PromptedError, match=r"^medsam_diverged.pth: weight "
                       r"'mask_decoder.iou_token.weight' holds 1 NaN or infinite value\(s\)"):
        PromptedSegmenter.from_file(path)


def test_the_prompt_command_refuses_nan_weights_in_one_line(tmp_path, capsys):
    from PIL import Image

    from segstudio.cli import main

    path = save_small_sam(tmp_path / "sam_nan.pth")
    state = torch.load(path, weights_only=True)
    state["image_encoder.patch_embed.proj.weight"].fill_(float("nan"))
    torch.save(state, path)
    picture = tmp_path / "picture.png"
    Image.fromarray(_image(48, 64)).save(picture)
    out = tmp_path / "mask.png"
    code = main(["prompt", "--weights", str(path), "--image", str(picture), "--point", "10",
                 "10", "--out", str(out), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("segstudio prompt: error: sam_nan.pth: weight "
                          "'image_encoder.patch_embed.proj.weight' holds")
    assert not out.exists()


def test_an_encoder_giving_nan_features_is_an_error_not_an_empty_mask(tmp_path):
    net = DiskNetwork(img_size=128)
    net.encode = lambda image, on_block: torch.full(net.embedding_shape, float("nan"))
    seg = PromptedSegmenter(net, name="double")
    with pytest.raises(PromptedError, match="^double: the image embedding holds NaN"):
        seg.embed(_image(40, 50))
    # Nothing is cached: the next try computes again.
    cache = EmbeddingCache(tmp_path / "cache")
    with pytest.raises(PromptedError):
        cache.get_or_compute("w", _image(40, 50), lambda: seg.embed(_image(40, 50)),
                             seg.check_embedding)
    assert list((tmp_path / "cache").glob("*/*.pt")) == []
