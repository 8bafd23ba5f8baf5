"""What the prediction becomes when a branch's output is replaced, and by what.

Zeroing a branch (:func:`segstudio.explain.probes.ablate`) feeds the next layer an input it never
saw in training: branch outputs follow a ReLU and are positive on average, so zero is off their
distribution, and part of the damage is that surprise rather than the missing information. Two
replacements stay on the distribution:

- ``mean``: the branch's per-channel spatial mean, averaged over reference images, broadcast to
  the output's shape; the branch then reports an average scene, nothing about this one;
- ``swap``: the branch's output computed on another image of the same size; the branch then
  reports that image. In the boat-or-car scenes the other image is the same scene with the other
  surface (water ↔ road, :func:`scene_pair`), so only the distant evidence changes.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from segstudio.explain.probes import (ProbeError, _zeros_like, feature_tensor, find_module,
                                      predict_labels)

__all__ = ["KINDS", "REFERENCE", "check_names", "record", "replaced_labels", "Recorder",
           "Replacement", "channel_means", "reference_scenes", "scene_pair",
           "context_counterfactuals", "lesson_table"]

KINDS = ("zero", "mean", "swap")
#: The default reference of ``mean``: scenes of the context demo's held-out set (seed 1,
#: 256 px), from index 100 on, past the 100 scenes the bundled models are scored on.
REFERENCE = {"seed": 1, "start": 100, "count": 16, "size": 256}


def check_names(branches: Mapping[str, str], names: Iterable[str]) -> list[str]:
    """``names`` without repeats, or a :class:`ProbeError` listing the model's branches."""
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in branches]
    if unknown:
        raise ProbeError(f"no branch {', '.join(map(repr, unknown))}; this model's branches: "
                         f"{', '.join(branches)}")
    return names


