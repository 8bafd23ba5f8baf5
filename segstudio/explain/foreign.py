"""Networks from model files (TorchScript, Hugging Face, smp) as the teaching views see them.

The views read a network as the app runs it (:class:`~segstudio.models.formats.shown.ShownNet`:
padded to its stride, its scores resized to the image, as the Predictor does), so a gradient
at a pixel is the gradient of what the app shows there. :func:`tracer_blind_spots` says which
of its operations the receptive-field tracer cannot follow, so that a field is never drawn
from operations it does not understand.
"""

from __future__ import annotations

from torch import nn

from segstudio.explain.receptive_field import _FieldTracker, _tensors, receptive_fields
from segstudio.explain.taps import scripted_modules
from segstudio.models.formats.shown import ShownNet

__all__ = ["ShownNet", "ImageBounds", "tracer_blind_spots", "TORCHSCRIPT_FIELD"]

# Operations whose effect on a unit's field the tracer computes (windows, resampling, padding,
# indexing, reductions), those that act on each pixel alone, and bookkeeping without arithmetic.
_WINDOWED = {"conv2d", "convolution", "conv_transpose2d", "max_pool2d",
             "max_pool2d_with_indices", "avg_pool2d", "adaptive_avg_pool2d",
             "adaptive_max_pool2d", "interpolate", "upsample_bilinear2d", "upsample_nearest2d",
             "max_unpool2d", "pad", "__getitem__", "mean", "sum", "amax", "amin", "max", "min"}
_PER_PIXEL = {"add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "neg", "abs", "exp",
              "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_",
              "gelu", "silu", "silu_", "sigmoid", "sigmoid_", "tanh", "elu", "hardswish",
              "hardsigmoid", "batch_norm", "dropout", "dropout2d", "cat", "clamp", "clamp_",
              "where", "__add__", "__radd__", "__iadd__", "__mul__", "__rmul__", "__sub__",
              "__truediv__", "pow", "sqrt", "log"}
_BOOKKEEPING = {"dim", "size", "__get__", "contiguous", "clone", "to", "float", "detach",
                "type_as", "__len__", "requires_grad_"}
KNOWN = _WINDOWED | _PER_PIXEL | _BOOKKEEPING

TORCHSCRIPT_FIELD = ("no theoretical field for a TorchScript network: the tracer follows torch "
                     "operations as Python runs them, but TorchScript runs compiled code out of "
                     "its sight, and a compiled network cannot be copied to the meta device "
                     "where the tracer runs")


class _Watcher(_FieldTracker):
    """The field tracker, noting the name of every operation that touches a traced tensor."""

    seen: set

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if any(id(t) in self.fields for t in _tensors((args, kwargs or {}))):
            type(self).seen.add(getattr(func, "__name__", repr(func)))
        return super().__torch_function__(func, types, args, kwargs)


def tracer_blind_spots(model: nn.Module, size: tuple[int, int]) -> list[str]:
    """The operations of ``model`` (run on an image of ``size``) that the receptive-field tracer
    does not know how to follow, sorted; empty when every one is known. TorchScript is refused
    outright (:data:`TORCHSCRIPT_FIELD`)."""
    if scripted_modules(model):
        return ["TorchScript"]

    class Watcher(_Watcher):
        seen: set = set()

    receptive_fields(model, [""], size, in_channels=3, skip_missing=True,
                     tracker_type=Watcher)
    return sorted(Watcher.seen - KNOWN)


class ImageBounds:
    """Stands in for a pixel's theoretical field where none is known: the whole image, so
    that an effective field is measured against what the network could see at most."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.h, self.w = (int(v) for v in size)

    def unit_at(self, y: int, x: int) -> tuple[int, int]:
        return int(y), int(x)

    def box(self, _fy: int, _fx: int) -> tuple[int, int, int, int]:
        return 0, 0, self.w - 1, self.h - 1
