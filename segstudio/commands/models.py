"""``segstudio models``: list the architectures of the model zoo."""

from __future__ import annotations

import argparse
import json

HELP = "list the segmentation architectures, their papers and probe-able branches"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print the whole registry as JSON instead of a table")


def table_rows() -> list[list[str]]:
    """Header and one row per model: name, title, year, family, output stride, CRF, branches."""
    from segstudio.models.registry import REGISTRY

    rows = [["NAME", "TITLE", "YEAR", "FAMILY", "OS", "CRF", "BRANCHES"]]
    for spec in REGISTRY.values():
        rows.append([spec.name, spec.title, str(spec.year), spec.family,
                     str(spec.output_stride), "yes" if spec.uses_crf else "no",
                     ", ".join(spec.branches)])
    return rows


def run(args: argparse.Namespace) -> int:
    from segstudio.models.registry import REGISTRY

    if args.json:
        print(json.dumps({name: spec.to_dict() for name, spec in REGISTRY.items()}, indent=2,
                         ensure_ascii=False))
        return 0
    rows = table_rows()
    # The last column (branches) is left unpadded: it is long and ends the line.
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row, widths)]
        print("  ".join(cells + [row[-1]]))
    return 0
