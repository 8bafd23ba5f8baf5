"""Starting a training run from a trained checkpoint's weights (fine-tuning).

A model trained on one class set can start training on another: every tensor that does not depend
on the number of classes is copied as it is, and the class-dependent ones (the scoring layers,
Mask R-CNN's box and mask predictors) are copied class by class, matched by name. A class the
checkpoint does not know keeps its fresh initialisation.

Which tensors depend on the classes is not guessed from layer names: the architecture is built a
second time, without memory (on the ``meta`` device), for one class more than the checkpoint has,
and the tensors whose shape changes are the class-dependent ones. The dimension that grew and by
how much (1 for a score, 4 for a box regressor) say how to copy each class's slice.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from segstudio.core.classes import ClassSet


class InitError(Exception):
    """The checkpoint cannot start this run: the message says why."""


@dataclass
class InitReport:
    source: str                                   # the checkpoint's file name
    tensors: int                                  # tensors copied whole
    per_class: int                                # class-dependent tensors copied class by class
    matched: list[str] = field(default_factory=list)   # classes whose weights carried over
    fresh: list[str] = field(default_factory=list)     # classes that start from scratch
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)  # the checkpoint's input normalisation
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def summary(self) -> str:
        text = (f"started from {self.source}: {self.tensors + self.per_class} weight tensors, "
                f"classes carried over: {', '.join(self.matched) or 'none'}")
        return text + (f"; new classes: {', '.join(self.fresh)}" if self.fresh else "")


def _class_slices(key: str, old: torch.Size, grown: torch.Size, new: torch.Size,
                  k_old: int, k_new: int) -> list[tuple[int, int]]:
    """(dimension, values per class) for each class axis of a class-dependent tensor, checked
    against all three shapes; an InitError if an axis does not grow by a whole block per class.

    Most such tensors have one class axis; a transposed convolution that upsamples class scores
    (FCN's ``upscore`` layers, C × C × k × k) has two, one for the classes it reads and one
    for those it writes.
    """
    if len(old) != len(grown) or len(old) != len(new):
        raise InitError(f"weight {key!r}: its rank changes with the class count")
    axes = []
    for d in range(len(old)):
        if old[d] == grown[d]:
            if new[d] != old[d]:
                raise InitError(f"weight {key!r}: dimension {d} is {old[d]} in the checkpoint "
                                f"but {new[d]} in the run")
            continue
        block = grown[d] - old[d]
        if block <= 0 or old[d] != block * k_old or new[d] != block * k_new:
            raise InitError(f"weight {key!r}: its size {old[d]} is not {k_old} classes × a block")
        axes.append((d, block))
    return axes


def load_initial_weights(model: nn.Module, arch: str, config: str, classes: ClassSet,
                         path: str | Path) -> InitReport:
    """Fill the freshly built ``model`` (``arch``, ``config``, for ``classes``) from the trained
    checkpoint at ``path``; its classes are matched to ``classes`` by name."""
    from segstudio.models import registry
    from segstudio.models.checkpoint import CheckpointError, load_checkpoint

    path = Path(path)
    try:
        source, meta = load_checkpoint(path)
    except CheckpointError as exc:
        raise InitError(str(exc)) from None
    if meta.arch != arch or meta.config != config:
        raise InitError(f"{path.name}: holds a {meta.arch!r} network ({meta.config}); a "
                        f"{arch!r} ({config}) run can only start from one of its own kind")
    if not meta.trained:
        raise InitError(f"{path.name}: holds random weights, nothing to start from")
    old_names, new_names = list(meta.classes.names), list(classes.names)
    with torch.device("meta"):
        grown = registry.build_model(arch, len(old_names) + 1, config=config).state_dict()
    old_state = source.state_dict()
    target = model.state_dict()
    pairs = [(new_names.index(n), i) for i, n in enumerate(old_names) if n in new_names]
    whole = per_class = 0
    with torch.no_grad():
        for key, dest in target.items():
            value = old_state[key]
            if value.shape == grown[key].shape:
                if value.shape != dest.shape:
                    raise InitError(f"{path.name}: weight {key!r} has shape "
                                    f"{tuple(value.shape)}, the run expects {tuple(dest.shape)}")
                dest.copy_(value)
                whole += 1
                continue
            axes = _class_slices(key, value.shape, grown[key].shape, dest.shape,
                                 len(old_names), len(new_names))
            # Every combination of matched classes, one per class axis: a C × C upsampler keeps
            # what class i's scores gave class i' wherever both classes carried over.
            for combo in itertools.product(pairs, repeat=len(axes)):
                to, src = dest, value
                for (d, block), (j, i) in zip(axes, combo):
                    to = to.narrow(d, j * block, block)
                    src = src.narrow(d, i * block, block)
                to.copy_(src)
            per_class += 1
    return InitReport(path.name, whole, per_class,
                      matched=[n for n in new_names if n in old_names],
                      fresh=[n for n in new_names if n not in old_names],
                      mean=tuple(meta.mean), std=tuple(meta.std))
