"""Training: a segmentation network on a VOC tree, keeping the checkpoint with the best val mIoU.

AdamW is the default optimiser: segstudio trains small networks from scratch (no pretrained
weights are downloaded), where it converges in far fewer epochs than the papers' SGD with momentum
(which stays available as ``optimizer="sgd"``). Both follow the "poly" schedule
``lr · (1 − iter/max_iter)^0.9`` (DeepLab, Chen et al. 2017, §4.1). Where a network has an
auxiliary head its loss is added with weight 0.4 (PSPNet, Zhao et al. 2017, §3.4).

Launched by ``torchrun`` (``WORLD_SIZE`` > 1) the loop runs data-parallel: one process per
device, each with its shard of every epoch (DistributedSampler) and gradients averaged by
DistributedDataParallel; validation confusion matrices are summed over processes, and only
rank 0 writes files or reports progress.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset

from segstudio.core.classes import ClassSet, chest_xray, voc21
from segstudio.core.metrics import ConfusionMatrix, Scores
from segstudio.io.atomic import atomic_write_with
from segstudio.train.dataset import (IGNORE_INDEX, Augment, DatasetError, VocInstances,
                                     VocSegmentation, channel_stats, instance_collate,
                                     median_frequency_weights, pad_collate)
from segstudio.train.card import card_for_run, describe_split, validation_confidence
from segstudio.train.distributed import all_sum, average_buffers, init_distributed
from segstudio.train.init_from import InitError, load_initial_weights
from segstudio.train.resume import ResumeError, read_resume, restore

AUX_WEIGHT = 0.4
POLY_POWER = 0.9
OPTIMIZERS = ("adamw", "sgd")
DEFAULT_LR = {"adamw": 1e-3, "sgd": 1e-2}


class TrainError(Exception):
    """Training that cannot start or go on; the message says what to fix."""


@dataclass(frozen=True)
class TrainProgress:
    """Reported after every step (``val`` None) and after each epoch's validation."""

    epoch: int          # 1-based
    epochs: int
    step: int           # steps done in this epoch
    steps: int
    loss: float         # mean training loss of the epoch so far
    lr: float
    val: Scores | None = None
    best: bool = False
    seconds: float = 0.0


@dataclass
class TrainResult:
    out: Path
    best_epoch: int
    best_miou: float
    best_macc: float
    epochs_done: int
    cancelled: bool
    history: list[dict] = field(default_factory=list)
    model: nn.Module | None = None     # the final weights (not necessarily the best)


def resume_path(out: str | Path) -> Path:
    """Where the optimiser state and epoch of a run writing ``out`` are kept."""
    out = Path(out)
    return out.with_name(out.name + ".resume")


def read_classes(root: Path) -> ClassSet:
    """The class set a VOC tree was exported with (its ``classes.json``); a tree without one
    is taken to be Pascal VOC itself, with its 21 classes."""
    from segstudio.io.voc import VocError, read_voc_classes

    try:
        return read_voc_classes(root) or voc21()
    except VocError as exc:
        raise TrainError(str(exc)) from None


