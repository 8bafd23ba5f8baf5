"""``segstudio rf``: the theoretical receptive field of every probed branch of a model."""

from __future__ import annotations

import argparse
import json
import re

from segstudio.commands import CommandError

HELP = ("print the theoretical receptive field (size and jump in input pixels) of every probed "
        "branch and backbone stage of a model; the model is built on the meta device, so even "
        "paper configurations take no memory")

OUTPUT_ROW = "output"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="NAME",
                        help="a registry model, e.g. pspnet, deeplabv3, fcn8s, unet")
    parser.add_argument("--config", choices=("lite", "paper"),
                        help="lite (reduced width/depth) or paper configuration (default lite, "
                             "or the only one a model has)")
    parser.add_argument("--layer", metavar="NAME",
                        help="only this branch (a probe name such as psp.bin6) or module path")
    parser.add_argument("--input-size", nargs=2, type=int, default=(512, 512), metavar=("H", "W"),
                        help="input size in pixels; it matters only for image-level pooling "
                             "and resizing (default 512 512)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _layers(model, spec, only: str | None) -> dict[str, str]:
    """Row name -> module path: the spec's branches, the backbone stages, and the output."""
    known = set(spec.branches.values())
    backbone = getattr(model, "backbone", None)
    rows = {}
    if backbone is not None and not spec.instance:
        for child, _ in backbone.named_children():
            if re.fullmatch(r"layer\d+", child) and f"backbone.{child}" not in known:
                rows[f"backbone.{child}"] = f"backbone.{child}"
    rows.update(spec.branches)
    if not spec.instance:
        rows[OUTPUT_ROW] = ""
    if only is None:
        return rows
    if only in rows:
        return {only: rows[only]}
    if only in dict(model.named_modules()):
        return {only: only}
    raise CommandError(f"{spec.name} has no branch or module '{only}'; branches: "
                       f"{', '.join(rows)}")


def field_table(model, spec, input_size, only: str | None = None) -> list[dict]:
    """One dict per row: name, module, size, jump, start, covers_image_size (or a note why not)."""
    from segstudio.explain.receptive_field import ReceptiveFieldError, receptive_fields

    rows = _layers(model, spec, only)
    traced, prefix = model, ""
    if spec.instance:
        # A detector resizes its input and works on boxes; only its backbone is a plain map of
        # the (resized) image, so the field is traced there.
        traced, prefix = model.backbone, "backbone."
    paths = {n: p[len(prefix):] for n, p in rows.items() if p.startswith(prefix) or p == ""}
    try:
        fields = receptive_fields(traced, list(dict.fromkeys(paths.values())), input_size)
    except ReceptiveFieldError as exc:
        raise CommandError(f"{spec.name}: {exc}") from None
    table = []
    for name, path in rows.items():
        row = {"name": name, "module": path or "(model output)"}
        if name in paths:
            rf = fields[paths[name]]
            row.update(rf.to_dict(), covers_image_size=all(
                s >= n for s, n in zip(rf.size, input_size)))
        else:
            row["note"] = "runs per box or per pyramid level, not on one image-aligned map"
        table.append(row)
    return table


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.2f}".rstrip("0")


def _pair(values) -> str:
    a, b = values
    return _number(a) if a == b else f"{_number(a)}×{_number(b)}"


def _print_table(spec, config: str, input_size, table: list[dict]) -> None:
    h, w = input_size
    print(f"{spec.title} ({config}), input {h}×{w}, output stride {spec.output_stride}")
    if spec.instance:
        print("fields are in the image the detector sees after its own resize")
    name_w = max(len("branch"), *(len(r["name"]) for r in table))
    mod_w = max(len("module"), *(len(r["module"]) for r in table))
    print(f"{'branch':<{name_w}}  {'module':<{mod_w}}  {'size':>9}  {'jump':>6}  ≥ image")
    for r in table:
        if "size" not in r:
            print(f"{r['name']:<{name_w}}  {r['module']:<{mod_w}}  {r['note']}")
            continue
        print(f"{r['name']:<{name_w}}  {r['module']:<{mod_w}}  {_pair(r['size']):>9}  "
              f"{_pair(r['jump']):>6}  {'yes' if r['covers_image_size'] else 'no'}")


def run(args: argparse.Namespace) -> int:
    if min(args.input_size) < 1:
        raise CommandError(f"--input-size {args.input_size[0]} {args.input_size[1]}: sizes must "
                           "be positive")
    import torch

    from segstudio.models import registry

    try:
        spec = registry.get_spec(args.model)
        config = args.config or ("lite" if "lite" in spec.configs else spec.configs[0])
        with torch.device("meta"):
            model = registry.build_model(args.model, 21, config)
    except (registry.UnknownModelError, registry.ModelConfigError) as exc:
        raise CommandError(str(exc)) from None
    input_size = tuple(args.input_size)
    table = field_table(model, spec, input_size, args.layer)
    if args.json:
        print(json.dumps({"model": spec.name, "config": config,
                          "input_size": list(input_size), "output_stride": spec.output_stride,
                          "fields": table}, indent=2))
    else:
        _print_table(spec, config, input_size, table)
    return 0
