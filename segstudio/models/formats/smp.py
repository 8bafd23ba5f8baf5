"""segmentation-models-pytorch folders (``model.save_pretrained``), the optional extra
``segstudio[smp]``.

The folder's ``config.json`` names one of smp's architectures and its arguments; the network
is built from those (with ``encoder_weights=None``: nothing is downloaded) and its weights read
from ``model.safetensors`` only. smp's own ``from_pretrained`` is not used: it would fetch
pretrained encoders and fall back to pickled weights. The config says how many classes there
are, not their names: those come from a ``segstudio.json`` in the folder.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from segstudio.io.model_sidecar import ModelFacts, read_sidecar
from segstudio.models.formats import (PROBES, LoadedModel, ModelFormatError,
                                      check_finite_weights, finish, first_line)
from segstudio.models.formats.folders import WEIGHTS, read_config

# What smp's segmentation head applies to the logits, as an output kind segstudio reads.
ACTIVATIONS = {None: "logits", "identity": "logits", "logsoftmax": "logits",
               "softmax": "probabilities", "softmax2d": "probabilities",
               "sigmoid": "probabilities", "argmax": "labels", "argmax2d": "labels"}


def load(path: Path, overrides: ModelFacts) -> LoadedModel:
    name = path.name
    config = read_config(path)
    try:
        import segmentation_models_pytorch as smp
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError:
        raise ModelFormatError(f"{name}: smp model folders need segmentation-models-pytorch: "
                               "pip install 'segstudio[smp]'") from None
    wanted = config.get("_model_class")
    classes = {cls.__name__: cls for cls in smp.MODEL_ARCHITECTURES_MAPPING.values()}
    if wanted not in classes:
        raise ModelFormatError(f"{name}/config.json: _model_class {str(wanted)[:40]!r} is not "
                               f"an smp architecture ({', '.join(sorted(classes))})")
    cls = classes[wanted]
    kwargs = {k: v for k, v in config.items() if not k.startswith("_")}
    # Only the arguments the class names: a catch-all **kwargs would take anything.
    accepted = {n for n, p in inspect.signature(cls.__init__).parameters.items()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self"}
    unknown = sorted(k for k in kwargs if k not in accepted)
    if unknown:
        raise ModelFormatError(f"{name}/config.json: {wanted} takes no argument "
                               f"{unknown[0]!r}")
    activation = kwargs.get("activation")
    if not isinstance(activation, (str, type(None))) or activation not in ACTIVATIONS:
        raise ModelFormatError(f"{name}/config.json: activation {str(activation)[:40]!r} is "
                               f"not one segstudio reads ({', '.join(map(str, ACTIVATIONS))})")
    kwargs["encoder_weights"] = None              # the folder's weights replace them anyway
    try:
        model = cls(**kwargs)
    except Exception as exc:   # noqa: BLE001 - a bad argument fails in many ways inside smp
        raise ModelFormatError(f"{name}/config.json: smp cannot build {wanted} from it "
                               f"({first_line(exc)})") from None
    weights = path / WEIGHTS
    if not weights.is_file():
        raise ModelFormatError(f"{name}: no {WEIGHTS}; smp folders are read from one "
                               "safetensors file")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFormatError(f"{name}/{WEIGHTS}: damaged ({first_line(exc)})") from None
    from segstudio.models.checkpoint import CheckpointError, check_state_dict

    try:
        check_state_dict(model, state, f"{name}/{WEIGHTS}")
    except CheckpointError as exc:
        raise ModelFormatError(str(exc)) from None
    model.load_state_dict(state, strict=True)
    model.eval()
    check_finite_weights(model, name)
    facts = overrides.over(read_sidecar(path))
    if facts.output is None:
        facts = facts.over(ModelFacts(output=ACTIVATIONS[activation]))
    stride = int(getattr(model.encoder, "output_stride", 32) or 32)
    return finish(model, source=path, weights_file=weights, fmt="smp", facts=facts,
                  stride=stride, views=frozenset({PROBES}), arch=f"smp {wanted}")