# -- steps -----------------------------------------------------------------------------------
def _seg_loss(output, labels: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    out = output["out"] if isinstance(output, dict) else output
    loss = F.cross_entropy(out, labels, weight=weight, ignore_index=IGNORE_INDEX)
    if isinstance(output, dict) and output.get("aux") is not None:
        aux = output["aux"]
        if aux.shape[-2:] != labels.shape[-2:]:
            aux = F.interpolate(aux, size=labels.shape[-2:], mode="bilinear", align_corners=False)
        loss = loss + AUX_WEIGHT * F.cross_entropy(aux, labels, weight=weight,
                                                   ignore_index=IGNORE_INDEX)
    return loss


def _instance_loss(net: nn.Module, images: list[torch.Tensor], targets: list[dict],
                   device: torch.device) -> torch.Tensor:
    """Mask R-CNN's summed losses (RPN and heads) for a batch, torchvision's training API."""
    images = [im.to(device) for im in images]
    targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
    return sum(net(images, targets).values())


def _instance_labels(model: nn.Module, images: list[torch.Tensor], num_classes: int,
                     device: torch.device) -> list[np.ndarray]:
    """Semantic labels from Mask R-CNN detections, as the app's Predictor derives them."""
    from segstudio.models.engine import semantic_from_instances

    detections = model([im.to(device) for im in images])
    preds = []
    for im, det in zip(images, detections):
        det = {k: v.float().cpu() if v.is_floating_point() else v.cpu() for k, v in det.items()}
        probs, _, _ = semantic_from_instances(det, num_classes, tuple(im.shape[-2:]))
        preds.append(probs.argmax(0).numpy())
    return preds


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, num_classes: int, device: torch.device,
             instance: bool = False) -> ConfusionMatrix:
    """The confusion matrix of ``model`` over ``loader`` (labels 255 ignored)."""
    model.eval()
    cm = ConfusionMatrix(num_classes)
    for images, labels in loader:
        if instance:
            preds = _instance_labels(model, images, num_classes, device)
        else:
            output = model(images.to(device))
            out = output["out"] if isinstance(output, dict) else output
            preds = out.argmax(1).cpu().numpy()
        if instance:
            for t, p in zip(labels, preds):
                cm.update(t["semantic"].numpy(), p)
        else:
            cm.update(labels.numpy(), preds)
    return cm


def _poly(optimizer: torch.optim.Optimizer, base_lr: float, it: int, total: int) -> float:
    lr = base_lr * (1 - min(it, total - 1) / total) ** POLY_POWER
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def _default_command(model_name, data_dir, config, epochs, batch_size, lr, crop, out, seed,
                     optimizer, device, balance, init) -> str:
    args = ["segstudio", "train", "--model", model_name, "--config", config, "--data",
            str(data_dir), "--epochs", str(epochs), "--batch-size", str(batch_size),
            "--lr", f"{lr:g}", "--crop", str(crop), "--optimizer", optimizer,
            "--device", device, "--seed", str(seed), "--out", str(out)]
    return shlex.join(args + (["--balance"] if balance else [])
                      + (["--init", str(init)] if init else []))


