"""The VOC training dataset: normalisation, augmentation with void padding, instance targets."""

import numpy as np
import pytest
import torch

from segstudio.io import voc
from segstudio.train import synth
from segstudio.train.dataset import (Augment, DatasetError, VocInstances, VocSegmentation,
                                     augment_pair, channel_stats, instance_target, pad_collate)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes") / "voc"
    samples = [voc.VocSample(s.id, s.image, s.labels, s.instances)
               for s in synth.generate("shapes", 6, size=48, seed=2)]
    voc.write_voc(root, samples, synth.classes_for("shapes"), val_fraction=0.34)
    return root, samples


def test_items_are_normalised_with_the_given_mean_and_std(tree):
    root, samples = tree
    ds = VocSegmentation(root, "train", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    x, y = ds[0]
    image, labels = ds.load(0)
    assert x.shape == (3, 48, 48) and y.dtype == torch.int64
    expected = (image.astype(np.float32) / 255 - 0.5) / 0.25
    np.testing.assert_allclose(x.numpy().transpose(1, 2, 0), expected, atol=1e-5)
    np.testing.assert_array_equal(y.numpy(), labels)
    mean, std = channel_stats(ds)
    assert all(0 < m < 1 for m in mean) and all(s > 0.01 for s in std)


def test_crop_larger_than_image_pads_labels_with_void():
    torch.manual_seed(0)
    image = np.full((20, 30, 3), 200, np.uint8)
    labels = np.ones((20, 30), np.uint8)
    out_img, out_lab = augment_pair(image, labels, Augment(crop=48, scale=(1.0, 1.0)))
    assert out_img.shape == (48, 48, 3) and out_lab.shape == (48, 48)
    assert (out_lab == 1).sum() == 600 and (out_lab == 255).sum() == 48 * 48 - 600
    assert (out_img[out_lab == 255] == 0).all() and (out_img[out_lab == 1] == 200).all()


def test_scaling_keeps_labels_as_class_indices():
    torch.manual_seed(1)
    labels = np.zeros((64, 64), np.uint8)
    labels[10:40, 5:50] = 2
    labels[45:60, 20:30] = 3
    image = np.zeros((64, 64, 3), np.uint8)
    for _ in range(5):
        _, lab = augment_pair(image, labels, Augment(crop=32, scale=(0.5, 1.5)))
        assert set(np.unique(lab).tolist()) <= {0, 2, 3, 255}


def test_pad_collate_stacks_different_sizes_with_void_labels():
    a = (torch.ones(3, 4, 5), torch.zeros(4, 5, dtype=torch.int64))
    b = (torch.ones(3, 6, 3), torch.ones(6, 3, dtype=torch.int64))
    x, y = pad_collate([a, b])
    assert x.shape == (2, 3, 6, 5) and y.shape == (2, 6, 5)
    assert (y[0, 4:] == 255).all() and (y[1, :, 3:] == 255).all() and (y[1, :, :3] == 1).all()


def test_instance_targets_match_the_drawn_shapes(tree):
    root, samples = tree
    ds = VocInstances(root, "train")
    by_id = {s.id: s for s in samples}
    for i in range(len(ds)):
        x, t = ds[i]
        s = by_id[ds.items[i][0]]
        ids = sorted(set(np.unique(s.instances).tolist()) - {0})
        assert x.shape == (3, 48, 48) and 0 <= float(x.min()) and float(x.max()) <= 1
        assert len(t["labels"]) == len(ids) == len(t["boxes"]) == len(t["masks"])
        for k, iid in enumerate(ids):
            m = s.instances == iid
            np.testing.assert_array_equal(t["masks"][k].numpy().astype(bool), m)
            assert int(t["labels"][k]) == int(np.unique(s.labels[m])[0])
            ys, xs = np.nonzero(m)
            assert t["boxes"][k].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_empty_instance_map_gives_empty_targets():
    t = instance_target(np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8))
    assert t["boxes"].shape == (0, 4) and t["masks"].shape == (0, 8, 8)


def test_missing_split_is_a_dataset_error_naming_it(tree):
    root, _ = tree
    with pytest.raises(DatasetError, match="'test' split"):
        VocSegmentation(root, "test", mean=(0, 0, 0), std=(1, 1, 1))