class Recorder:
    """Records every output of the named branches while active (one entry per forward pass,
    in order), detached: ``with Recorder(model, {"psp.bin1": path}) as rec: ...``."""

    def __init__(self, model: nn.Module, branches: Mapping[str, str]):
        self.modules = {name: find_module(model, path) for name, path in branches.items()}
        self.outputs: dict[str, list[torch.Tensor]] = {name: [] for name in self.modules}
        self._handles = []

    def __enter__(self) -> "Recorder":
        for name, module in self.modules.items():
            self._handles.append(module.register_forward_hook(self._keep(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _keep(self, name: str):
        def hook(_module, _inputs, output):
            self.outputs[name].append(feature_tensor(output).detach())
        return hook


def channel_means(outputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """1×C×1×1: each N×C×H×W output's per-channel spatial mean, averaged over the outputs."""
    if not outputs:
        raise ProbeError("no reference output to average: the reference images did not run "
                         "through the branch")
    per_image = []
    for t in outputs:
        if t.dim() != 4:
            raise ProbeError(f"a mean replacement needs an N×C×H×W branch output, got "
                             f"{tuple(t.shape)}")
        per_image.append(t.float().mean(dim=(2, 3)))         # N×C: one row per image
    rows = torch.cat(per_image)
    return rows.mean(dim=0).view(1, -1, 1, 1)


class Replacement:
    """Forward hooks that replace the named branches' outputs (``how``: zero, mean or swap)
    until closed; a context manager.

    ``means`` maps each branch name to its :func:`channel_means`; ``partner`` maps it to the
    outputs recorded on the other image, used in order, one per forward pass (a tiled image runs
    several), and restarted by :meth:`set_partner`.
    """

    def __init__(self, model: nn.Module, branches: Mapping[str, str], names: Iterable[str],
                 how: str = "zero", *, means: Mapping[str, torch.Tensor] | None = None,
                 partner: Mapping[str, Sequence[torch.Tensor]] | None = None):
        names = check_names(branches, names)
        if how not in KINDS:
            raise ProbeError(f"unknown replacement {how!r}: use {', '.join(KINDS)}")
        if how == "mean" and any(n not in (means or {}) for n in names):
            raise ProbeError("a mean replacement needs each branch's mean over reference images")
        self.how, self.names = how, names
        self.means = dict(means or {})
        self.partner: dict[str, list[torch.Tensor]] = {}
        self.calls: dict[str, int] = {}
        self.active = True          # False: the branches run unchanged (to record them)
        if how == "swap" and partner is not None:
            self.set_partner(partner)
        modules = [find_module(model, branches[n]) for n in names]
        self._handles = [m.register_forward_hook(self._hook(n)) for n, m in zip(names, modules)]

    def set_partner(self, outputs: Mapping[str, Sequence[torch.Tensor]]) -> None:
        """The branch outputs recorded on the other image (:class:`Recorder`), from the first."""
        missing = [n for n in self.names if not outputs.get(n)]
        if missing:
            raise ProbeError("a swap needs the branch's output on another image; none recorded "
                             f"for {', '.join(missing)}")
        self.partner = {n: list(outputs[n]) for n in self.names}
        self.calls = {n: 0 for n in self.names}

    def _hook(self, name: str):
        def hook(_module, _inputs, output):
            if not self.active:
                return None
            if self.how == "zero":
                return _zeros_like(output)
            if not isinstance(output, torch.Tensor):
                raise ProbeError(f"{name} returns {type(output).__name__}; only a tensor output "
                                 f"can be replaced by its {self.how}")
            if self.how == "mean":
                m = self.means[name]
                if m.shape[1] != output.shape[1] or output.dim() != 4:
                    raise ProbeError(f"the mean of {name} has {m.shape[1]} channels; the branch "
                                     f"gave {tuple(output.shape)}")
                return m.to(output.device, output.dtype).expand_as(output).contiguous()
            recorded = self.partner.get(name)
            if not recorded:
                raise ProbeError(f"no output of {name} on another image to swap in")
            other = recorded[self.calls[name] % len(recorded)]
            self.calls[name] += 1
            if other.shape != output.shape:
                raise ProbeError(f"{name} gave {tuple(other.shape)} on the other image and "
                                 f"{tuple(output.shape)} on this one: a swap needs two images of "
                                 "the same size")
            return other.to(output.device, output.dtype)
        return hook

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> "Replacement":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def record(model: nn.Module, branches: Mapping[str, str], names: Iterable[str],
           run: Callable[[], object]) -> dict[str, list[torch.Tensor]]:
    """The named branches' outputs while ``run()`` runs the model (each forward pass, in order)."""
    with Recorder(model, {n: branches[n] for n in names}) as rec:
        run()
    return rec.outputs


def replaced_labels(model: nn.Module, to_input: Callable[[np.ndarray], torch.Tensor],
                    branches: Mapping[str, str], names: Iterable[str], how: str,
                    rgb: np.ndarray, *, references: Sequence[np.ndarray] | None = None,
                    partner: np.ndarray | None = None) -> np.ndarray:
    """Labels of the RGB image ``rgb`` with the named branches replaced: by zeros, by their
    mean over the RGB ``references``, or by their output on the RGB ``partner``."""
    names = check_names(branches, names)
    if how not in KINDS:
        raise ProbeError(f"unknown replacement {how!r}: use {', '.join(KINDS)}")
    means = other = None
    if how == "mean":
        if not references:
            raise ProbeError("a mean replacement needs reference images")
        outputs = record(model, branches, names,
                         lambda: [predict_labels(model, to_input(r)) for r in references])
        means = {n: channel_means(outputs[n]) for n in names}
    elif how == "swap":
        if partner is None:
            raise ProbeError("a swap needs another image to take the branch's output from")
        other = record(model, branches, names, lambda: predict_labels(model, to_input(partner)))
    with Replacement(model, branches, names, how, means=means, partner=other):
        return predict_labels(model, to_input(rgb))


def reference_scenes(count: int = REFERENCE["count"], size: int = REFERENCE["size"],
                     seed: int = REFERENCE["seed"],
                     start: int = REFERENCE["start"]) -> list[np.ndarray]:
    """The default reference images of ``mean``: context scenes generated on the spot (no folder
    of them ships), deterministic, from the held-out set past its scored scenes."""
    from segstudio.train.synth import make_sample

    return [make_sample("context", start + i, size=size, seed=seed).image
            for i in range(count)]


def scene_pair(index: int, size: int = 256, seed: int = 1):
    """A context scene and its twin: the same scene (band, objects, grass, noise) with the other
    surface, water ↔ road, so its boats are cars or its cars boats."""
    from segstudio.train.synth import make_sample
    from segstudio.train.synth_context import ROAD, WATER

    scene = make_sample("context", index, size=size, seed=seed)
    other = ROAD if (scene.labels == WATER).any() else WATER
    return scene, make_sample("context", index, size=size, seed=seed, surface=other)


def context_counterfactuals(model: nn.Module, to_input: Callable[[np.ndarray], torch.Tensor],
                            branches: Mapping[str, str], name: str, *, n: int = 8,
                            size: int = 256, seed: int = 1,
                            references: Sequence[np.ndarray] | None = None,
                            cancelled: Callable[[], bool] = lambda: False) -> dict:
    """Boat/car IoU (%, ``iou``; ``miou`` over all five classes) with the branch ``name``
    kept, zeroed, replaced by its reference mean and swapped with its output on the scene's
    twin, over held-out scenes ``0..n-1``; and per replacement the share (%) of the pixels the
    full model calls boat or car that it turns into the other of the two (``flipped``)."""
    from segstudio.train.synth_context import BOAT, CAR

    path = {name: branches[name]} if name in branches else None
    if path is None:
        raise ProbeError(f"no branch {name!r}; this model's branches: {', '.join(branches)}")
    refs = reference_scenes() if references is None else references
    kept = record(model, path, [name], lambda: [predict_labels(model, to_input(r))
                                                for r in refs])
    means = {name: channel_means(kept[name])}
    matrices = {k: np.zeros((5, 5), np.int64) for k in ("full",) + KINDS}
    flipped = {k: 0 for k in KINDS}
    objects = 0
    scenes = 0
    for i in range(n):
        if cancelled():
            break
        scene, twin = scene_pair(i, size, seed)
        x = to_input(scene.image)
        labels = {"full": predict_labels(model, x)}
        for how in ("zero", "mean"):
            with Replacement(model, path, [name], how, means=means):
                labels[how] = predict_labels(model, x)
        other = record(model, path, [name], lambda: predict_labels(model, to_input(twin.image)))
        with Replacement(model, path, [name], "swap", partner=other):
            labels["swap"] = predict_labels(model, x)
        truth = scene.labels.astype(np.int64).ravel()
        for k, pred in labels.items():
            matrices[k] += np.bincount(truth * 5 + pred.ravel().astype(np.int64),
                                       minlength=25).reshape(5, 5)
        full = labels["full"]
        objects += int(np.isin(full, (BOAT, CAR)).sum())
        for how in KINDS:
            after = labels[how]
            flipped[how] += int(((full == BOAT) & (after == CAR)).sum()
                                + ((full == CAR) & (after == BOAT)).sum())
        scenes += 1
    if scenes == 0:
        raise ProbeError("cancelled")

    def iou(m):
        return 100 * float(np.mean([m[c, c] / max(1, m[c].sum() + m[:, c].sum() - m[c, c])
                                    for c in (BOAT, CAR)]))

    def miou(m):
        union = m.sum(0) + m.sum(1) - np.diag(m)
        return 100 * float(np.mean(np.diag(m)[union > 0] / union[union > 0]))

    return {"branch": name, "scenes": scenes, "size": size, "references": len(refs),
            "iou": {k: iou(m) for k, m in matrices.items()},
            "miou": {k: miou(m) for k, m in matrices.items()},
            "flipped": {k: 100 * v / max(1, objects) for k, v in flipped.items()}}


def lesson_table(n: int = 100, size: int = 256, device: str = "cpu") -> list[dict]:
    """:func:`context_counterfactuals` of the bundled PSPNet (psp.bin1) and DeepLab v3
    (aspp.image_pool) context models in fp32, over held-out scenes ``0..n-1``."""
    from segstudio.models.checkpoint import load_checkpoint
    from segstudio.models.registry import REGISTRY
    from segstudio.paths import weights_dir

    rows = []
    for arch, name in (("pspnet", "psp.bin1"), ("deeplabv3", "aspp.image_pool")):
        model, meta = load_checkpoint(weights_dir() / f"context_{arch}_lite.pt", device=device)
        model = model.float().eval()
        mean = torch.tensor(meta.mean, device=device).view(3, 1, 1)
        std = torch.tensor(meta.std, device=device).view(3, 1, 1)

        def to_input(rgb, mean=mean, std=std):
            x = torch.from_numpy(np.array(rgb, np.uint8)).to(device).permute(2, 0, 1).float()
            return (x / 255 - mean) / std
        row = context_counterfactuals(model, to_input, REGISTRY[arch].branches, name, n=n,
                                      size=size)
        rows.append({"model": f"context_{arch}_lite.pt", **row})
    return rows


def main(argv=None) -> int:
    """``python -m segstudio.explain.counterfactual [N]``: the lesson's table, as text."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    n = int(args[0]) if args else 100
    print(f"held-out context scenes 0..{n - 1} (seed 1, 256 px), fp32; mean over "
          f"{REFERENCE['count']} scenes from {REFERENCE['start']}")
    print("model | branch | boat/car IoU % full / zero / mean / swap | mIoU % full / zero / "
          "mean / swap | boat/car pixels flipped % zero / mean / swap")
    for r in lesson_table(n):
        iou = " / ".join(f"{r['iou'][k]:.1f}" for k in ("full",) + KINDS)
        miou = " / ".join(f"{r['miou'][k]:.1f}" for k in ("full",) + KINDS)
        flips = " / ".join(f"{r['flipped'][k]:.1f}" for k in KINDS)
        print(f"{r['model']} | {r['branch']} | {iou} | {miou} | {flips}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