def train(model_name: str, data_dir: str | Path, *, config: str = "lite", epochs: int = 10,
          batch_size: int = 8, lr: float | None = None, crop: int = 128,
          out: str | Path, resume: str | Path | bool | None = None,
          progress: Callable[[TrainProgress], None] | None = None,
          notice: Callable[[str], None] | None = None,
          cancel: Callable[[], bool] | None = None, device: str = "auto", seed: int = 0,
          optimizer: str = "adamw", weight_decay: float = 1e-4, hflip: bool | None = None,
          balance: bool = False, init: str | Path | None = None,
          workers: int = 0, max_steps: int | None = None,
          command: str | None = None) -> TrainResult:
    """Train ``model_name`` on the VOC tree ``data_dir`` and write the best checkpoint to ``out``.

    ``balance`` weights the loss by median frequency balancing (SegNet, Badrinarayanan et al.
    2017, §3.2), so thin rare classes such as clavicles are not drowned by the background.
    ``resume`` continues a run from ``out``'s ``.resume`` file (``True``) or a named one.
    ``init`` starts from a trained checkpoint of the same architecture and configuration
    (fine-tuning): its weights, classes matched by name, and its input normalisation;
    ``notice`` hears what was carried over.
    ``hflip`` None means flips except for the chest X-ray class set. ``max_steps`` caps the
    steps of each epoch (quick trials and tests). ``batch_size`` is per process under torchrun.
    """
    from segstudio.models import checkpoint as ckpt
    from segstudio.models import registry
    from segstudio.models.device import DeviceError, choose_device

    if optimizer not in OPTIMIZERS:
        raise TrainError(f"unknown optimizer {optimizer!r}; use {' or '.join(OPTIMIZERS)}")
    if epochs < 1 or batch_size < 1 or crop < 16:
        raise TrainError("epochs and batch size must be at least 1, and the crop at least 16 px")
    data_dir, out = Path(data_dir), Path(out)
    if not data_dir.is_dir():
        raise TrainError(f"{data_dir}: no such dataset folder")
    try:
        spec = registry.get_spec(model_name)
    except KeyError as exc:
        raise TrainError(str(exc)) from None
    instance = bool(getattr(spec, "instance", False))
    try:
        dev = choose_device(device)
    except DeviceError as exc:
        raise TrainError(str(exc)) from None
    d = init_distributed(dev)
    if dev.type == "cuda" and d.world > 1:
        dev = torch.device("cuda", d.local_rank)
        torch.cuda.set_device(dev)
    try:
        classes = read_classes(data_dir)
        n_cls = len(classes)
        lr = DEFAULT_LR[optimizer] if lr is None else float(lr)
        command = command or _default_command(model_name, data_dir, config, epochs, batch_size, lr,
                                              crop, out, seed, optimizer, device, balance,
                                              init)
        if hflip is None:
            hflip = classes.names != chest_xray().names
        state = _load_resume(resume, out, model_name, config, classes)
        # A resumed run has its own weights; otherwise a start checkpoint's normalisation holds.
        norm = state or (_start_norm(init) if init else None)
        try:
            train_set, val_set, collate, mean, std, class_weight = _datasets(
                data_dir, instance, Augment(crop=crop, hflip=hflip), norm, n_cls, balance)
        except DatasetError as exc:
            raise TrainError(str(exc)) from None
        # What the model card says about the training data, measured once (main process).
        train_summary = describe_split(VocSegmentation(data_dir, "train", mean=(0, 0, 0),
                                                       std=(1, 1, 1)), n_cls) if d.main else None
        weight_t = None if class_weight is None else \
            torch.tensor(class_weight, dtype=torch.float32, device=dev)

        torch.manual_seed(seed)           # identical initial weights in every process
        try:
            model = registry.build_model(model_name, n_cls, config=config).to(dev)
        except registry.ModelConfigError as exc:
            raise TrainError(str(exc)) from None
        started_from = None
        if init and not state:
            try:
                started_from = load_initial_weights(model, model_name, config, classes, init)
            except InitError as exc:
                raise TrainError(str(exc)) from None
            if d.main and notice is not None:
                notice(started_from.summary())
        params = [p for p in model.parameters() if p.requires_grad]
        opt = (torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay) if optimizer == "adamw"
               else torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay))
        start_epoch, history = 0, []
        best = {"epoch": 0, "miou": -1.0, "macc": float("nan")}
        if state:
            try:
                start_epoch, history, best = restore(state, model, opt, _resume_file(resume, out),
                                                     epochs)
            except ResumeError as exc:
                raise TrainError(str(exc)) from None
        net = model
        if d.world > 1:
            if dev.type == "cuda":
                net = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            net = nn.parallel.DistributedDataParallel(
                net, device_ids=[dev.index] if dev.type == "cuda" else None)
            model = net.module

        sampler = (DistributedSampler(train_set, d.world, d.rank, shuffle=True, seed=seed,
                                      drop_last=True) if d.world > 1 else None)
        gen = torch.Generator()
        loader = DataLoader(train_set, batch_size=batch_size, shuffle=sampler is None,
                            sampler=sampler, drop_last=len(train_set) >= batch_size * d.world,
                            collate_fn=collate, num_workers=workers, generator=gen,
                            pin_memory=dev.type == "cuda")
        val_loader = DataLoader(Subset(val_set, range(d.rank, len(val_set), d.world)),
                                batch_size=batch_size, collate_fn=collate, num_workers=workers)
        steps = len(loader) if max_steps is None else min(len(loader), max_steps)
        if steps == 0:
            raise TrainError(f"{data_dir.name}: {len(train_set)} training images are fewer than "
                             f"one batch of {batch_size} per process")
        total = epochs * steps
        cancelled = False
        cur_lr = lr

        for epoch in range(start_epoch, epochs):
            t0 = time.perf_counter()
            # Shuffling and augmentation are seeded per epoch, so a resumed run repeats exactly
            # the batches and crops the uninterrupted one would have drawn.
            if sampler is not None:
                sampler.set_epoch(epoch)
            gen.manual_seed(seed * 1000 + epoch)
            torch.manual_seed(seed * 1000 + epoch * 7919 + d.rank)
            def report(done: int, loss: float, lr_now: float, e: int = epoch) -> None:
                if progress is not None and d.main:
                    progress(TrainProgress(e + 1, epochs, done, steps, loss, lr_now))

            loss_sum, done, cur_lr, cancelled = _train_epoch(
                net, loader, opt, steps, lr, epoch * steps, total, instance, weight_t, dev,
                cancel, report)
            if cancelled:
                break
            average_buffers(model, d)
            cm = evaluate(model, val_loader, n_cls, dev, instance)
            cm.matrix = all_sum(cm.matrix, d).astype(np.int64)
            cm.unassigned = all_sum(cm.unassigned, d).astype(np.int64)
            scores = cm.scores()
            mean_loss = float(all_sum(np.array([loss_sum / max(done, 1)]), d)[0] / d.world)
            is_best = bool(np.isfinite(scores.miou) and scores.miou > best["miou"])
            seconds = time.perf_counter() - t0
            history.append({"epoch": epoch + 1, "loss": round(mean_loss, 5), "lr": cur_lr,
                            "val_mIoU": _r(scores.miou), "val_mAcc": _r(scores.macc),
                            "seconds": round(seconds, 1)})
            if is_best:
                best = {"epoch": epoch + 1, "miou": float(scores.miou), "macc": float(scores.macc)}
            if d.main:
                if is_best:
                    summary = {
                        "dataset": data_dir.name, "train_images": len(train_set),
                        "val_images": len(val_set), "epochs": epochs, "best_epoch": epoch + 1,
                        "val_mIoU": _r(scores.miou), "val_mAcc": _r(scores.macc),
                        "val_per_class": scores.to_dict(classes.names)["per_class"],
                        "optimizer": optimizer, "lr": lr, "batch_size": batch_size,
                        "processes": d.world, "crop": crop, "seed": seed,
                        "class_weights": class_weight,
                        "started_from": started_from.source if started_from else None,
                        "device": dev.type, "command": command,
                        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    }
                    conf, ent, shares = (None, None, []) if instance else \
                        validation_confidence(model, val_loader, dev)
                    summary["card"] = card_for_run(
                        data_dir, train_summary, len(val_set),
                        {"mIoU": scores.miou, "mAcc": scores.macc}, conf, ent, n_cls, shares)
                    meta = ckpt.CheckpointMeta(arch=model_name, config=config, classes=classes,
                                               mean=tuple(mean), std=tuple(std), trained=True,
                                               training=summary)
                    ckpt.save_checkpoint(out, model, meta)
                _save_resume(out, model, opt, epoch + 1, history, best, mean, std, model_name,
                             config, classes)
                if progress is not None:
                    progress(TrainProgress(epoch + 1, epochs, done, steps, mean_loss, cur_lr,
                                           val=scores, best=is_best, seconds=seconds))
        model.eval()
        return TrainResult(out=out, best_epoch=best["epoch"], best_miou=best["miou"],
                           best_macc=best["macc"], epochs_done=len(history), cancelled=cancelled,
                           history=history, model=model)
    finally:
        if d.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _start_norm(init) -> dict:
    """The input normalisation of the checkpoint a run starts from (its features expect it)."""
    from segstudio.models.checkpoint import CheckpointError, read_meta

    try:
        meta = read_meta(init)
    except CheckpointError as exc:
        raise TrainError(str(exc)) from None
    return {"mean": meta.mean, "std": meta.std}


