"""segstudio's own checkpoints behind the foreign-model interface.

The file names its architecture, classes and normalisation; the registry knows the rest
(stride, instance output, probed branches), so nothing from a sidecar or the command line
applies: a checkpoint that disagreed with its own metadata would be a different model.
"""

from __future__ import annotations

from pathlib import Path

from segstudio.io.model_sidecar import ModelFacts
from segstudio.models.checkpoint import CheckpointError, load_checkpoint
from segstudio.models.formats import PROBES, LoadedModel, ModelFormatError


def load(path: Path, overrides: ModelFacts) -> LoadedModel:
    try:
        model, meta = load_checkpoint(path, device="cpu")
    except CheckpointError as exc:
        raise ModelFormatError(str(exc)) from None
    # stride None: the Predictor takes the registry's stride and instance facts for meta.arch.
    return LoadedModel(net=model, meta=meta, format="segstudio", source=path,
                       weights_file=path, views=frozenset({PROBES}))
