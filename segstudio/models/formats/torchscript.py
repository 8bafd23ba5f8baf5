"""TorchScript archives (``torch.jit.save``): a compiled network without its Python class.

``torch.jit.load`` does not unpickle Python objects: the archive's data is read by a C++
unpickler that rebuilds only tensors and TorchScript types, and its code is TorchScript, which
cannot import modules or call Python. It is still a program, though, and runs with the
operators torch registers — among them ``aten::save`` and ``aten::from_file``, which write and
read files — and a class's ``__setstate__`` runs while the archive loads, before anything could
look at the graph. So the archive's code is read before loading and refused when it names a
file operator or defines a ``__setstate__`` (a float segmentation network has none; quantized
ones do, and are refused), and the loaded graph is checked again, operator by operator, before
it ever runs.
"""

from __future__ import annotations

import re
import warnings
import zipfile
from pathlib import Path

import torch

from segstudio.io.model_sidecar import ModelFacts, read_sidecar
from segstudio.models.formats import (LoadedModel, ModelFormatError, check_finite_weights,
                                      finish, first_line)

# Operators that reach outside the process's memory: files, or tensors loaded from disk.
FORBIDDEN_OPS = frozenset({"aten::save", "aten::from_file", "debugprims::load_tensor"})
# Calls of operators outside torch's own namespaces read ``ops.NS.OP(`` (a class path such
# as ``torchvision.ops.misc.Conv2dNormActivation`` has a dot before ``ops`` and is no call).
FORBIDDEN_TEXT = re.compile(r"\b(?:torch|aten)\.(?:save|from_file)\b|\bload_tensor\b"
                            r"|(?<![\w.])ops\.(?!aten\.|prim\.|quantized\.|prepacked\.)"
                            r"\w+\.\w+\(")
SETSTATE = re.compile(r"\bdef __setstate__\b")
ALLOWED_NAMESPACES = ("aten", "prim", "quantized", "prepacked")
MAX_CODE_BYTES = 64 << 20


def load(path: Path, overrides: ModelFacts) -> LoadedModel:
    name = path.name
    _check_code(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")            # jit's deprecation notice
            net = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:   # noqa: BLE001 - the C++ reader raises many kinds on damage
        raise ModelFormatError(f"{name}: damaged or unreadable TorchScript archive "
                               f"({first_line(exc)})") from None
    _check_graph(net, name)
    check_finite_weights(net, name)
    facts = overrides.over(read_sidecar(path))
    return finish(net, source=path, weights_file=path, fmt="torchscript", facts=facts)


def _check_code(path: Path) -> None:
    """Refuse an archive whose TorchScript source names a file operator or a custom op."""
    try:
        with zipfile.ZipFile(path) as z:
            total = 0
            for info in z.infolist():
                if "/code/" not in info.filename:
                    continue
                total += info.file_size
                if total > MAX_CODE_BYTES:
                    raise ModelFormatError(f"{path.name}: more than {MAX_CODE_BYTES >> 20} MB "
                                           "of TorchScript code; not a segmentation network")
                text = z.read(info).decode("utf-8", "replace")
                if SETSTATE.search(text):
                    raise ModelFormatError(
                        f"{path.name}: refused: its code defines __setstate__, which would run "
                        "while the archive loads; a network's code may run only in forward")
                found = FORBIDDEN_TEXT.search(text)
                if found:
                    raise ModelFormatError(
                        f"{path.name}: refused: its code calls {found.group(0).rstrip('.')}, "
                        "which reaches outside the network (files or foreign operators)")
    except ModelFormatError:
        raise
    except Exception as exc:   # noqa: BLE001 - a damaged zip fails in a dozen ways
        raise ModelFormatError(f"{path.name}: damaged TorchScript archive "
                               f"({first_line(exc)})") from None


def _check_graph(net: torch.jit.ScriptModule, name: str) -> None:
    """Every operator the forward pass can reach is a plain tensor operator."""
    try:
        graph = net.forward.inlined_graph if hasattr(net.forward, "inlined_graph") \
            else net.inlined_graph
    except (AttributeError, RuntimeError) as exc:
        raise ModelFormatError(f"{name}: a TorchScript archive without a forward method "
                               f"({first_line(exc)})") from None
    for node in _walk(graph.nodes()):
        kind = node.kind()
        if kind in FORBIDDEN_OPS or kind.split("::")[0] not in ALLOWED_NAMESPACES:
            raise ModelFormatError(f"{name}: refused: its forward pass calls {kind}, which is "
                                   "not a tensor operator")


def _walk(nodes):
    """Every node of a graph, including those inside loops and branches."""
    for node in nodes:
        yield node
        for block in node.blocks():
            yield from _walk(block.nodes())