def _datasets(data_dir: Path, instance: bool, aug: Augment, state: dict | None, n_cls: int,
              balance: bool, label_lut=None):
    """Train and val datasets, their collate function, the input normalisation (measured on
    the training images, or kept from the run being resumed) and the class weights
    (``label_lut``: the stored labels renumbered as read)."""
    from segstudio.models.checkpoint import IMAGENET_MEAN, IMAGENET_STD

    if instance:     # Mask R-CNN normalises its input itself
        return (VocInstances(data_dir, "train", augment=aug), VocInstances(data_dir, "val"),
                instance_collate, IMAGENET_MEAN, IMAGENET_STD, None)
    if state:
        mean, std = tuple(state["mean"]), tuple(state["std"])
    else:
        mean, std = channel_stats(VocSegmentation(data_dir, "train", mean=(0, 0, 0),
                                                  std=(1, 1, 1)))
    train_set = VocSegmentation(data_dir, "train", mean=mean, std=std, augment=aug,
                                num_classes=n_cls, label_lut=label_lut)
    val_set = VocSegmentation(data_dir, "val", mean=mean, std=std, num_classes=n_cls,
                              label_lut=label_lut)
    weights = median_frequency_weights(train_set, n_cls) if balance else None
    return train_set, val_set, pad_collate, mean, std, weights


