"""Imports point inward: the domain knows only the standard library and eventsourcing."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED_THIRD_PARTY = {"eventsourcing"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_domain_imports_only_stdlib_eventsourcing_and_itself() -> None:
    offenders = {}
    for path in sorted((ROOT / "domain").rglob("*.py")):
        foreign = {name for name in imported_modules(path)
                   if name not in sys.stdlib_module_names
                   and name not in ALLOWED_THIRD_PARTY and name != "domain"}
        if foreign:
            offenders[path.name] = sorted(foreign)
    assert offenders == {}


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import fastapi\nfrom kafka import KafkaProducer\nimport decimal\n")
    assert imported_modules(sample) == {"fastapi", "kafka", "decimal"}
