"""The Predictor: one image in, per-pixel class probabilities and labels out.

It owns everything between a picture and a network: normalisation, device and precision,
padding to the network's stride, and tiling of images too large to run in one piece. The GUI
runs it on a worker thread and may cancel it between tiles.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segstudio.core.classes import ClassSet
from segstudio.models.checkpoint import (CheckpointMeta, IMAGENET_MEAN, IMAGENET_STD,
                                         build_model, load_checkpoint)
from segstudio.models.device import (DTYPES, auto_candidate, choose_device, choose_precision,
                                     default_num_threads, describe)
from segstudio.models.instance_paste import (detect_instances, paint_maps,
                                             semantic_from_instances)
from segstudio.models.precision import (Calibration, CalibrationCache, calibration_sample,
                                        checkpoint_fingerprint, decide, machine_signature)

__all__ = ["Prediction", "PredictionCancelled", "PredictorError", "Predictor", "choose_device",
           "semantic_from_instances"]

DEFAULT_PAD_MULTIPLE = 32


class PredictionCancelled(Exception):
    """``cancel()`` returned True; raised between tiles, so no partial result escapes."""


class PredictorError(ValueError):
    """An input the Predictor cannot use (wrong shape or type), with the reason."""


@dataclass
class Prediction:
    """A network's answer for one image, at the image's own size."""

    probabilities: np.ndarray  # C×H×W float32, softmax over classes
    labels: np.ndarray  # H×W uint8, argmax of probabilities
    instances: np.ndarray | None  # H×W uint16 instance ids (0 = none), Mask R-CNN only
    device: str
    precision: str
    trained: bool
    notes: list[str] = field(default_factory=list)
    precision_note: str = ""  # why this precision: hand-picked, or what calibration measured
    # Mask R-CNN only: (class, score) of instance k at index k - 1
    objects: list[tuple[int, float]] | None = None
    # How far the input lies from the training data (models.domain.DomainFinding), when the
    # caller measured it; None when not measured or the checkpoint has no model card.
    domain: object | None = None

    def confidence(self) -> np.ndarray:
        """H×W probability of the chosen class."""
        return self.probabilities.max(axis=0)

    def entropy(self) -> np.ndarray:
        """H×W Shannon entropy of the class distribution in nats (0 = certain, ln C = uniform)."""
        # One class plane at a time: a C×H×W temporary would double the memory of a big image.
        result = np.zeros(self.probabilities.shape[1:], np.float32)
        for plane in self.probabilities:
            result -= plane * np.log(np.maximum(plane, 1e-12))
        return result


def _spec_facts(arch: str) -> tuple[int, bool]:
    """(pad multiple, is instance model) for ``arch``.

    A registered network is padded to its output stride, so that its coarsest score map lines
    up with the image; each of them takes any size beyond that (U-Net pads itself to its depth,
    SegNet unpools to the sizes its encoder saw), which the architecture tests check at odd
    sizes. Padding further costs time for nothing: 520 px padded to 544 is 9 % more pixels.
    An unregistered network is padded to 32, the total downsampling of every VGG, ResNet and
    MobileNet trunk, since nothing is known about it.
    """
    try:
        from segstudio.models import registry

        spec = registry.get_spec(arch)
    except (ImportError, KeyError, ValueError):
        return DEFAULT_PAD_MULTIPLE, False
    stride = int(getattr(spec, "output_stride", 1) or 1)
    return max(1, stride), bool(getattr(spec, "instance", False))


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Evenly spaced tile origins covering ``length`` with at least ``overlap`` shared pixels."""
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def _ramp(size: int, overlap: int, before: bool, after: bool) -> np.ndarray:
    """1-D blending weights of a tile side; sides shared with a neighbour ramp up from zero.

    A tile's outer pixels saw zero padding where the real image continues, so the outer quarter
    of each shared overlap gets no weight at all and the rest ramps linearly to full weight.
    """
    w = np.ones(size, np.float32)
    margin = overlap // 4
    d = np.arange(size, dtype=np.float32)
    ramp = np.clip((d - margin + 1) / max(1, overlap - 2 * margin), 0.0, 1.0)
    if before:
        w = np.minimum(w, ramp)
    if after:
        w = np.minimum(w, ramp[::-1])
    return w


