"""How much memory one training step takes, worked out before training starts.

A step holds the weights four times (the weights, their gradients, AdamW's two moments), every
layer's output for the batch (kept for the backward pass, and once more for its gradient) and
the batch itself. The outputs are counted with forward hooks on a pass that allocates and
computes nothing: on the meta device for a network built there, or under torch's fake tensors
for a network that already holds weights (a model folder being fine-tuned), so the check costs
milliseconds and no memory. None when the pass cannot be made that way; the caller then trains
unchecked rather than refuse on a guess.
"""

from __future__ import annotations

import torch


def step_bytes(model: torch.nn.Module, batch: int, crop: int) -> int | None:
    """About the peak bytes one training step of ``model`` on ``batch`` RGB crops of ``crop``
    pixels holds (None: it could not be worked out)."""
    outputs = 0

    def count(_module, _inputs, output) -> None:
        nonlocal outputs
        for t in (output if isinstance(output, (tuple, list)) else
                  output.values() if isinstance(output, dict) else (output,)):
            if isinstance(t, torch.Tensor):
                outputs += t.numel() * t.element_size()

    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    on_meta = any(p.is_meta for p in model.parameters())
    training = model.training
    try:
        if on_meta:
            model.train()
            with torch.device("meta"):
                model(torch.empty(batch, 3, crop, crop))
        else:
            from torch._subclasses.fake_tensor import FakeTensorMode

            # Evaluation mode: batch norm would otherwise update its real running statistics
            # from fake ones. The outputs are the same size either way.
            model.eval()
            with torch.no_grad(), FakeTensorMode(allow_non_fake_inputs=True):
                model(torch.empty(batch, 3, crop, crop))
    except Exception:  # noqa: BLE001 - an estimate that cannot be made is no reason to refuse
        return None
    finally:
        for h in hooks:
            h.remove()
        model.train(training)
    return 4 * weights + 2 * outputs + batch * crop * crop * 3 * 4


def registry_step_bytes(model_name: str, config: str, num_classes: int, batch: int,
                        crop: int) -> int | None:
    """:func:`step_bytes` of a registry network, built on the meta device (nothing allocated);
    None for a network that cannot be built there."""
    from segstudio.models import registry

    try:
        with torch.device("meta"):
            model = registry.build_model(model_name, num_classes, config=config)
    except Exception:  # noqa: BLE001 - an estimate that cannot be made is no reason to refuse
        return None
    return step_bytes(model, batch, crop)


def require_step_memory(needed: int | None, what: str) -> None:
    """Refuse a training run whose step does not fit the memory available, saying how to make
    it fit (a :class:`segstudio.train.loop.TrainError`); an unknown size goes ahead."""
    from segstudio.io.decode_memory import NotEnoughMemory, require_memory
    from segstudio.train.loop import TrainError

    if needed is None:
        return
    try:
        require_memory(needed, what)
    except NotEnoughMemory as exc:
        raise TrainError(f"{exc}; lower the batch size or the crop") from None
