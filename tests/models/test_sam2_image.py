"""SAM 2 on still images behind the one prompted-segmenter interface: the library's own masks,
the same cache rules and checks as Segment Anything, and ``segstudio prompt`` with a folder."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("transformers")

from sam2_doubles import save_tiny_sam2  # noqa: E402

from segstudio.io.cache_entry import EntryMismatch  # noqa: E402
from segstudio.models.prompt_cache import EmbeddingCache, weights_key  # noqa: E402
from segstudio.models.prompted import ImageEmbedding, PromptedSegmenter  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny_sam2(tmp_path_factory.mktemp("sam2") / "tiny")


@pytest.fixture(scope="module")
def library(folder):
    from transformers import Sam2Model, Sam2Processor

    return (Sam2Model.from_pretrained(folder, local_files_only=True).eval(),
            Sam2Processor.from_pretrained(folder, local_files_only=True))


@pytest.fixture(autouse=True)
def _fp32():
    torch.set_default_dtype(torch.float32)


def picture(height=50, width=70, seed=0):
    rgb = np.random.default_rng(seed).integers(0, 60, (height, width, 3), dtype=np.uint8)
    rgb[10:35, 20:50] = (220, 190, 40)
    return rgb


def library_masks(library, rgb, points=None, labels=None, box=None, multimask=True):
    model, processor = library
    kwargs = {}
    if points:
        kwargs["input_points"] = [[[list(p) for p in points]]]
        kwargs["input_labels"] = [[list(labels)]]
    if box:
        kwargs["input_boxes"] = [[list(box)]]
    inputs = processor(images=rgb, return_tensors="pt", **kwargs)
    with torch.no_grad():
        out = model(**inputs, multimask_output=multimask)
    masks = processor.post_process_masks(out.pred_masks, inputs["original_sizes"])[0][0]
    return masks.numpy(), out.iou_scores[0, 0].numpy()


@pytest.mark.parametrize("prompt", [
    dict(points=[(30, 20)], labels=[1]),
    dict(points=[(30, 20), (5, 45)], labels=[1, 0]),
    dict(box=(18, 8, 52, 37)),
    dict(points=[(30, 20)], labels=[1], box=(18, 8, 52, 37)),
], ids=["one point", "object and background", "box", "point and box"])
def test_masks_and_scores_equal_the_library_for_the_same_prompt(folder, library, prompt):
    seg = PromptedSegmenter.from_file(folder)
    rgb = picture()
    emb = seg.embed(rgb)
    mine = seg.predict(emb, prompt.get("points", ()), prompt.get("labels", ()),
                       prompt.get("box"))
    multimask = len(prompt.get("points", ())) == 1 and "box" not in prompt
    masks, scores = library_masks(library, rgb, multimask=multimask, **prompt)
    assert len(mine) == len(scores)
    order = np.argsort(-scores, kind="stable")
    for i, j in enumerate(order):
        assert mine.scores[i] == pytest.approx(float(scores[j]), abs=1e-5)
        assert np.array_equal(mine.mask(i), masks[j])
        assert mine.mask(i).shape == rgb.shape[:2]


def test_a_refinement_with_the_previous_mask_equals_the_library(folder, library):
    seg = PromptedSegmenter.from_file(folder)
    rgb = picture()
    emb = seg.embed(rgb)
    first = seg.predict(emb, [(30, 20)], [1])
    mine = seg.predict(emb, [(30, 20), (45, 30)], [1, 1], mask_input=first.low_res[0])
    model, processor = library
    inputs = processor(images=rgb, input_points=[[[[30, 20], [45, 30]]]],
                       input_labels=[[[1, 1]]], return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs, input_masks=torch.from_numpy(first.low_res[0])[None, None],
                    multimask_output=False)
    theirs = processor.post_process_masks(out.pred_masks, inputs["original_sizes"])[0][0, 0]
    assert np.array_equal(mine.mask(0), theirs.numpy())


def test_the_embedding_is_three_float32_maps_of_the_network_shapes(folder):
    seg = PromptedSegmenter.from_file(folder)
    rgb = picture()
    emb = seg.embed(rgb)
    assert isinstance(emb.features, tuple) and len(emb.features) == 3
    assert [tuple(f.shape) for f in emb.features] == [tuple(s) for s in seg.shapes]
    assert all(f.dtype == torch.float32 for f in emb.features)
    assert emb.input_size == (seg.img_size, seg.img_size)     # squashed, not padded
    seg.check_embedding(emb, rgb.shape)
    bf16 = seg.embed(rgb, precision="bf16")
    assert all(f.dtype == torch.float32 for f in bf16.features) and bf16.precision == "bf16"


@pytest.mark.parametrize("spoil", ["one map", "a map of another shape", "NaN", "half"])
def test_an_embedding_not_what_the_network_makes_is_refused(folder, spoil):
    seg = PromptedSegmenter.from_file(folder)
    rgb = picture()
    emb = seg.embed(rgb)
    maps = list(emb.features)
    if spoil == "one map":
        features = maps[-1]
    elif spoil == "a map of another shape":
        features = (maps[0], maps[1][:, :, :-1], maps[2])
    elif spoil == "NaN":
        maps[0] = maps[0].clone()
        maps[0][0, 0, 0, 0] = float("nan")
        features = tuple(maps)
    else:
        features = tuple(m.half() for m in maps)
    with pytest.raises(EntryMismatch):
        seg.check_embedding(ImageEmbedding(features, emb.original_size, emb.input_size),
                            rgb.shape)


def test_the_disk_cache_keeps_sam2_embeddings_and_drops_a_damaged_one(folder, tmp_path):
    seg = PromptedSegmenter.from_file(folder)
    rgb = picture()
    key = weights_key(folder)
    first = EmbeddingCache(tmp_path / "cache")
    made = first.get_or_compute(key, rgb, lambda: seg.embed(rgb), seg.check_embedding)
    again = EmbeddingCache(tmp_path / "cache")
    read = again.get_or_compute(key, rgb, lambda: pytest.fail("computed again"),
                                seg.check_embedding)
    assert again.hits["disk"] == 1
    assert all(torch.equal(a, b) for a, b in zip(made.features, read.features))
    # A stored entry whose maps were swapped for the wrong ones is deleted and made again.
    (path,) = (tmp_path / "cache").glob("*/*.pt")
    data = torch.load(path, weights_only=True)
    data["features"] = data["features"][::-1]
    torch.save(data, path)
    third = EmbeddingCache(tmp_path / "cache")
    third.get_or_compute(key, rgb, lambda: seg.embed(rgb), seg.check_embedding)
    assert third.hits["computed"] == 1


def test_a_weights_file_replaced_inside_the_folder_is_another_model(folder, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    before = weights_key(copy)
    (weights,) = copy.glob("*.safetensors")
    data = weights.read_bytes()
    weights.write_bytes(data[:-4] + bytes(4))          # same size, other bytes, new time
    import os

    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert weights_key(copy) != before


def test_the_prompt_command_takes_a_sam2_folder(folder, library, tmp_path):
    rgb = picture()
    Image.fromarray(rgb).save(tmp_path / "in.png")
    out = tmp_path / "mask.png"
    run = subprocess.run([sys.executable, "-m", "segstudio", "prompt", "--weights", str(folder),
                          "--image", str(tmp_path / "in.png"), "--box", "18", "8", "52", "37",
                          "--out", str(out), "--precision", "fp32"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    masks, _ = library_masks(library, rgb, box=(18, 8, 52, 37), multimask=False)
    assert np.array_equal(np.asarray(Image.open(out)) == 1, masks[0])
    assert "SAM 2" in run.stdout


@pytest.mark.parametrize("case", ["inside the folder", "not a SAM 2 folder"])
def test_the_prompt_command_refuses_in_one_line(folder, tmp_path, case):
    Image.fromarray(picture()).save(tmp_path / "in.png")
    weights, out = str(folder), str(tmp_path / "mask.png")
    if case == "inside the folder":
        out = str(folder / "mask.png")
    else:
        (tmp_path / "empty").mkdir()
        weights = str(tmp_path / "empty")
    run = subprocess.run([sys.executable, "-m", "segstudio", "prompt", "--weights", weights,
                          "--image", str(tmp_path / "in.png"), "--point", "3", "3",
                          "--out", out], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1
    assert "Traceback" not in run.stderr
    assert not (folder / "mask.png").exists()
    expected = {"inside the folder": "inside the model folder",
                "not a SAM 2 folder": "no config.json"}[case]
    assert expected in run.stderr
