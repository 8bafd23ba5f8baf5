"""``segstudio models``: list the architectures of the model zoo, and the trained models (the
user's and the bundled ones) by the name ``predict --model`` takes, with their classes and
files."""

from __future__ import annotations

import argparse
import json
import textwrap

HELP = ("list the segmentation architectures, their papers, probe-able branches and parameter "
        "counts (lite and paper configuration, for 21 classes)")

COUNT_CLASSES = 21
"""Parameter counts are given for PASCAL VOC's 21 classes; the classifier grows with more."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print the whole registry as JSON instead of a table")
    parser.add_argument("--trained", action="store_true",
                        help="only the trained models: name, architecture, classes, file")


def trained_models() -> list[dict]:
    """The trained models by name (the user's first, then the bundled ones), read from their
    files' metadata; a file that cannot be read is listed with its reason."""
    from segstudio.models.checkpoint import CheckpointError, read_meta
    from segstudio.models.named_models import named_models

    rows = []
    for m in named_models():
        row = {"name": m.name, "where": m.where, "file": str(m.path)}
        try:
            meta = read_meta(m.path)
            row.update(arch=meta.arch, config=meta.config, classes=list(meta.classes.names))
        except CheckpointError as exc:
            row["broken"] = str(exc)
        rows.append(row)
    return rows


def _print_trained(rows: list[dict]) -> None:
    print("Trained models (segstudio predict --model NAME):")
    for r in rows:
        what = (f"{r['arch']} ({r['config']}), classes: {', '.join(r['classes'])}"
                if "broken" not in r else f"cannot be used: {r['broken']}")
        print(f"  {r['name']}  [{r['where']}]  {what}\n    {r['file']}")


def parameter_counts() -> dict[str, dict[str, int]]:
    """Model name -> {configuration: parameters}, counted on meta-device builds."""
    from segstudio.models.registry import REGISTRY, parameter_count

    return {name: {config: parameter_count(name, config, COUNT_CLASSES)
                   for config in spec.configs} for name, spec in REGISTRY.items()}


def millions(n: int | None) -> str:
    """``3.92M`` for 3 916 477; ``—`` for a configuration the model does not have."""
    return "—" if n is None else f"{n / 1e6:.{2 if n < 1e7 else 1}f}M"


def table_rows(counts: dict[str, dict[str, int]] | None = None) -> list[list[str]]:
    """Header and one row per model: name, title, year, family, output stride, CRF, parameters
    of the lite and paper configurations, branches."""
    from segstudio.models.registry import REGISTRY

    counts = parameter_counts() if counts is None else counts
    rows = [["NAME", "TITLE", "YEAR", "FAMILY", "OS", "CRF", "LITE", "PAPER", "BRANCHES"]]
    for spec in REGISTRY.values():
        params = counts.get(spec.name, {})
        rows.append([spec.name, spec.title, str(spec.year), spec.family,
                     str(spec.output_stride), "yes" if spec.uses_crf else "no",
                     millions(params.get("lite")), millions(params.get("paper")),
                     ", ".join(spec.branches)])
    return rows


def run(args: argparse.Namespace) -> int:
    from segstudio.models.registry import REGISTRY

    if args.trained:
        rows = trained_models()
        if args.json:
            print(json.dumps(rows, indent=2, ensure_ascii=False))
        else:
            _print_trained(rows)
        return 0
    counts = parameter_counts()
    if args.json:
        print(json.dumps({name: dict(spec.to_dict(), parameters=counts[name],
                                     parameters_for_classes=COUNT_CLASSES)
                          for name, spec in REGISTRY.items()}, indent=2, ensure_ascii=False))
        return 0
    rows = table_rows(counts)
    # The last column (branches) is left unpadded: it is long and ends the line.
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row, widths)]
        print("  ".join(cells + [row[-1]]))
    print(f"\nLITE, PAPER: parameters of each configuration for {COUNT_CLASSES} classes "
          "(— where a model has no such configuration)")
    differing = [spec for spec in REGISTRY.values() if spec.paper_differences]
    if differing:
        print("\nWhere the zoo differs from the papers:")
        for spec in differing:
            print(textwrap.fill(" ".join(spec.paper_differences), width=100,
                                initial_indent=f"  {spec.name}: ", subsequent_indent="    "))
    print()
    _print_trained(trained_models())
    return 0