class Predictor:
    """Runs a segmentation network on images of any size.

    ``device`` and ``precision`` accept ``"auto"``; ``num_threads`` defaults to all cores but
    one, so the GUI thread stays responsive while a prediction runs. ``"auto"`` precision
    starts in fp32 and, where the device has a native reduced precision, measures it against
    fp32 on the first image (or takes the verdict cached for this checkpoint and machine): see
    :mod:`segstudio.models.precision`. ``source`` is the checkpoint file the network came from,
    which keys that cache. With ``defer_calibration`` the first image is predicted in fp32 at
    once and only kept as the calibration sample; :meth:`calibrate` then measures on it (the
    GUI does so after showing the first result), and the verdict applies from the next image.

    A network from a model file of another format comes through :meth:`from_model`, with the
    facts its :class:`~segstudio.models.formats.LoadedModel` states: its stride or the one
    input size it takes, and the precisions and devices its runtime has.
    """

    def __init__(self, model: nn.Module, meta: CheckpointMeta, *, device: str = "auto",
                 precision: str = "auto", tile_size: int = 1024, tile_overlap: int = 64,
                 num_threads: int | None = None, source: str | Path | None = None,
                 calibration_cache: CalibrationCache | None = None, stride: int | None = None,
                 input_size: tuple[int, int] | None = None,
                 precisions: tuple[str, ...] | None = None, cpu_only: bool = False,
                 foreign: bool = False, defer_calibration: bool = False) -> None:
        if tile_overlap < 0 or tile_size < 64 or tile_size <= 2 * tile_overlap:
            raise PredictorError(f"tile size {tile_size} with overlap {tile_overlap}: the tile "
                                 "must be at least 64 px and more than twice the overlap")
        self.meta = meta
        self.device = choose_device(device)
        self._runtime_note = ""
        if cpu_only and self.device.type != "cpu":
            self._runtime_note = f"runs on the CPU: its runtime has no {self.device.type}"
            self.device = torch.device("cpu")
        self.requested_precision = choose_precision(precision, self.device)
        self._fp32_only = precisions is not None and tuple(precisions) == ("fp32",)
        self.source = Path(source) if source is not None else None
        self.calibration: Calibration | None = None
        self._calibration_cache = calibration_cache
        self._pending_candidate: str | None = None
        self.defer_calibration = bool(defer_calibration)
        self._deferred_sample: np.ndarray | None = None
        self.precision, self.precision_note = self._initial_precision(meta)
        self.tile_size = int(tile_size)
        self.tile_overlap = int(tile_overlap)
        torch.set_num_threads(num_threads or default_num_threads())
        self.pad_multiple, self.instance = _spec_facts(meta.arch)
        self.input_size = tuple(input_size) if input_size else None
        self.foreign = foreign
        if foreign:       # a file of another format: its own facts, not the registry's
            self.pad_multiple, self.instance = max(1, int(stride or DEFAULT_PAD_MULTIPLE)), False
        if self.input_size:
            self.pad_multiple = 1                     # resized to its size: nothing to pad
        self._fallback_note: str | None = None
        model = model.eval().to(self.device)
        # Convolutional networks run faster in channels-last; a network from a file that has
        # linear layers (a transformer's token mixing, whose reshapes run slower on it) or no
        # torch weights at all (ONNX) keeps the layout its library gives it.
        self.channels_last = not self.instance and (not foreign or _convolutional(model))
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self._mean = torch.tensor(meta.mean, dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(meta.std, dtype=torch.float32).view(1, 3, 1, 1)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | Path, **kw) -> "Predictor":
        """A Predictor for the network and metadata stored in checkpoint ``path``."""
        model, meta = load_checkpoint(path, device="cpu")
        return cls(model, meta, source=path, **kw)

    @classmethod
    def from_model(cls, loaded, **kw) -> "Predictor":
        """A Predictor for a :class:`~segstudio.models.formats.LoadedModel` (any format)."""
        foreign = loaded.format != "segstudio"      # a checkpoint: the registry knows its facts
        return cls(loaded.net, loaded.meta, source=loaded.weights_file, stride=loaded.stride,
                   input_size=loaded.input_size, precisions=tuple(loaded.precisions),
                   cpu_only=loaded.cpu_only, foreign=foreign, **kw)

    @classmethod
    def untrained(cls, arch: str, classes: ClassSet, config: str = "lite", **kw) -> "Predictor":
        """A Predictor with random weights, marked untrained (for trying the app without data)."""
        model = build_model(arch, len(classes), config)
        meta = CheckpointMeta(arch=arch, config=config, classes=classes, mean=IMAGENET_MEAN,
                              std=IMAGENET_STD, trained=False, training={})
        return cls(model, meta, **kw)

    @property
    def trained(self) -> bool:
        return bool(self.meta.trained)

    # -- precision ---------------------------------------------------------------------------
    def _initial_precision(self, meta: CheckpointMeta) -> tuple[str, str]:
        """The precision to start with, and why; ``"auto"`` may change it on the first image."""
        if self._fp32_only:
            return "fp32", "fp32: its runtime computes in fp32 only" + (
                f"; {self._runtime_note}" if self._runtime_note else "")
        if self.requested_precision != "auto":
            return self.requested_precision, f"{self.requested_precision}: chosen by hand"
        candidate = auto_candidate(self.device)
        if candidate is None:
            why = ("this CPU has no native bf16 units" if self.device.type == "cpu"
                   else f"no reduced precision is used on {self.device.type}")
            return "fp32", f"fp32: {why}"
        if not meta.trained:
            return "fp32", "fp32: an untrained network has no answer worth calibrating against"
        self._pending_candidate = candidate
        when = "after" if self.defer_calibration else "on"
        return "fp32", f"fp32 until {candidate} is measured against it {when} the first image"

    def _calibration_key(self, candidate: str) -> str | None:
        """The cache key of this checkpoint, candidate and machine (None: not cacheable)."""
        if self.source is None:
            return None
        try:
            return " | ".join((checkpoint_fingerprint(self.source), candidate,
                               machine_signature(describe(self.device),
                                                 torch.get_num_threads())))
        except OSError:
            return None

    def _settle_auto_precision(self, rgb: np.ndarray) -> None:
        """Calibrate the pending candidate (or take the cached verdict) and keep the winner.

        Deferred, a verdict not in the cache is left to :meth:`calibrate`: ``rgb`` is kept as
        its sample and this image runs in fp32.
        """
        candidate = self._pending_candidate
        cache = self._calibration_cache or CalibrationCache()
        key = self._calibration_key(candidate)
        found = cache.get(key) if key else None
        if found is None:
            sample = calibration_sample(rgb)
            if self.defer_calibration:
                self._deferred_sample = np.array(sample, copy=True)
                self.precision_note = (f"fp32 on the first image, shown at once; {candidate} "
                                       "is measured against fp32 after it")
                return
            found = self._measure(candidate, sample)
            if key:
                cache.put(key, found)
        self._pending_candidate = None
        self.calibration = found
        self.precision, self.precision_note = found.chosen, found.describe()

    def _measure(self, candidate: str, sample: np.ndarray) -> Calibration:
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        return decide(candidate, lambda p: self._labels_in(sample, p),
                      f"{sample.shape[1]}×{sample.shape[0]}", sync=sync)

    @property
    def calibration_due(self) -> bool:
        """A deferred calibration waits for :meth:`calibrate` (its sample is kept)."""
        return self._deferred_sample is not None

    def calibrate(self) -> Calibration | None:
        """Run the deferred calibration on the kept sample and keep its verdict, cached as
        without deferral; None when none is due. The same rules decide: only when it runs
        differs. The precision chosen applies to the next :meth:`predict`."""
        sample, self._deferred_sample = self._deferred_sample, None
        if sample is None or self._pending_candidate is None:
            return None
        candidate, self._pending_candidate = self._pending_candidate, None
        with torch.inference_mode():
            found = self._measure(candidate, sample)
        key = self._calibration_key(candidate)
        if key:
            (self._calibration_cache or CalibrationCache()).put(key, found)
        self.calibration = found
        self.precision, self.precision_note = found.chosen, found.describe()
        return found

    def _labels_in(self, rgb: np.ndarray, precision: str) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels (and instance ids) of one untiled forward pass at ``precision``."""
        kept, self.precision = self.precision, precision
        try:
            if self.instance:
                probs, labels, ids, _ = self._predict_instances(rgb)
                return (_argmax0(probs.numpy()) if labels is None else labels), ids
            return _argmax0(self._forward(self._to_input(rgb))[0].numpy()), None
        finally:
            self.precision = kept

    @property
    def num_classes(self) -> int:
        return len(self.meta.classes)

    # -- prediction --------------------------------------------------------------------------
    def predict(self, image: np.ndarray, *,
                cancel: Callable[[], bool] | None = None) -> Prediction:
        """Segment an H×W×3 uint8 RGB image (or H×W grey); ``cancel`` is polled between tiles."""
        rgb = _as_rgb8(image)
        notes: list[str] = []
        with torch.inference_mode():
            if self._pending_candidate is not None and self._deferred_sample is None:
                self._settle_auto_precision(rgb)
            if self.instance:
                _check_cancel(cancel)
                probs, labels, instances, objects = self._predict_instances(rgb)
            else:
                logits = self._predict_within_memory(rgb, cancel, notes)
                # The labels are the argmax of the network's own scores: after the softmax,
                # two close scores can round to one probability, and the tie would go to the
                # lower class where the network itself said the other.
                labels = _argmax0(logits.numpy())
                probs = _softmax_(logits)
                instances, objects = None, None
        if self._fallback_note and self._fallback_note not in notes:
            notes.append(self._fallback_note)
        probs_np = probs.numpy()
        if labels is None:
            labels = _argmax0(probs_np)
        return Prediction(probabilities=probs_np, labels=labels, instances=instances,
                          device=describe(self.device), precision=self.precision,
                          trained=self.trained, notes=notes, objects=objects,
                          precision_note=self.precision_note)

    def _predict_within_memory(self, rgb: np.ndarray, cancel, notes: list[str]) -> torch.Tensor:
        """Logits C×H×W of the image, halving the tile size each time the device runs out of
        memory.

        The smaller tile size is kept: the next image of the same size would fail the same way.
        """
        floor = max(64, 4 * self.tile_overlap)
        while True:
            kept = len(notes)
            try:
                return self._predict_semantic(rgb, cancel, notes)
            except torch.OutOfMemoryError:
                del notes[kept:]
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                tried = min(self.tile_size, max(rgb.shape[:2]))
                if tried <= floor:
                    raise PredictorError(
                        f"{describe(self.device)} ran out of memory even with {tried} px tiles; "
                        "close other programs using it or predict on the CPU") from None
                self.tile_size = max(floor, tried // 2)
                notes.append(f"{describe(self.device)} ran out of memory; tile size lowered "
                             f"to {self.tile_size} px")
            except RuntimeError as exc:
                text = str(exc)
                if "CUDA error" not in text and "device" not in text.lower():
                    raise
                # A device that failed or disappeared mid-run: say which, and what to do.
                raise PredictorError(f"{describe(self.device)} failed while predicting "
                                     f"({text.splitlines()[0][:160]}); choose the CPU in the "
                                     "Model panel and run again") from None

    def _to_input(self, rgb: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0)
        x = x.to(torch.float32).div_(255.0)
        return x.sub_(self._mean).div_(self._std)

    def _predict_semantic(self, rgb: np.ndarray, cancel, notes: list[str]) -> torch.Tensor:
        """Logits C×H×W of the image, tiles blended by their ramps."""
        h, w = rgb.shape[:2]
        x = self._to_input(rgb)
        tile, overlap = self.tile_size, self.tile_overlap
        ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
        if len(ys) == 1 and len(xs) == 1:
            _check_cancel(cancel)
            return self._forward(x)[0]
        notes.append(f"tiled {len(ys)}×{len(xs)} with {overlap} px overlap")
        acc = torch.zeros((self.num_classes, h, w), dtype=torch.float32)
        weight = torch.zeros((h, w), dtype=torch.float32)
        for iy, y0 in enumerate(ys):
            for ix, x0 in enumerate(xs):
                _check_cancel(cancel)
                th, tw = min(tile, h), min(tile, w)
                logits = self._forward(x[:, :, y0:y0 + th, x0:x0 + tw])[0]
                wy = _ramp(th, overlap, before=iy > 0, after=iy < len(ys) - 1)
                wx = _ramp(tw, overlap, before=ix > 0, after=ix < len(xs) - 1)
                wt = torch.from_numpy(np.outer(wy, wx))
                acc[:, y0:y0 + th, x0:x0 + tw].addcmul_(logits, wt)
                weight[y0:y0 + th, x0:x0 + tw].add_(wt)
        # Every pixel has positive weight (margins never cover a whole overlap), so no zeros.
        return acc.div_(weight)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits 1×C×h×w (float32, CPU) for an input 1×3×h×w, padded to the network's stride."""
        h, w = x.shape[-2:]
        m = self.pad_multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        x = x.to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        size = x.shape[-2:]
        if self.input_size and tuple(size) != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False)
        logits = self._run(x)
        if logits.shape[-2:] != size:
            # A coarser score map (or one at the network's own input size) is resized to the
            # input bilinearly, without aligned corners, as the networks' libraries do.
            logits = F.interpolate(logits.float(), size=size, mode="bilinear",
                                   align_corners=False)
        # Back to the standard layout: blending and softmax then walk contiguous class planes.
        return logits[:, :, :h, :w].float().cpu().contiguous()

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        if not self.foreign:
            return self._run_precision(x)
        try:
            return self._run_precision(x)
        except Exception as exc:   # noqa: BLE001 - a foreign runtime raises its own types
            if isinstance(exc, (torch.OutOfMemoryError, PredictorError)):
                raise
            # A foreign network's own failure (a size it cannot take, its runtime's error):
            # the file's name and the first line, not a traceback from inside the network.
            from segstudio.models.formats import first_line

            first = first_line(exc)
            raise PredictorError(f"{self.meta.config}: the network failed on a "
                                 f"{x.shape[-1]}×{x.shape[-2]} input ({first})") from None

    def _run_precision(self, x: torch.Tensor) -> torch.Tensor:
        if self.precision == "fp32":
            return self._out(self.model(x))
        try:
            with torch.autocast(self.device.type, dtype=DTYPES[self.precision]):
                logits = self._out(self.model(x))
            if torch.isfinite(logits).all():
                return logits
            reason = f"{self.precision} overflowed"
        except RuntimeError as exc:
            if isinstance(exc, torch.OutOfMemoryError):
                raise
            reason = f"{self.precision} unsupported here: {str(exc).splitlines()[0][:120]}"
        # Keep fp32 for the rest of this Predictor's life: the failure would only repeat.
        self._fallback_note = f"fell back to fp32 ({reason})"
        self.precision = "fp32"
        return self._out(self.model(x))

    def _out(self, output) -> torch.Tensor:
        logits = output["out"] if isinstance(output, dict) else output
        if logits.dim() != 4 or logits.shape[1] != self.num_classes:
            raise PredictorError(f"network {self.meta.arch!r} returned logits of shape "
                                 f"{tuple(logits.shape)}; expected N×{self.num_classes}×H×W")
        return logits

    def _predict_instances(self, rgb: np.ndarray) -> tuple[
            torch.Tensor, np.ndarray | None, np.ndarray, list[tuple[int, float]]]:
        """Probabilities, labels (None: not computed), instance map and objects."""
        x = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)
        autocast = (torch.autocast(self.device.type, dtype=DTYPES[self.precision])
                    if self.precision != "fp32" else contextlib.nullcontext())
        with autocast:
            # Only the shown detections are pasted, each on its box; torchvision's forward
            # would paste all of them onto whole-image masks first.
            found = detect_instances(self.model, x.to(self.device), self.num_classes)
            if found is None:
                detections = self.model([x.to(self.device)])[0]
        if found is not None:
            return paint_maps(*found, self.num_classes, rgb.shape[:2])
        detections = {k: v.float().cpu() if v.is_floating_point() else v.cpu()
                      for k, v in detections.items()}
        probs, instances, objects = semantic_from_instances(detections, self.num_classes,
                                                            rgb.shape[:2])
        return probs, None, instances, objects


