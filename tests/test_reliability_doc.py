"""docs/reliability.md names, for each promise, the test that proves it: every test it names
exists, so a renamed or deleted test cannot leave a promise unproved on paper."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CITED = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_every_test_the_reliability_page_cites_exists():
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    cited = CITED.findall(text)
    assert len(cited) > 100
    missing = []
    names: dict[str, set[str]] = {}
    for file, test in cited:
        path = ROOT / file
        if not path.is_file():
            missing.append(f"{file} (no such file)")
            continue
        if test not in names.setdefault(file, _test_names(path)):
            missing.append(f"{file}::{test}")
    assert not missing, "docs/reliability.md cites tests that do not exist:\n" + "\n".join(missing)
