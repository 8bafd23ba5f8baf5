"""``segstudio rf``: the theoretical receptive field of every probed branch of a model."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from segstudio.commands import CommandError
from segstudio.commands._args import whole

HELP = ("print the theoretical receptive field (size and jump in input pixels, and its smallest "
        "and largest size over the units) of every probed branch and backbone stage of a model; "
        "the model is built on the meta device, so even paper configurations take no memory")

OUTPUT_ROW = "output"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="NAME",
                        help="a registry model, e.g. pspnet, deeplabv3, fcn8s, unet (optional "
                             "with --weights, which names its own)")
    parser.add_argument("--weights", metavar="FILE",
                        help="a segstudio checkpoint: trace the network as the file builds it "
                             "(its configuration, and layers it was trained without, such as "
                             "DeepLab v1's pool5a in older files)")
    parser.add_argument("--config", choices=("lite", "paper"),
                        help="lite (reduced width/depth) or paper configuration (default lite, "
                             "or the only one a model has; a checkpoint names its own)")
    parser.add_argument("--layer", metavar="NAME",
                        help="only this branch (a probe name such as psp.bin6) or module path")
    parser.add_argument("--input-size", nargs=2, type=whole(1, 100_000), default=(512, 512),
                        metavar=("H", "W"),
                        help="input size in pixels; it matters only for image-level pooling "
                             "and resizing (default 512 512)")
    parser.add_argument("--at", nargs=2, type=int, metavar=("X", "Y"),
                        help="also give each branch's exact box at this image pixel (the unit "
                             "under it; the pixel itself for the output) and, for atrous "
                             "branches, how many 3×3 taps read inside the feature map there")
    parser.add_argument("--tap-curve", nargs="?", type=int, const=65, metavar="SIZE",
                        help="print DeepLab v3's Fig. 4 from the model's atrous convolution: "
                             "the fraction of 3×3 weights that read a SIZE×SIZE feature map "
                             "(default 65) against the atrous rate")
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


def field_table(model, spec, input_size, only: str | None = None, at=None) -> list[dict]:
    """One dict per row: name, module, size, jump, start, covers_image_size, size_min and
    size_max (over the units, per axis); with ``at=(x, y)`` also the unit there, its box and,
    for an atrous branch, its valid taps. A row that has no image-aligned map gets a note."""
    from segstudio.explain.atrous import atrous_conv, valid_taps
    from segstudio.explain.pixel_fields import pixel_fields
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
        units = pixel_fields(traced, list(dict.fromkeys(paths.values())), input_size)
    except ReceptiveFieldError as exc:
        raise CommandError(f"{spec.name}: {exc}") from None
    table = []
    for name, path in rows.items():
        row = {"name": name, "module": path or "(model output)"}
        if name in paths:
            rf = fields[paths[name]]
            row.update(rf.to_dict(), covers_image_size=all(
                s >= n for s, n in zip(rf.size, input_size)))
            per_unit = units[paths[name]]
            (h_min, h_max), (w_min, w_max) = per_unit.size_range()
            row.update(size_min=[h_min, w_min], size_max=[h_max, w_max])
            if at is not None:
                fy, fx = per_unit.unit_at(at[1], at[0])
                row.update(unit=[fx, fy], box=list(per_unit.box(fy, fx)))
                conv = atrous_conv(traced.get_submodule(paths[name])) \
                    if re.search(r"rate\d+$", name) else None
                if conv is not None and per_unit.input_map is not None:
                    row["valid_taps"] = valid_taps(conv, per_unit.input_map, (fy, fx))
        else:
            row["note"] = "runs per box or per pyramid level, not on one image-aligned map"
        table.append(row)
    return table


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.2f}".rstrip("0")


def _pair(values) -> str:
    a, b = values
    return _number(a) if a == b else f"{_number(a)}×{_number(b)}"


def _print_table(spec, config: str, input_size, table: list[dict], weights=None) -> None:
    h, w = input_size
    source = f", as built by {Path(weights).name}" if weights else ""
    print(f"{spec.title} ({config}{source}), input {h}×{w}, output stride "
          f"{spec.output_stride}")
    if spec.instance:
        print("fields are in the image the detector sees after its own resize")
    name_w = max(len("branch"), *(len(r["name"]) for r in table))
    mod_w = max(len("module"), *(len(r["module"]) for r in table))
    at = any("box" in r for r in table)
    print(f"{'branch':<{name_w}}  {'module':<{mod_w}}  {'size':>9}  {'per unit':>11}  "
          f"{'jump':>6}  ≥ image" + ("  box x0,y0,x1,y1 (taps)" if at else ""))
    for r in table:
        if "size" not in r:
            print(f"{r['name']:<{name_w}}  {r['module']:<{mod_w}}  {r['note']}")
            continue
        spread = "–".join(_pair(v) for v in (r["size_min"], r["size_max"])) \
            if r["size_min"] != r["size_max"] else _pair(r["size_min"])
        line = (f"{r['name']:<{name_w}}  {r['module']:<{mod_w}}  {_pair(r['size']):>9}  "
                f"{spread:>11}  {_pair(r['jump']):>6}  "
                f"{'yes' if r['covers_image_size'] else 'no ':<7}")
        if "box" in r:
            line += "  " + ",".join(map(str, r["box"]))
            line += f" ({r['valid_taps']}/9 taps)" if "valid_taps" in r else ""
        print(line.rstrip())


def run(args: argparse.Namespace) -> int:
    if min(args.input_size) < 1:
        raise CommandError(f"--input-size {args.input_size[0]} {args.input_size[1]}: sizes must "
                           "be positive")
    import torch

    from segstudio.models import registry

    if args.weights:
        model, spec, config = _checkpoint_model(args)
    else:
        if args.model is None:
            raise CommandError("give --model NAME or --weights FILE")
        try:
            spec = registry.get_spec(args.model)
            config = args.config or ("lite" if "lite" in spec.configs else spec.configs[0])
            with torch.device("meta"):
                model = registry.build_model(args.model, 21, config)
        except (registry.UnknownModelError, registry.ModelConfigError) as exc:
            raise CommandError(str(exc)) from None
    input_size = tuple(args.input_size)
    if args.at is not None and not (0 <= args.at[0] < input_size[1] and
                                    0 <= args.at[1] < input_size[0]):
        raise CommandError(f"--at {args.at[0]} {args.at[1]}: outside the {input_size[1]}×"
                           f"{input_size[0]} input (x < W, y < H)")
    if args.tap_curve is not None and args.tap_curve < 1:
        raise CommandError(f"--tap-curve {args.tap_curve}: the map size must be positive")
    table = field_table(model, spec, input_size, args.layer, args.at)
    curve = _tap_curve(model, spec, args.tap_curve) if args.tap_curve else None
    if args.json:
        report = {"model": spec.name, "config": config, "input_size": list(input_size),
                  "output_stride": spec.output_stride, "fields": table}
        if args.weights:
            report["weights"] = str(args.weights)
        if args.at is not None:
            report["at"] = list(args.at)
        if curve is not None:
            report["tap_curve"] = curve.to_dict()
        print(json.dumps(report, indent=2))
    else:
        _print_table(spec, config, input_size, table, args.weights)
        if curve is not None:
            _print_curve(curve)
    return 0


def _checkpoint_model(args: argparse.Namespace):
    """(model, spec, config) of a checkpoint, built and loaded as every other reader of the file
    builds it, so that the traced network is the one the weights run in."""
    from segstudio.models import registry
    from segstudio.models.checkpoint import CheckpointError, load_checkpoint, read_meta

    try:
        meta = read_meta(args.weights)
        if args.model is not None and args.model != meta.arch:
            raise CommandError(f"{args.weights}: holds a {meta.arch!r} network, not "
                               f"{args.model!r}")
        if args.config is not None and args.config != meta.config:
            raise CommandError(f"{args.weights}: holds the {meta.config!r} configuration, not "
                               f"{args.config!r}")
        model, meta = load_checkpoint(args.weights)
        spec = registry.get_spec(meta.arch)
    except (CheckpointError, registry.UnknownModelError) as exc:
        raise CommandError(str(exc)) from None
    return model, spec, meta.config


def _tap_curve(model, spec, size: int):
    """DeepLab v3 Fig. 4 for the model's first atrous branch."""
    from segstudio.explain.atrous import atrous_conv, tap_curve

    for path in spec.branches.values():
        try:
            conv = atrous_conv(model.get_submodule(path))
        except AttributeError:
            continue
        if conv is not None:
            return tap_curve(conv, size)
    raise CommandError(f"{spec.name} has no atrous branch; --tap-curve needs one (deeplabv2, "
                       "deeplabv3)")


def _print_curve(curve) -> None:
    counts = curve.counts
    print(f"\nvalid {curve.kernel}×{curve.kernel} weights on a {curve.size}×{curve.size} "
          "feature map (DeepLab v3, Fig. 4): the mean fraction, and the share of units with "
          "each number of valid weights")
    print(f"{'rate':>5}  {'valid':>6}  " + "  ".join(f"{f'{n} valid':>7}" for n in counts))
    for i, (rate, v) in enumerate(zip(curve.rates, curve.valid_fraction)):
        print(f"{rate:>5}  {v:>6.3f}  " + "  ".join(f"{curve.shares[n][i]:>7.3f}"
                                                   for n in counts))
