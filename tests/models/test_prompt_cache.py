"""The embedding cache uses a stored embedding only when it is the one the segmenter would
compute for this image now; any other is deleted, said in one line, and computed again."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from prompt_doubles import DiskNetwork, save_small_sam
from segstudio.cli import main
from segstudio.models.prompt_cache import EmbeddingCache, weights_key
from segstudio.models.prompted import PromptedSegmenter
from segstudio.paths import user_data_dir

pytest.importorskip("segment_anything")

HEIGHT, WIDTH = 48, 64


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "picture.png"
    rgb = np.random.default_rng(4).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def _stored():
    (path,) = (user_data_dir() / "prompt-embeddings").glob("*/*.pt")
    return path


def _tamper(path, **changes):
    data = torch.load(path, weights_only=True)
    data.update(changes)
    torch.save(data, path)


def _prompt(weights, picture, out):
    return main(["prompt", "--weights", str(weights), "--image", str(picture), "--box", "5", "5",
                 "40", "30", "--out", str(out), "--device", "cpu", "--cache",
                 "--precision", "fp32"])


def _dropped(caplog):
    return [r.getMessage() for r in caplog.records
            if r.name == "segstudio.cache" and "dropped cache entry" in r.getMessage()]


@pytest.mark.parametrize("change, reason", [
    (lambda f: {"features": f[:, :, :4, :4].clone()}, "the feature map's shape"),
    (lambda f: {"features": f[0]}, "the feature map's shape"),
    (lambda f: {"features": f.to(torch.int32)}, "not a float32 tensor"),
    (lambda f: {"features": f.to(torch.float16)}, "not a float32 tensor"),
    (lambda f: {"original_size": [4800, 6400]}, "the image size (H, W) is (4800, 6400)"),
    (lambda f: {"input_size": [128, 128]}, "the resized input's size"),
    (lambda f: {"features": torch.full_like(f, float("nan"))}, "NaN"),
    (lambda f: {"key": ["another", "image"]}, "its key"),
], ids=["smaller-grid", "three-dims", "integer", "half", "forged-original-size", "forged-input-size",
        "nan", "other-key"])
def test_a_stored_embedding_that_is_not_this_images_is_dropped_and_computed_again(
        tmp_path, picture, caplog, change, reason):
    weights = save_small_sam(tmp_path / "small.pth")
    first = tmp_path / "first.png"
    assert _prompt(weights, picture, first) == 0
    stored = _stored()
    good = torch.load(stored, weights_only=True)
    _tamper(stored, **change(good["features"]))

    again = tmp_path / "again.png"
    with caplog.at_level(logging.WARNING, logger="segstudio.cache"):
        assert _prompt(weights, picture, again) == 0
    # The mask is the image's size and the same as before the cache was tampered with.
    assert Image.open(again).size == (WIDTH, HEIGHT)
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(first)))
    (line,) = _dropped(caplog)
    assert str(stored) in line and reason in line and line.endswith("it is computed again")
    # The tampered file was replaced by the right embedding, which the next run uses.
    fresh = torch.load(stored, weights_only=True)
    assert torch.equal(fresh["features"], good["features"])
    assert fresh["original_size"] == [HEIGHT, WIDTH]
    caplog.clear()
    assert _prompt(weights, picture, tmp_path / "third.png") == 0
    assert _dropped(caplog) == []


def test_the_prompt_tools_cache_checks_against_the_segmenter_too(tmp_path):
    # The Prompt tool goes through the same cache and the same check as the command.
    seg = PromptedSegmenter(DiskNetwork(img_size=128))
    rgb = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    folder = tmp_path / "cache"
    EmbeddingCache(folder).get_or_compute("w", rgb, lambda: seg.embed(rgb), seg.check_embedding)
    (stored,) = folder.glob("*/*.pt")
    _tamper(stored, original_size=[4800, 6400])
    calls = []
    emb = EmbeddingCache(folder).get_or_compute(
        "w", rgb, lambda: calls.append(1) or seg.embed(rgb), seg.check_embedding)
    assert calls == [1] and emb.original_size == (HEIGHT, WIDTH)
    pred = seg.predict(emb, [(30, 20)], [1], multimask=False)
    assert pred.mask(0).shape == (HEIGHT, WIDTH) and pred.mask(0)[20, 30]


def test_an_embedding_file_copied_under_another_images_name_is_not_used(tmp_path):
    seg = PromptedSegmenter(DiskNetwork(img_size=128))
    rng = np.random.default_rng(1)
    one, two = (rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(2))
    folder = tmp_path / "cache"
    cache = EmbeddingCache(folder)
    cache.get_or_compute("w", one, lambda: seg.embed(one), seg.check_embedding)
    cache.get_or_compute("w", two, lambda: seg.embed(two), seg.check_embedding)
    first, second = sorted(folder.glob("*/*.pt"), key=lambda p: p.stat().st_mtime_ns)
    second.write_bytes(first.read_bytes())         # same sizes: only the key tells them apart
    calls = []
    EmbeddingCache(folder).get_or_compute("w", two, lambda: calls.append(1) or seg.embed(two),
                                          seg.check_embedding)
    assert calls == [1]


def test_a_real_weights_key_survives_the_check(tmp_path):
    weights = save_small_sam(tmp_path / "small.pth")
    seg = PromptedSegmenter.from_file(weights)
    rgb = np.random.default_rng(2).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    key = weights_key(weights)
    EmbeddingCache(tmp_path / "c").get_or_compute(key, rgb, lambda: seg.embed(rgb),
                                                  seg.check_embedding)
    fresh = EmbeddingCache(tmp_path / "c")
    fresh.get_or_compute(key, rgb, lambda: pytest.fail("recomputed"), seg.check_embedding)
    assert fresh.hits["disk"] == 1


def test_an_fp32_request_never_takes_a_bf16_entry_and_a_bf16_request_may_take_fp32(tmp_path):
    seg = PromptedSegmenter(DiskNetwork(img_size=128))
    rgb = np.random.default_rng(3).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    folder = tmp_path / "cache"
    computed = []

    def compute(precision):
        return lambda: computed.append(precision) or seg.embed(rgb, precision=precision)

    cache = EmbeddingCache(folder)
    assert cache.get_or_compute("w", rgb, compute("bf16"), seg.check_embedding,
                                "bf16").precision == "bf16"
    # In memory and on disk alike, a bf16 entry does not answer an fp32 request.
    assert cache.get_or_compute("w", rgb, compute("fp32"), seg.check_embedding,
                                "fp32").precision == "fp32"
    assert EmbeddingCache(folder).get_or_compute("w", rgb, compute("fp32"), seg.check_embedding,
                                                 "fp32").precision == "fp32"
    assert computed == ["bf16", "fp32"]
    names = sorted(p.name for p in folder.glob("*/*.pt"))
    assert len(names) == 2 and names[0].endswith(".bf16.pt") and torch.load(
        next(folder.glob("*/*.bf16.pt")), weights_only=True)["precision"] == "bf16"
    # fp32 is what bf16 is measured against: it answers a bf16 request.
    next(folder.glob("*/*.bf16.pt")).unlink()
    fresh = EmbeddingCache(folder)
    got = fresh.get_or_compute("w", rgb, compute("bf16"), seg.check_embedding, "bf16")
    assert got.precision == "fp32" and fresh.hits["disk"] == 1 and computed == ["bf16", "fp32"]


def test_a_bf16_embedding_stored_under_the_fp32_name_is_dropped(tmp_path, caplog):
    seg = PromptedSegmenter(DiskNetwork(img_size=128))
    rgb = np.random.default_rng(3).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    folder = tmp_path / "cache"
    EmbeddingCache(folder).get_or_compute("w", rgb, lambda: seg.embed(rgb, precision="bf16"),
                                          seg.check_embedding, "bf16")
    (stored,) = folder.glob("*/*.bf16.pt")
    renamed = stored.with_name(stored.name.replace(".bf16.pt", ".pt"))
    stored.rename(renamed)
    computed = []
    with caplog.at_level(logging.WARNING, logger="segstudio.cache"):
        got = EmbeddingCache(folder).get_or_compute(
            "w", rgb, lambda: computed.append(1) or seg.embed(rgb), seg.check_embedding)
    assert computed == [1] and got.precision == "fp32"
    (line,) = _dropped(caplog)
    assert "its precision is 'bf16', not 'fp32'" in line


def test_an_entry_written_before_precisions_were_recorded_counts_as_fp32(tmp_path):
    seg = PromptedSegmenter(DiskNetwork(img_size=128))
    rgb = np.random.default_rng(3).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    folder = tmp_path / "cache"
    EmbeddingCache(folder).get_or_compute("w", rgb, lambda: seg.embed(rgb), seg.check_embedding)
    (stored,) = folder.glob("*/*.pt")
    data = torch.load(stored, weights_only=True)
    del data["precision"]                        # as the files of earlier versions are
    torch.save(data, stored)
    fresh = EmbeddingCache(folder)
    got = fresh.get_or_compute("w", rgb, lambda: pytest.fail("recomputed"), seg.check_embedding)
    assert got.precision == "fp32" and fresh.hits["disk"] == 1
