"""Models from files segstudio did not write: one small interface, one module per format.

:func:`load_any` looks at a path, decides its format and returns a :class:`LoadedModel`: a
network that maps a normalised N×3×H×W batch to N×C×h×w class logits (h, w may be smaller
than the input: the Predictor resizes them), plus the facts needed to use it — classes,
mean/std, stride or fixed input size, which precisions and devices its runtime has, and which
views can look inside it. The Predictor uses only this interface, never a format directly.

What a file does not say comes from its sidecar (:mod:`segstudio.io.model_sidecar`) and from
the command line; both are checked like any untrusted input. Model files are untrusted too:
no format here unpickles Python objects or runs code shipped with a model.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from segstudio.core.classes import ClassSet, ClassSetError
from segstudio.io.decode_memory import NotEnoughMemory, require_memory
from segstudio.io.model_sidecar import ModelFacts, SidecarError, read_sidecar
from segstudio.models.checkpoint import IMAGENET_MEAN, IMAGENET_STD, CheckpointMeta
from segstudio.models.model_card import attach_sidecar

FORMATS = ("segstudio", "torchscript", "onnx", "huggingface", "smp")
TITLES = {"segstudio": "segstudio", "torchscript": "TorchScript", "onnx": "ONNX",
          "huggingface": "Hugging Face", "smp": "segmentation-models-pytorch"}
EXPECTED = ("a segstudio checkpoint or TorchScript archive (.pt), an ONNX model (.onnx), or a "
            "Hugging Face or smp model folder (config.json with model.safetensors)")
# Loading holds a model's bytes and the tensors built from them at once (ONNX Runtime and
# transformers both keep a copy while they build), so twice the file's size must be free.
LOAD_FACTOR = 2
PROBE_SIDE = 64                 # the zero image every network is tried on while loading
ODD_PROBE = (65, 67)            # ... and a size no stride divides
# What a LoadedModel's ``views`` may hold: the named layers can be hooked (activations,
# Grad-CAM, branch ablation).
PROBES = "probes"


class ModelFormatError(Exception):
    """A model file or folder that cannot be used: one sentence naming it and what was
    expected."""


@dataclass
class LoadedModel:
    """A network and its facts, whatever file it came from."""

    net: nn.Module                     # normalised N×3×H×W -> N×C×h×w logits
    meta: CheckpointMeta               # classes, mean/std (0..1 units), trained
    format: str                        # one of FORMATS
    source: Path                       # the file or folder the user named
    weights_file: Path                 # the bytes of the weights (keys the precision cache)
    stride: int | None = None          # pad the input to a multiple (None: the registry's)
    input_size: tuple[int, int] | None = None    # the only size the network takes (H, W)
    precisions: tuple[str, ...] = ("fp32", "bf16", "fp16")
    cpu_only: bool = False
    views: frozenset[str] = field(default_factory=frozenset)

    @property
    def title(self) -> str:
        return self.source.name


def load_any(path: str | Path, overrides: ModelFacts | None = None) -> LoadedModel:
    """The model in ``path``, whatever its format; ``overrides`` (from the command line) win
    over its sidecar, which wins over what the file itself says."""
    path = Path(path)
    name = path.name or str(path)
    if not path.exists():
        raise ModelFormatError(f"{name}: no such model file or folder")
    kind = detect(path)
    check_memory(path)
    overrides = overrides or ModelFacts()
    if kind == "segstudio":
        from segstudio.models.formats import checkpoint as module
    elif kind == "torchscript":
        from segstudio.models.formats import torchscript as module
    elif kind == "onnx":
        from segstudio.models.formats import onnx as module
    elif kind == "huggingface":
        from segstudio.models.formats import huggingface as module
    else:
        from segstudio.models.formats import smp as module
    try:
        return module.load(path, overrides)
    except SidecarError as exc:
        raise ModelFormatError(str(exc)) from None


def detect(path: Path) -> str:
    """The format of ``path`` from its structure (never by running it)."""
    name = path.name
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise ModelFormatError(f"{name}: a folder without config.json; expected {EXPECTED}")
        from segstudio.models.formats.folders import folder_kind

        return folder_kind(path)
    if not path.is_file():
        raise ModelFormatError(f"{name}: not a regular file; expected {EXPECTED}")
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise ModelFormatError(f"{name}: cannot read ({exc.strerror or exc})") from None
    if not head:
        raise ModelFormatError(f"{name}: the file is empty (0 bytes); expected {EXPECTED}")
    try:
        archive = zipfile.is_zipfile(path)
    except Exception:   # noqa: BLE001 - is_zipfile reads the end of the file; damage is "no"
        archive = False
    if archive:
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except Exception as exc:   # noqa: BLE001 - a damaged zip fails in a dozen ways
            raise ModelFormatError(f"{name}: damaged archive ({first_line(exc)}); expected "
                                   f"{EXPECTED}") from None
        # A TorchScript archive carries its compiled code; a torch.save file only data.
        if any("/code/" in n for n in names) or any(n.endswith("constants.pkl") for n in names):
            return "torchscript"
        return "segstudio"
    if head[:1] == b"\x80":
        raise ModelFormatError(
            f"{name}: a Python pickle; segstudio never unpickles model files (unpickling runs "
            f"whatever code the file names). Save the network with torch.jit.save or export "
            f"it to ONNX; expected {EXPECTED}")
    if path.suffix.lower() == ".onnx":
        return "onnx"
    raise ModelFormatError(f"{name}: not a model file segstudio reads; expected {EXPECTED}")


def check_memory(path: Path) -> None:
    """Refuse a model whose loading would not fit in the memory free now."""
    try:
        if path.is_dir():
            size = sum(p.stat().st_size for p in path.glob("*.safetensors"))
        else:
            size = path.stat().st_size
    except OSError:
        return                       # the format's loader says what is wrong with the file
    try:
        require_memory(LOAD_FACTOR * size, "loading it")
    except NotEnoughMemory as exc:
        raise ModelFormatError(f"{path.name}: {exc}; close other programs and load it "
                               "again") from None


# -- shared by the format modules -----------------------------------------------------------
class AsLogits(nn.Module):
    """A network's output as N×C×h×w logits, whatever it returns.

    Dicts (``{"out": …}``) and tuples give their main output; probabilities become their
    logarithm and a label map (N×h×w of class indices) its one-hot image, so that the
    Predictor's softmax gives back the network's own answer.
    """

    def __init__(self, net: nn.Module, output: str, num_classes: int | None) -> None:
        super().__init__()
        self.net = net
        self.output = output
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return to_logits(self.net(x), self.output, self.num_classes)


def main_output(out) -> torch.Tensor:
    """The segmentation output of a network's return value."""
    if isinstance(out, dict):
        if "out" in out:
            out = out["out"]
        elif "logits" in out:
            out = out["logits"]
        elif len(out) == 1:
            out = next(iter(out.values()))
        else:
            raise ValueError(f"returned a dict with keys {sorted(map(str, out))[:6]}; expected "
                             "'out', 'logits' or a single output")
    elif isinstance(out, (tuple, list)):
        if not out:
            raise ValueError("returned an empty tuple")
        out = out[0]
    elif hasattr(out, "logits"):                       # a transformers ModelOutput
        out = out.logits
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"returned {type(out).__name__}, not a tensor")
    return out


