"""Training: the loss falls, the best checkpoint reloads to the scores it recorded, runs resume,
and two processes under DDP end with the same weights."""

import os
import socket

import numpy as np
import pytest
import torch

from segstudio.io import voc
from segstudio.models.checkpoint import load_checkpoint
from segstudio.train import synth
from segstudio.train.dataset import VocSegmentation, median_frequency_weights, pad_collate
from segstudio.train.loop import TrainError, evaluate, resume_path, train

torch.set_num_threads(1)


def write_demo(root, kind, n, size, seed=0):
    samples = (voc.VocSample(s.id, s.image, s.labels, s.instances)
               for s in synth.generate(kind, n, size=size, seed=seed))
    voc.write_voc(root, samples, synth.classes_for(kind), val_fraction=0.25, seed=seed, total=n)
    return root


@pytest.fixture(scope="module")
def xray_voc(tmp_path_factory):
    return write_demo(tmp_path_factory.mktemp("xray") / "voc", "xray", 24, 64)


def test_loss_falls_and_best_checkpoint_reloads_to_its_recorded_scores(xray_voc, tmp_path):
    out = tmp_path / "unet.pt"
    seen = []
    result = train("unet", xray_voc, epochs=4, batch_size=4, crop=64, out=out, lr=3e-3,
                   device="cpu", seed=1, max_steps=4, progress=seen.append)
    losses = [h["loss"] for h in result.history]
    assert len(losses) == 4 and losses[-1] < 0.9 * losses[0]
    assert [p.epoch for p in seen if p.val is not None] == [1, 2, 3, 4]
    assert out.is_file() and resume_path(out).is_file()

    model, meta = load_checkpoint(out, expected_arch="unet")
    assert meta.trained and meta.training["best_epoch"] == result.best_epoch
    assert meta.training["command"].startswith("segstudio train --model unet")
    val = VocSegmentation(xray_voc, "val", mean=meta.mean, std=meta.std)
    loader = torch.utils.data.DataLoader(val, batch_size=3, collate_fn=pad_collate)
    scores = evaluate(model, loader, 4, torch.device("cpu")).scores()
    assert scores.miou == pytest.approx(meta.training["val_mIoU"], abs=1e-5)
    assert scores.miou == pytest.approx(result.best_miou, abs=1e-5)
    if result.best_epoch == 4:     # the final weights are the saved ones: same logits
        x = torch.stack([val[i][0] for i in range(2)])
        with torch.no_grad():
            torch.testing.assert_close(model(x)["out"], result.model(x)["out"])


def test_resumed_run_ends_where_an_uninterrupted_run_ends(xray_voc, tmp_path):
    out = tmp_path / "r.pt"
    finished = []                  # interrupt a 2-epoch run once epoch 1 is validated
    first = train("unet", xray_voc, epochs=2, batch_size=4, crop=64, out=out, device="cpu",
                  max_steps=2, progress=lambda p: p.val is not None and finished.append(p),
                  cancel=lambda: bool(finished))
    assert first.cancelled and first.epochs_done == 1
    second = train("unet", xray_voc, epochs=2, batch_size=4, crop=64, out=out, device="cpu",
                   max_steps=2, resume=True)
    assert [h["epoch"] for h in second.history] == [1, 2]
    assert second.history[0] == first.history[0]
    straight = train("unet", xray_voc, epochs=2, batch_size=4, crop=64, out=tmp_path / "s.pt",
                     device="cpu", max_steps=2)
    for k, v in straight.model.state_dict().items():
        torch.testing.assert_close(second.model.state_dict()[k], v)
    with pytest.raises(TrainError, match="cannot resume 'unet' \\(paper\\)"):
        train("unet", xray_voc, config="paper", epochs=3, out=out, resume=True, device="cpu")


def test_cancel_stops_before_anything_is_written(xray_voc, tmp_path):
    out = tmp_path / "c.pt"
    result = train("unet", xray_voc, epochs=2, crop=64, out=out, device="cpu",
                   cancel=lambda: True)
    assert result.cancelled and result.epochs_done == 0 and not out.exists()


def test_bad_requests_name_the_problem(xray_voc, tmp_path):
    with pytest.raises(TrainError, match="nowhere: no such dataset folder"):
        train("unet", tmp_path / "nowhere", out=tmp_path / "x.pt")
    with pytest.raises(TrainError, match="unknown model 'nonet'"):
        train("nonet", xray_voc, out=tmp_path / "x.pt")
    with pytest.raises(TrainError, match="unknown optimizer"):
        train("unet", xray_voc, out=tmp_path / "x.pt", optimizer="lbfgs")


def test_mask_rcnn_trains_on_shapes_instances(tmp_path):
    root = write_demo(tmp_path / "shapes", "shapes", 8, 64)
    out = tmp_path / "mrcnn.pt"
    result = train("maskrcnn", root, epochs=1, batch_size=2, out=out, device="cpu",
                   max_steps=2)
    assert np.isfinite(result.history[0]["loss"]) and result.history[0]["loss"] > 0
    assert result.best_epoch == 1 and out.is_file()
    _, meta = load_checkpoint(out, expected_arch="maskrcnn")
    assert meta.classes.names == ("background", "circle", "square", "triangle")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, root, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world),
                      RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    result = train("unet", root, epochs=1, batch_size=2, crop=64, out=f"{out_dir}/ddp.pt",
                   device="cpu", seed=3, max_steps=2)
    torch.save({k: v.clone() for k, v in result.model.state_dict().items()},
               f"{out_dir}/rank{rank}.pt")


def test_two_ddp_processes_end_with_identical_weights(xray_voc, tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, _free_port(), str(xray_voc), str(tmp_path)), nprocs=2)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    torch.manual_seed(3)
    from segstudio.models.registry import build_model

    init = build_model("unet", 4).state_dict()
    moved = 0
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
        if a[k].is_floating_point() and not torch.equal(a[k], init[k]):
            moved += 1
    assert moved > 10                       # the step changed the weights
    assert (tmp_path / "ddp.pt").is_file() and not (tmp_path / "rank1.pt.resume").exists()


class _Labels:
    def __init__(self, maps):
        self.maps = maps

    def __len__(self):
        return len(self.maps)

    def load(self, i):
        return None, self.maps[i]


def test_median_frequency_weights_favour_rare_classes():
    a = np.zeros((10, 10), np.uint8)
    a[:2] = 1                      # class 1: 20 % of its image
    a[9, 9] = 255                  # void pixels are not counted
    b = np.full((10, 10), 2, np.uint8)
    b[0, :5] = 0                   # class 0 in both images
    w = median_frequency_weights(_Labels([a, b]), 4)
    # frequencies: class 0 (79+5)/199, class 1 20/99, class 2 95/100; median = class 0's
    f = np.array([84 / 199, 20 / 99, 95 / 100])
    np.testing.assert_allclose(w[:3], np.median(f) / f, rtol=1e-4)
    assert w[3] == 1.0 and w[1] > w[0] > w[2]