def _train_epoch(net, loader, opt, steps, base_lr, first_step, total_steps, instance,
                 weight, dev, cancel, report) -> tuple[float, int, float, bool]:
    """One epoch of at most ``steps`` steps: (loss sum, steps done, last lr, cancelled)."""
    net.train()
    loss_sum, done, lr = 0.0, 0, base_lr
    for images, targets in loader:
        if done >= steps:
            break
        if cancel is not None and cancel():
            return loss_sum, done, lr, True
        lr = _poly(opt, base_lr, first_step + done, total_steps)
        try:
            if instance:
                loss = _instance_loss(net, images, targets, dev)
            else:
                output = net(images.to(dev, non_blocking=True))
                loss = _seg_loss(output, targets.to(dev, non_blocking=True), weight)
        except ValueError as exc:
            if "more than 1 value per channel" not in str(exc):
                raise
            # Batch norm after a global pooling (PSPNet's 1×1 bin, ASPP's image pooling) has
            # one value per channel in a batch of one image, and nothing to normalise.
            raise TrainError(f"a batch of {len(images)} image(s) is too small for this "
                             "network's batch norm after global pooling; use --batch-size 2 "
                             "or more (and at least 2 training images)") from None
        if not torch.isfinite(loss):
            raise TrainError(f"the loss became {loss.item()}; lower the learning rate "
                             f"(now {lr:g})")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += float(loss.detach())
        done += 1
        if report is not None:
            report(done, loss_sum / done, lr)
    return loss_sum, done, lr, False


def _r(v: float) -> float | None:
    return round(float(v), 5) if np.isfinite(v) else None


# -- resume files ----------------------------------------------------------------------------
def _save_resume(out: Path, model, opt, epoch, history, best, mean, std, arch, config,
                 classes: ClassSet) -> None:
    state = {"arch": arch, "config": config, "classes": classes.to_dict(), "epoch": epoch,
             "history": history, "best": best, "mean": list(mean), "std": list(std),
             "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "optimizer": opt.state_dict()}
    atomic_write_with(resume_path(out), lambda f: torch.save(state, f))


def _resume_file(resume, out: Path) -> str:
    return (resume_path(out) if resume is True else Path(resume)).name


def _load_resume(resume, out: Path, arch: str, config: str, classes: ClassSet) -> dict | None:
    if not resume:
        return None
    try:
        return read_resume(resume_path(out) if resume is True else Path(resume), arch, config,
                           classes)
    except ResumeError as exc:
        raise TrainError(str(exc)) from None