def to_logits(out, output: str, num_classes: int | None) -> torch.Tensor:
    """``out`` (a network's return value of kind ``output``) as N×C×h×w float logits."""
    out = main_output(out)
    if output == "labels":
        if out.dim() == 4 and out.shape[1] == 1:
            out = out[:, 0]
        if out.dim() != 3 or out.is_floating_point() and not torch.equal(out, out.round()):
            raise ValueError(f"returned shape {tuple(out.shape)} of {out.dtype}; a label "
                             "output must be N×H×W class indices")
        labels = out.long()
        n = int(num_classes or 0)
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n):
            raise ValueError(f"returned class {int(labels.max())} of {n} named classes")
        one_hot = torch.nn.functional.one_hot(labels, n).permute(0, 3, 1, 2)
        return one_hot.float().mul_(40.0)       # softmax of 40 vs 0: certain, but finite
    if out.dim() != 4:
        raise ValueError(f"returned shape {tuple(out.shape)}; expected N×C×H×W scores")
    if output == "probabilities":
        return out.float().clamp_min(1e-12).log()
    return out


def probe(net: nn.Module, name: str, stride: int | None,
          input_size: tuple[int, int] | None) -> tuple[torch.Tensor, int | None]:
    """The network's logits for a zero image (a check that it runs at all, and how many
    channels it gives) and the stride to pad inputs to, with every failure as one sentence
    naming the file.

    A network given neither stride nor input size is tried on an odd size first: one that
    takes it runs on every image as it is, as its own library would run it; one that fails
    there but runs on a multiple of 32 (skip connections that must line up) is padded to 32.
    """
    if input_size is None and stride is None:
        try:
            return _probe(net, name, ODD_PROBE, False), 1
        except ModelFormatError:
            return _probe(net, name, (PROBE_SIDE, PROBE_SIDE), True), 32
    if input_size is not None:
        size = input_size
    else:
        side = max(PROBE_SIDE, max(1, stride) * 2)
        size = (side, side)
    return _probe(net, name, size, True), stride


