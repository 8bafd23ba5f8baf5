"""Pascal VOC export and reading: layout, torchvision round trip, splits, cancel, atomicity."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from segstudio.core.classes import ClassSet, voc21
from segstudio.core.palette import VOC_COLORMAP
from segstudio.io.voc import (
    VocError,
    VocExportCancelled,
    VocSample,
    load_label_png,
    read_voc,
    sanitize_id,
    save_label_png,
    split_ids,
    write_voc,
)

CLASSES = ClassSet(["background", "cell", "nucleus"], [(0, 0, 0), (255, 0, 0), (0, 255, 0)],
                   title="cells")


def _samples(n: int = 5, size=(12, 16)) -> list[VocSample]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        image = np.zeros((*size, 3), np.uint8)
        image[..., 0] = 40 * i
        image[..., 1] = np.linspace(0, 255, size[1], dtype=np.uint8)[None, :]
        labels = rng.integers(0, 3, size=size, dtype=np.uint8)
        labels[0, :3] = 255
        instances = (labels > 0).astype(np.uint8) * (i + 1) if i % 2 == 0 else None
        out.append(VocSample(f"img {i}", image, labels, instances))
    return out


def test_label_png_is_palette_mode_with_class_colours_and_void(tmp_path):
    labels = np.array([[0, 1], [2, 255]], np.uint8)
    save_label_png(tmp_path / "l.png", labels, CLASSES)
    im = Image.open(tmp_path / "l.png")
    assert im.mode == "P"
    pal = np.array(im.getpalette()).reshape(-1, 3)
    assert tuple(pal[1]) == (255, 0, 0) and tuple(pal[2]) == (0, 255, 0)
    assert tuple(pal[255]) == (224, 224, 192)
    np.testing.assert_array_equal(load_label_png(tmp_path / "l.png"), labels)


def test_plain_grey_label_png_is_read_as_indices(tmp_path):
    labels = np.array([[0, 3], [7, 255]], np.uint8)
    Image.fromarray(labels).save(tmp_path / "g.png")
    np.testing.assert_array_equal(load_label_png(tmp_path / "g.png"), labels)


def test_rgb_label_png_is_refused_with_advice(tmp_path):
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(VocError, match=r"^rgb\.png: .*colours, not class indices"):
        load_label_png(tmp_path / "rgb.png")


def test_sixteen_bit_label_values_above_255_are_refused(tmp_path):
    Image.fromarray(np.array([[0, 300]], np.uint16)).save(tmp_path / "w.png")
    with pytest.raises(VocError, match="reach 300"):
        load_label_png(tmp_path / "w.png")


def test_bad_label_files_give_voc_errors(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("labels\n")
    for name in ("empty.png", "text.png", "missing.png"):
        with pytest.raises(VocError, match=f"^{name}: "):
            load_label_png(tmp_path / name)


def test_atomic_label_save_keeps_the_old_file_when_the_writer_fails(tmp_path, monkeypatch):
    path = tmp_path / "keep.png"
    old = np.array([[1, 2]], np.uint8)
    save_label_png(path, old, CLASSES)
    before = path.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half written")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(VocError, match=r"^keep\.png: cannot be written \(disk full\)"):
        save_label_png(path, np.array([[0, 0]], np.uint8), CLASSES)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_sanitize_id_blocks_paths_and_reserved_names():
    assert sanitize_id("../../etc/passwd") == "etc_passwd"
    assert sanitize_id("/abs/path") == "abs_path"
    assert sanitize_id("a\\b:c") == "a_b_c"
    assert sanitize_id("..") == "item" and sanitize_id("") == "item"
    assert sanitize_id("CON") == "_CON" and sanitize_id("lpt1.x") == "_lpt1.x"
    assert sanitize_id("scan 01") == "scan_01"
    assert len(sanitize_id("x" * 500)) <= 120


@pytest.mark.slow  # importing torchvision takes seconds
def test_export_is_read_back_exactly_by_torchvision(tmp_path):
    from torchvision.datasets import VOCSegmentation

    samples = _samples(5)
    result = write_voc(tmp_path / "out", samples, CLASSES, val_fraction=0.4, seed=3)
    assert result.root == tmp_path / "out" and result.count == 5
    assert len(result.train) == 3 and len(result.val) == 2
    by_id = {sanitize_id(s.id): s for s in samples}
    for split, ids in (("train", result.train), ("val", result.val)):
        ds = VOCSegmentation(str(result.root), year="2012", image_set=split, download=False)
        assert len(ds) == len(ids)
        for k, ident in enumerate(ids):
            image, target = ds[k]
            sample = by_id[ident]
            np.testing.assert_array_equal(np.asarray(target), sample.labels)
            diff = np.abs(np.asarray(image, np.int16) - sample.image.astype(np.int16))
            assert diff.mean() < 3 and np.asarray(image).shape == sample.image.shape


def test_export_layout_splits_classes_and_instances(tmp_path):
    samples = _samples(4)
    result = write_voc(tmp_path / "out", samples, CLASSES, val_fraction=0.25, seed=0)
    voc = result.voc_dir
    assert voc == tmp_path / "out" / "VOCdevkit" / "VOC2012"
    splits = voc / "ImageSets" / "Segmentation"
    trainval = (splits / "trainval.txt").read_text().split()
    assert sorted(trainval) == sorted(result.train + result.val) == trainval
    assert (voc / "class_names.txt").read_text().split("\n")[:3] == list(CLASSES.names)
    assert ClassSet.from_dict(json.loads((voc / "classes.json").read_text())) == CLASSES
    objects = sorted(p.stem for p in (voc / "SegmentationObject").iterdir())
    assert objects == ["img_0", "img_2"]
    inst = Image.open(voc / "SegmentationObject" / "img_2.png")
    assert inst.mode == "P" and tuple(np.array(inst.getpalette()[3:6])) == tuple(VOC_COLORMAP[1])
    np.testing.assert_array_equal(np.asarray(inst), samples[2].instances)
    assert read_voc(tmp_path / "out", "val")[0][0] == result.val[0]
    assert not [p for p in (voc.parent).iterdir() if p.name.startswith(".")]


def test_split_is_reproducible_from_the_seed_and_independent_of_order():
    ids = [f"s{i:02d}" for i in range(20)]
    a = split_ids(ids, 0.2, seed=5)
    assert a == split_ids(list(reversed(ids)), 0.2, seed=5)
    assert len(a[1]) == 4 and set(a[0]) | set(a[1]) == set(ids)
    assert a != split_ids(ids, 0.2, seed=6)


def test_duplicate_ids_are_made_unique(tmp_path):
    s = _samples(3)
    for x in s:
        x.id = "same"
    s[2].id = "SAME"
    result = write_voc(tmp_path / "o", s, CLASSES, val_fraction=0.0)
    assert sorted(result.train) == ["SAME_3", "same", "same_2"]
    assert result.val == []


def test_cancel_leaves_no_complete_looking_tree(tmp_path):
    seen = []
    result_dir = tmp_path / "out"
    with pytest.raises(VocExportCancelled):
        write_voc(result_dir, iter(_samples(5)), CLASSES, progress=lambda d, t: seen.append((d, t)),
                  cancel=lambda: len(seen) >= 2)
    assert seen == [(1, 0), (2, 0)]
    assert not result_dir.exists()


def test_failure_midway_leaves_existing_export_untouched(tmp_path):
    first = write_voc(tmp_path / "out", _samples(3), CLASSES, val_fraction=0.0)
    listing = (first.voc_dir / "ImageSets" / "Segmentation" / "train.txt").read_text()
    bad = _samples(3)
    bad[1].labels = bad[1].labels[:-1]
    with pytest.raises(VocError, match=r"img 1: labels are 16×11 but the image is 16×12"):
        write_voc(tmp_path / "out", bad, CLASSES, overwrite=True)
    assert (first.voc_dir / "ImageSets" / "Segmentation" / "train.txt").read_text() == listing
    assert sorted(p.name for p in first.voc_dir.parent.iterdir()) == ["VOC2012"]


def test_existing_export_needs_overwrite(tmp_path):
    write_voc(tmp_path / "out", _samples(2), CLASSES)
    with pytest.raises(VocError, match="already holds"):
        write_voc(tmp_path / "out", _samples(2), CLASSES)
    result = write_voc(tmp_path / "out", _samples(3), CLASSES, overwrite=True, val_fraction=0.0)
    assert len(read_voc(tmp_path / "out", "train")) == 3 == result.count


def test_label_values_outside_the_class_set_are_refused(tmp_path):
    s = _samples(1)
    s[0].labels[5, 5] = 9
    with pytest.raises(VocError, match="label value 9 is not a class of cells"):
        write_voc(tmp_path / "out", s, CLASSES)
    assert not (tmp_path / "out").exists()


def test_unwritable_target_is_a_voc_error(tmp_path):
    (tmp_path / "out").write_text("a file where the folder should go")
    with pytest.raises(VocError, match=r"^out: cannot create the export folder"):
        write_voc(tmp_path / "out", _samples(1), CLASSES)


def test_nothing_to_export_is_an_error(tmp_path):
    with pytest.raises(VocError, match="nothing to export"):
        write_voc(tmp_path / "out", [], voc21())


def test_read_voc_reports_missing_files(tmp_path):
    result = write_voc(tmp_path / "out", _samples(2), CLASSES, val_fraction=0.0)
    (result.voc_dir / "SegmentationClass" / f"{result.train[0]}.png").unlink()
    with pytest.raises(VocError, match="missing from SegmentationClass"):
        read_voc(tmp_path / "out")
    with pytest.raises(VocError, match="no 'test' split"):
        read_voc(tmp_path / "out", "test")
    with pytest.raises(VocError, match="no Pascal VOC tree"):
        read_voc(tmp_path)


def test_export_progress_reports_the_known_total(tmp_path):
    seen = []
    write_voc(tmp_path / "out", _samples(3), CLASSES, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 3), (2, 3), (3, 3)]



def test_a_group_never_straddles_train_and_val():
    ids = [f"clip_{i:06d}" for i in range(10)] + [f"img{i}" for i in range(10)]
    groups = {f"clip_{i:06d}": "clip.mp4" for i in range(10)}
    for seed in range(20):
        train, val = split_ids(ids, 0.3, seed, groups)
        clip_in_val = {i for i in val if i.startswith("clip")}
        assert clip_in_val in (set(), set(groups))        # the whole video, or none of it
        assert train and val and sorted(train + val) == sorted(ids)
        assert split_ids(list(reversed(ids)), 0.3, seed, groups) == (train, val)


def test_ungrouped_split_is_the_plain_draw_of_single_ids():
    ids = [f"im{i:03d}" for i in range(37)]
    train, val = split_ids(ids, 0.2, seed=3)
    assert split_ids(ids, 0.2, 3, {i: i for i in ids}) == (train, val)
    assert len(val) == round(37 * 0.2)


def test_one_video_alone_stays_whole_in_train():
    ids = [f"clip_{i:06d}" for i in range(8)]
    train, val = split_ids(ids, 0.25, 0, {i: "clip.mp4" for i in ids})
    assert (len(train), val) == (8, [])
