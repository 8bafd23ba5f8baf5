"""What named modules of any torch network return, TorchScript included.

An eager module is read with a forward hook, as :mod:`segstudio.explain.probes` reads one. A
TorchScript module takes no Python hooks (its forward is compiled; its children are called from
inside the compiled code), so its forward graph is inlined and the value the chosen module hands
to the rest of the network — found by the module path each inlined operation carries — becomes
one more output of a copy of that graph. The network still runs its own operations in its own
order; nothing in it is changed, and gradients flow through the copy as through the original.

A module called several times reports its last call, as a hook would. Zeroing a module (the
Branches view's ablation) works the same way: in the graph's copy, the operations outside the
module read zeros instead of its output.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator, Mapping

import torch
from torch import nn

from segstudio.explain.probes import ProbeError, _zeros_like, as_batch, feature_tensor

__all__ = ["module_tree", "is_scripted", "scripted_modules", "tapped_forward", "module_outputs",
           "zeroed", "branch_effect"]

_ENTRY = re.compile(r"([^.()]+)\(([^()]*)\)")
_NOT_A_CHILD = ("SELF", "UNKNOWN_INSTANCE")


def is_scripted(module: nn.Module) -> bool:
    return isinstance(module, torch.jit.ScriptModule)


def scripted_modules(model: nn.Module) -> bool:
    """True when any part of ``model`` is compiled TorchScript."""
    return any(is_scripted(m) for m in model.modules())


def module_tree(model: nn.Module, root: str = "") -> list[tuple[str, str]]:
    """``(path, class name)`` of every module under ``root`` (paths relative to it), in the
    network's own order; ``named_modules`` works on TorchScript modules too, which name their
    original class in ``original_name``."""
    mods = dict(model.named_modules())
    if root not in mods:
        raise ProbeError(f"the model has no module '{root}'")
    out = []
    for name, module in mods[root].named_modules():
        if name:
            kind = getattr(module, "original_name", None) if is_scripted(module) else None
            out.append((name, kind or type(module).__name__))
    return out


def _module_path(hierarchy: str) -> str:
    """The module path of an inlined operation from its hierarchy,
    ``body(B).conv(Conv2d).SELF(Conv2d)`` -> ``body.conv``."""
    names = []
    for name, _kind in _ENTRY.findall(hierarchy):
        if name in _NOT_A_CHILD:
            break
        names.append(name)
    return ".".join(names)


def _within(path: str, module: str) -> bool:
    return path == module or path.startswith(module + ".")


def _carries_tensor(value) -> bool:
    text = str(value.type())
    return "Tensor" in text


def _walk(nodes):
    for node in nodes:
        yield node
        for block in node.blocks():
            yield from _walk(block.nodes())


def _leaving_value(graph, path: str, where: str):
    """The last value module ``path`` hands to the rest of the inlined ``graph``."""
    returned = graph.return_node()
    top = list(graph.nodes())
    chosen = None
    for node in top:
        if not _within(_module_path(node.getModuleHierarchy()), path):
            continue
        for value in node.outputs():
            if not _carries_tensor(value):
                continue
            for use in value.uses():
                user = use.user
                if user == returned or not _within(_module_path(user.getModuleHierarchy()),
                                                   path):
                    chosen = value          # the last value that leaves the module
                    break
    if chosen is not None:
        return chosen
    nested = any(_within(_module_path(n.getModuleHierarchy()), path)
                 for n in _walk(top) if n.owningBlock() != graph.block())
    full = f"{where}.{path}".strip(".")
    if nested:
        raise ProbeError(f"'{full}' runs inside a condition or loop of the compiled "
                         "TorchScript code, where its output cannot be read; pick the "
                         "module around it")
    raise ProbeError(f"'{full}' did not run in the compiled TorchScript forward (or "
                     "computes nothing of its own, as an Identity)")


def _zero(graph, value, path: str, where: str) -> None:
    """Hand zeros of ``value``'s shape to every operation outside module ``path`` that read
    ``value`` (the module's own operations still see what they computed)."""
    if value.type().kind() != "TensorType":
        raise ProbeError(f"'{f'{where}.{path}'.strip('.')}' returns {value.type()}, not one "
                         "tensor; only a tensor output can be zeroed")
    returned = graph.return_node()
    users = [use.user for use in value.uses()
             if use.user == returned
             or not _within(_module_path(use.user.getModuleHierarchy()), path)]
    with graph.insert_point_guard(value.node()):
        zeros = graph.insert("aten::zeros_like", [value])
    zeros.node().moveAfter(value.node())        # made before it (with its constants), run after
    for user in users:
        user.replaceInputWith(value, zeros)


def _script_tap(script: torch.jit.ScriptModule, paths: list[str], where: str,
                zeroed: tuple[str, ...] = ()):
    """A function ``f(script._c, *inputs)`` returning the forward's outputs followed by what
    each module of ``paths`` (relative to ``script``) returned; the modules of ``zeroed``
    hand zeros to the rest of the network instead of their output."""
    graph = script.forward.inlined_graph               # an inlined copy; the module is untouched
    for path in zeroed:
        _zero(graph, _leaving_value(graph, path, where), path, where)
    for path in paths:
        graph.registerOutput(_leaving_value(graph, path, where))
    graph.makeMultiOutputIntoTuple()           # a method returns one value: a tuple of all
    return torch._C._create_function_from_graph("tapped_forward", graph)


class _Tapped(nn.Module):
    """Stands in for a TorchScript child of an eager module while it is read."""

    def __init__(self, script, fn, names: list[str], sink: dict) -> None:
        super().__init__()
        self.script = script
        self.fn, self.names, self.sink = fn, names, sink
        self.original_outputs = len(list(script.forward.graph.outputs()))

    def forward(self, *args):
        out = self.fn(self.script._c, *args)
        n = self.original_outputs
        main, extra = out[:n], out[n:]
        for name, value in zip(self.names, extra):
            self.sink[name] = value
        return main[0] if n == 1 else tuple(main)


def _outermost_script(mods: Mapping[str, nn.Module], path: str) -> str | None:
    """The path of the outermost TorchScript module holding ``path``, or None."""
    parts = path.split(".") if path else []
    for i in range(len(parts) + 1):
        prefix = ".".join(parts[:i])
        if is_scripted(mods[prefix]):
            return prefix
    return None


@contextmanager
def _reading(model: nn.Module, branches: Mapping[str, str],
             keep_grad: bool) -> Iterator[tuple[nn.Module, dict]]:
    """``(runner, sink)``: inside the context, calling ``runner`` runs ``model`` and fills
    ``sink`` with each branch's output (``runner`` is the model itself, or its tapped graph
    when the model is TorchScript through and through)."""
    mods = dict(model.named_modules())
    sink: dict = {}
    for name, path in branches.items():
        if path not in mods:
            parent = path.rpartition(".")[0]
            near = [n.rpartition(".")[2] for n in mods if n.rpartition(".")[0] == parent and n]
            raise ProbeError(f"the model has no module '{path}'; next to it: "
                             f"{', '.join(near[:12]) or 'nothing'}")
    scripted: dict[str, list[tuple[str, str]]] = {}
    handles = []
    swapped = []
    runner = model
    try:
        for name, path in branches.items():
            script = _outermost_script(mods, path)
            if script is None:
                def hook(_m, _i, out, name=name):
                    t = feature_tensor(out)
                    sink[name] = t if keep_grad else t.detach()
                handles.append(mods[path].register_forward_hook(hook))
            else:
                rel = path[len(script):].lstrip(".")
                scripted.setdefault(script, []).append((name, rel))
        for script, wanted in scripted.items():
            fn = _script_tap(mods[script], [rel for _, rel in wanted], script)
            stand_in = _Tapped(mods[script], fn, [n for n, _ in wanted], sink)
            if script == "":
                runner = stand_in
                continue
            parent, _, child = script.rpartition(".")
            swapped.append((mods[parent], child, mods[parent]._modules[child]))
            mods[parent]._modules[child] = stand_in
        yield runner, sink
    finally:
        for handle in handles:
            handle.remove()
        for parent, child, original in swapped:
            parent._modules[child] = original


def tapped_forward(model: nn.Module, branches: Mapping[str, str], x: torch.Tensor, *,
                   keep_grad: bool = False):
    """``(output, {name: tensor})``: the model's output for ``x`` and what each module of
    ``branches`` (name -> dotted path) returned. With ``keep_grad`` the tensors stay in the
    autograd graph (for Grad-CAM); otherwise they are detached."""
    with _reading(model, branches, keep_grad) as (runner, sink):
        out = runner(x)
    if not keep_grad:
        sink = {k: _detached(v) for k, v in sink.items()}
    found = {}
    for name, path in branches.items():
        if name not in sink:
            raise ProbeError(f"{name} ({path}) did not run during the forward pass")
        found[name] = feature_tensor(sink[name])
    return out, found


@contextmanager
def zeroed(model: nn.Module, path: str) -> Iterator[nn.Module]:
    """Inside the context, the returned runner is ``model`` with the module at ``path``
    handing zeros (of its output's shape) to the rest of the network: a forward hook for an
    eager module, a rewritten graph for a TorchScript one. The model itself is unchanged
    afterwards."""
    mods = dict(model.named_modules())
    if path not in mods:
        raise ProbeError(f"the model has no module '{path}'")
    script = _outermost_script(mods, path)
    if script is None:
        handle = mods[path].register_forward_hook(lambda _m, _i, out: _zeros_like(out))
        try:
            yield model
        finally:
            handle.remove()
        return
    rel = path[len(script):].lstrip(".")
    stand_in = _Tapped(mods[script], _script_tap(mods[script], [], script, (rel,)), [], {})
    if script == "":
        yield stand_in
        return
    parent, _, child = script.rpartition(".")
    original = mods[parent]._modules[child]
    mods[parent]._modules[child] = stand_in
    try:
        yield model
    finally:
        mods[parent]._modules[child] = original


def branch_effect(model: nn.Module, image: torch.Tensor, path: str):
    """Labels predicted (H×W) with the module at ``path`` and with it zeroed, for any torch
    network: :func:`segstudio.explain.probes.branch_effect`, TorchScript included."""
    from segstudio.explain.probes import predict_labels

    before = predict_labels(model, image)
    with zeroed(model, path) as runner:
        after = _labels(runner, model, image)
    return before, after


def _labels(runner: nn.Module, model: nn.Module, image: torch.Tensor):
    from segstudio.explain.probes import main_output

    was_training = model.training
    model.eval()
    runner.eval()
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        with torch.no_grad():
            logits = main_output(runner(as_batch(image).to(device)))
    finally:
        model.train(was_training)
    return logits[0].argmax(0).cpu().numpy()


def _detached(value):
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, (tuple, list)):
        return type(value)(_detached(v) for v in value)
    return value


def module_outputs(model: nn.Module, branches: Mapping[str, str],
                   image: torch.Tensor) -> dict[str, torch.Tensor]:
    """What each module of ``branches`` returns for ``image`` (eval mode, no gradients,
    detached): :class:`~segstudio.explain.probes.Probe`'s answer, for any torch network."""
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        with torch.no_grad():
            _, found = tapped_forward(model, branches, as_batch(image).to(device))
    finally:
        model.train(was_training)
    return found