def _probe(net: nn.Module, name: str, size: tuple[int, int], hint: bool) -> torch.Tensor:
    h, w = size
    try:
        with torch.inference_mode():
            return net(torch.zeros(1, 3, h, w))
    except ValueError as exc:
        raise ModelFormatError(f"{name}: the network {exc}") from None
    except Exception as exc:   # noqa: BLE001 - a foreign runtime raises its own types
        first = first_line(exc)
        hint = "; if it takes one input size only, give \"input_size\" in its sidecar" \
            if hint else ""
        raise ModelFormatError(f"{name}: the network failed on a {w}×{h} test image "
                               f"({first}){hint}") from None


def finish(net: nn.Module, *, source: Path, weights_file: Path, fmt: str, facts: ModelFacts,
           file_classes: ClassSet | None = None, file_mean=None, file_std=None,
           stride: int | None = None, input_size: tuple[int, int] | None = None,
           precisions: tuple[str, ...] = ("fp32", "bf16", "fp16"), cpu_only: bool = False,
           views: frozenset[str] = frozenset(), training: dict | None = None,
           arch: str | None = None) -> LoadedModel:
    """The LoadedModel of ``net``: facts (overrides and sidecar) over what the file said, its
    output made logits, and one test run that proves the output fits the classes."""
    name = source.name
    output = facts.output or "logits"
    classes = facts.classes or file_classes
    stride = facts.stride or stride
    input_size = facts.input_size or input_size
    if output == "labels" and classes is None:
        raise ModelFormatError(f"{name}: the network outputs labels, so it cannot say how many "
                               "classes it has; name them in its sidecar or with --classes")
    wrapped = AsLogits(net.eval(), output, len(classes) if classes else None).eval()
    logits, stride = probe(wrapped, name, stride, input_size)
    channels = int(logits.shape[1])
    if classes is None:
        try:
            classes = ClassSet([f"class {i}" for i in range(channels)], title=source.stem)
        except ClassSetError as exc:
            raise ModelFormatError(f"{name}: the network gives {channels} output channels: "
                                   f"{exc}") from None
    elif channels != len(classes):
        said = ("its sidecar or --classes" if facts.classes is not None else "the file")
        raise ModelFormatError(
            f"{name}: the network gives {channels} output channel(s) but {said} names "
            f"{len(classes)} classes; expected one channel per class")
    if not torch.isfinite(logits).all():
        raise ModelFormatError(f"{name}: the network returns NaN or infinite scores for a "
                               "plain test image; the file is damaged or its weights diverged")
    summary = {"format": fmt, "file": name, **(training or {})}
    attach_sidecar(summary, source)     # a card measured with `segstudio card`, if there is one
    meta = CheckpointMeta(arch=arch or TITLES[fmt], config=name, classes=classes,
                          mean=facts.mean or file_mean or IMAGENET_MEAN,
                          std=facts.std or file_std or IMAGENET_STD, trained=True,
                          training=summary)
    return LoadedModel(net=wrapped, meta=meta, format=fmt, source=source,
                       weights_file=weights_file, stride=stride, input_size=input_size,
                       precisions=precisions, cpu_only=cpu_only, views=views)


def check_finite_weights(net: nn.Module, name: str) -> None:
    """Refuse weights holding NaN or infinity (as a segstudio checkpoint's are refused)."""
    from segstudio.models.checkpoint import CheckpointError, check_finite

    try:
        check_finite(dict(net.state_dict()), name)
    except CheckpointError as exc:
        raise ModelFormatError(str(exc)) from None


def first_line(exc: BaseException) -> str:
    """An exception as one short line: its first, or for a TorchScript error (whose first
    lines are a traceback of the network's code) the error it ends with."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    lines = text.splitlines()
    if "TorchScript interpreter" in lines[0]:
        for i in range(len(lines) - 1, -1, -1):
            if lines[i].startswith("builtins.") or lines[i].startswith("RuntimeError: "):
                return lines[i].split(": ", 1)[-1][:200]
    return lines[0][:200]
