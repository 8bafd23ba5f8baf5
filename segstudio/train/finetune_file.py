"""Fine-tuning a Hugging Face or smp model folder on a VOC tree, saved as the same kind of folder.

The network is the folder's own (its library's class, read from ``model.safetensors``), trained
as the Predictor runs it (padded to its stride, its scores resized to the labels) with the
training loop's steps, augmentation and validation. It keeps its classes and its input
normalisation: the tree's labels are matched to the network's classes by name (renumbered as
read when the tree orders them otherwise); pixels of a class the network does not have are left
out of the loss, and said so, since a folder's head cannot grow a class. The best epoch is written
with the library's ``save_pretrained`` (safetensors) into a new folder beside a ``segstudio.json``
sidecar naming the classes and normalisation and a record of the run; the folder appears only
when complete.

TorchScript and ONNX files hold a compiled graph, not a network that can be trained, and are
refused.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader

from segstudio.io.atomic import temp_prefix
from segstudio.train.dataset import Augment, DatasetError
from segstudio.train.loop import (DEFAULT_LR, TrainError, TrainProgress, TrainResult, _datasets,
                                  _train_epoch, evaluate, read_classes)

TRAINABLE = ("huggingface", "smp")
SIDECAR = "segstudio.json"
RECORD = "segstudio-training.json"         # how it was fine-tuned: source, data, scores
KEPT = ("preprocessor_config.json",)       # copied from the source folder as they are


def finetune_model_file(source: str | Path, data_dir: str | Path, out: str | Path, *,
                        epochs: int = 5, batch_size: int = 4, lr: float | None = None,
                        crop: int = 128, progress: Callable[[TrainProgress], None] | None = None,
                        cancel: Callable[[], bool] | None = None, device: str = "auto",
                        seed: int = 0, max_steps: int | None = None,
                        notice: Callable[[str], None] | None = None) -> TrainResult:
    """Fine-tune the model folder ``source`` on the VOC tree ``data_dir``; write the best epoch
    as a new folder ``out`` of the same format. ``out`` must not exist yet."""
    from segstudio.models.device import DeviceError, choose_device
    from segstudio.models.formats import TITLES, ModelFormatError, load_any
    from segstudio.models.formats.shown import ShownNet

    source, data_dir, out = Path(source), Path(data_dir), Path(out)
    if epochs < 1 or batch_size < 1 or crop < 16:
        raise TrainError("epochs and batch size must be at least 1, and the crop at least 16 px")
    if out.exists():
        raise TrainError(f"{out.name}: already exists; fine-tuning writes a new folder")
    if not data_dir.is_dir():
        raise TrainError(f"{data_dir}: no such dataset folder")
    try:
        found = load_any(source)
    except ModelFormatError as exc:
        raise TrainError(str(exc)) from None
    if found.format not in TRAINABLE:
        raise TrainError(f"{source.name}: a {TITLES[found.format]} model cannot be fine-tuned "
                         "here; fine-tuning takes Hugging Face and smp model folders (a "
                         "TorchScript or ONNX file holds a compiled graph, not a trainable "
                         "network)")
    if found.net.output != "logits":
        raise TrainError(f"{source.name}: the network outputs {found.net.output}, not logits; "
                         "fine-tuning needs its scores before any activation")
    classes = found.meta.classes
    label_lut, left_out = _by_name(read_classes(data_dir), classes, data_dir.name, source.name)
    if left_out and notice is not None:
        notice(f"{source.name} has no class {', '.join(left_out)}: those labels are left out "
               "of its fine-tuning")
    try:
        dev = choose_device(device)
    except DeviceError as exc:
        raise TrainError(str(exc)) from None
    mean, std = tuple(found.meta.mean), tuple(found.meta.std)
    try:
        train_set, val_set, collate, *_ = _datasets(
            data_dir, False, Augment(crop=crop, hflip=True), {"mean": mean, "std": std},
            len(classes), False, label_lut)
    except DatasetError as exc:
        raise TrainError(str(exc)) from None
    own = found.net.net.model if found.format == "huggingface" else found.net.net
    net = ShownNet(found.net, found.stride, found.input_size).to(dev)
    for p in net.parameters():
        p.requires_grad_(True)
    from segstudio.train.memory import require_step_memory, step_bytes

    require_step_memory(step_bytes(net, batch_size, crop),
                        f"fine-tuning {source.name} on batches of {batch_size} crops of {crop} px")
    lr = DEFAULT_LR["adamw"] / 10 if lr is None else float(lr)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=lr,
                            weight_decay=1e-4)
    gen = torch.Generator()
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, collate_fn=collate,
                        drop_last=len(train_set) >= batch_size, generator=gen)
    val_loader = DataLoader(val_set, batch_size=batch_size, collate_fn=collate)
    steps = len(loader) if max_steps is None else min(len(loader), max_steps)
    if steps == 0:
        raise TrainError(f"{data_dir.name}: {len(train_set)} training images are fewer than one "
                         f"batch of {batch_size}")
    total = epochs * steps
    best = {"epoch": 0, "miou": -1.0, "macc": float("nan"), "state": None}
    history, cancelled = [], False
    for epoch in range(epochs):
        t0 = time.perf_counter()
        gen.manual_seed(seed * 1000 + epoch)
        torch.manual_seed(seed * 1000 + epoch * 7919)

        def report(done: int, loss: float, lr_now: float, e: int = epoch) -> None:
            if progress is not None:
                progress(TrainProgress(e + 1, epochs, done, steps, loss, lr_now))

        loss_sum, done, cur_lr, cancelled = _train_epoch(
            net, loader, opt, steps, lr, epoch * steps, total, False, None, dev, cancel, report)
        if cancelled:
            break
        with torch.no_grad():
            scores = evaluate(net, val_loader, len(classes), dev).scores()
        seconds = time.perf_counter() - t0
        history.append({"epoch": epoch + 1, "loss": round(loss_sum / max(done, 1), 5),
                        "val_mIoU": float(scores.miou), "val_mAcc": float(scores.macc),
                        "seconds": round(seconds, 1)})
        is_best = bool(scores.miou == scores.miou and scores.miou > best["miou"])
        if is_best:
            best.update(epoch=epoch + 1, miou=float(scores.miou), macc=float(scores.macc),
                        state=copy.deepcopy({k: v.detach().cpu()
                                             for k, v in own.state_dict().items()}))
        if progress is not None:
            progress(TrainProgress(epoch + 1, epochs, done, steps, loss_sum / max(done, 1),
                                   cur_lr, val=scores, best=is_best, seconds=seconds))
    net.eval()
    if best["state"] is not None:
        own.load_state_dict(best["state"])
        _save_folder(own.cpu(), found.format, source, out, classes, mean, std,
                     {"fine_tuned_from": source.name, "dataset": data_dir.name,
                      "best_epoch": best["epoch"], "val_mIoU": round(best["miou"], 4),
                      "val_mAcc": round(best["macc"], 4), "history": history,
                      "classes_left_out": left_out})
    return TrainResult(out=out, best_epoch=best["epoch"], best_miou=best["miou"],
                       best_macc=best["macc"], epochs_done=len(history), cancelled=cancelled,
                       history=history, model=net)


def _by_name(tree, model, tree_name: str, model_name: str):
    """(a label look-up table from the tree's class numbers to the network's, or None when they
    already agree; the tree's classes the network lacks, whose pixels become void)."""
    import numpy as np

    from segstudio.train.dataset import IGNORE_INDEX

    if tuple(tree.names) == tuple(model.names):
        return None, []
    index = {name: i for i, name in enumerate(model.names)}
    if not set(tree.names) & set(index):
        raise TrainError(f"{tree_name} has the classes {', '.join(tree.names)} and {model_name} "
                         f"predicts {', '.join(model.names)}: no class in common to fine-tune "
                         "on")
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    for i, name in enumerate(tree.names):
        lut[i] = index.get(name, IGNORE_INDEX)
    return lut, [n for n in tree.names if n not in index]


def _save_folder(model, fmt: str, source: Path, out: Path, classes, mean, std,
                 training: dict) -> None:
    """``model`` saved by its library into a temporary folder beside ``out``, with the kept
    files of ``source`` and a sidecar, then renamed to ``out``: never a half-written folder."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(out.name), dir=out.parent))
    try:
        if fmt == "huggingface":
            model.save_pretrained(str(tmp), safe_serialization=True)
        else:
            model.save_pretrained(str(tmp))
        for name in KEPT:
            if (source / name).is_file():
                shutil.copyfile(source / name, tmp / name)
        facts = {"classes": [{"name": n, "color": list(c)}
                             for n, c in zip(classes.names, classes.colors)],
                 "mean": list(mean), "std": list(std)}
        (tmp / SIDECAR).write_text(json.dumps(facts, indent=1), encoding="utf-8")
        (tmp / RECORD).write_text(json.dumps(training, indent=1), encoding="utf-8")
        for stray in tmp.glob("*.bin"):          # only safetensors are ever read back
            stray.unlink()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
