"""ONNX models, run with ONNX Runtime (the optional extra ``segstudio[onnx]``).

An ONNX file is a graph of standard operators and weights, no code; ONNX Runtime refuses
operators it does not know. It runs here on the CPU, in fp32 (the precision the graph was
exported in; reduced-precision graphs are a separate export, not a switch).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import torch
from torch import nn

from segstudio.io.model_sidecar import ModelFacts, read_sidecar
from segstudio.models.formats import LoadedModel, ModelFormatError, finish, first_line

FLOAT_INPUTS = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
                "tensor(double)": np.float64}


class OnnxNet(nn.Module):
    """An ONNX Runtime session as a module: a float batch in, the first output back.

    The session computes with as many threads as torch is told to use (the GUI leaves a core
    to itself, ``--threads`` sets them on the command line): its pool is fixed when it is
    made, so a session is made again when that number has changed since.
    """

    def __init__(self, session, input_name: str, dtype, make_session) -> None:
        super().__init__()
        self.session = session
        self.input_name = input_name
        self.dtype = dtype
        self.threads = torch.get_num_threads()
        self._make_session = make_session

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.get_num_threads() != self.threads:
            self.threads = torch.get_num_threads()
            self.session = self._make_session(self.threads)
        feed = x.detach().to("cpu", torch.float32).contiguous().numpy().astype(self.dtype,
                                                                                copy=False)
        out = self.session.run(None, {self.input_name: feed})[0]
        out = np.asarray(out)
        # float32 scores are handed over as they are (no copy); other floats are converted.
        return torch.from_numpy(out.astype(np.float32, copy=False) if out.dtype.kind == "f"
                                else out)


def load(path: Path, overrides: ModelFacts) -> LoadedModel:
    name = path.name
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelFormatError(f"{name}: ONNX models need ONNX Runtime: pip install "
                               "'segstudio[onnx]'") from None

    def make_session(threads: int):
        options = ort.SessionOptions()
        options.log_severity_level = 3                   # errors reach the user as text
        options.intra_op_num_threads = max(1, threads)
        # On a failure ONNX Runtime prints a banner and retries; the reason is said once.
        with contextlib.redirect_stdout(io.StringIO()):
            return ort.InferenceSession(str(path), sess_options=options,
                                        providers=["CPUExecutionProvider"])

    try:
        session = make_session(torch.get_num_threads())
    except Exception as exc:   # noqa: BLE001 - onnxruntime raises its own unexported types
        raise ModelFormatError(f"{name}: not a readable ONNX model ({first_line(exc)})") \
            from None
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelFormatError(f"{name}: the graph takes {len(inputs)} inputs; expected one "
                               "image batch (N×3×H×W)")
    spec = inputs[0]
    if spec.type not in FLOAT_INPUTS:
        raise ModelFormatError(f"{name}: the graph's input is {spec.type}; expected a float "
                               "image batch (N×3×H×W)")
    shape = list(spec.shape)
    if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
        raise ModelFormatError(f"{name}: the graph's input has shape {shape}; expected "
                               "N×3×H×W (RGB)")
    fixed = tuple(shape[2:]) if all(isinstance(v, int) and v > 0 for v in shape[2:]) else None
    facts = overrides.over(read_sidecar(path))
    out_shape = list(session.get_outputs()[0].shape)
    classes = facts.classes
    if (classes is not None and (facts.output or "logits") != "labels" and len(out_shape) == 4
            and isinstance(out_shape[1], int) and out_shape[1] != len(classes)):
        raise ModelFormatError(f"{name}: the graph gives {out_shape[1]} output channel(s) but "
                               f"its sidecar or --classes names {len(classes)} classes; "
                               "expected one channel per class")
    _check_finite(path)
    net = OnnxNet(session, spec.name, FLOAT_INPUTS[spec.type], make_session)
    return finish(net, source=path, weights_file=path, fmt="onnx", facts=facts,
                  input_size=fixed, precisions=("fp32",), cpu_only=True)


def _check_finite(path: Path) -> None:
    """Refuse weights (initializers and constant tensors) holding NaN or infinity, naming the
    first; read with the onnx package, which the ``onnx`` extra installs beside the runtime."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return                # the test run on a zero image still refuses NaN scores
    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:   # noqa: BLE001 - ONNX Runtime read it; onnx may still object
        raise ModelFormatError(f"{path.name}: not a readable ONNX model ({first_line(exc)})") \
            from None
    tensors = list(graph.initializer) + [a.t for n in graph.node for a in n.attribute
                                         if a.type == onnx.AttributeProto.TENSOR]
    for tensor in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            continue            # kept in a file beside the graph: left to the test run
        try:
            values = numpy_helper.to_array(tensor)
        except Exception:   # noqa: BLE001 - a type numpy cannot hold is no float weight
            continue
        if values.dtype.kind in "fc":
            bad = int((~np.isfinite(values)).sum())
            if bad:
                raise ModelFormatError(
                    f"{path.name}: weight {tensor.name[:60]!r} holds {bad} NaN or infinite "
                    f"value(s) of {values.size}; the file is damaged or its training diverged")