def _convolutional(model: nn.Module) -> bool:
    """True for a network of convolutions without linear layers (TorchScript modules name
    their original class in ``original_name``)."""
    kinds = {getattr(m, "original_name", None) if isinstance(m, torch.jit.ScriptModule)
             else type(m).__name__ for m in model.modules()}
    has_conv = any(p.dim() == 4 for p in model.parameters())
    return has_conv and not kinds & {"Linear", "MultiheadAttention",
                                     "NonDynamicallyQuantizableLinear"}


def _softmax_(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over dim 0 in place: a 4096² image with many classes has no room for a copy.

    The max and the sum run plane by plane, as in :func:`_argmax0`, for the same reason.
    """
    top = logits[0].clone()
    for plane in logits[1:]:
        torch.maximum(top, plane, out=top)
    logits.sub_(top).exp_()
    total = logits[0].clone()
    for plane in logits[1:]:
        total.add_(plane)
    return logits.div_(total)


def _argmax0(probs: np.ndarray) -> np.ndarray:
    """``probs.argmax(axis=0)`` as uint8, one class at a time.

    Reducing over the outermost axis of a C×H×W array walks memory with a stride of H×W, which
    takes seconds for a 4096² image; C passes over contiguous planes take a fraction of that.
    """
    best = probs[0].copy()
    labels = np.zeros(best.shape, np.uint8)
    for c in range(1, probs.shape[0]):
        better = probs[c] > best  # strict, so ties keep the lower class, as argmax does
        labels[better] = c
        np.maximum(best, probs[c], out=best)
    return labels


def _check_cancel(cancel: Callable[[], bool] | None) -> None:
    if cancel is not None and cancel():
        raise PredictionCancelled("prediction cancelled")


def _as_rgb8(image: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 from RGB, grey (H×W or H×W×1) or RGBA (alpha dropped) uint8 arrays."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise PredictorError(f"image has dtype {image.dtype}; the Predictor takes uint8 pixels "
                             "(convert with ImageData.to_rgb8())")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or min(image.shape[:2]) < 1:
        raise PredictorError(f"image has shape {image.shape}; expected H×W, H×W×3 or H×W×4")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    image = image[:, :, :3]
    # torch.from_numpy needs a writable array; decoded images are often read-only views.
    if not image.flags.writeable or not image.flags.c_contiguous:
        image = np.array(image, order="C")
    return image
