"""The layout rules of the code base (docs/architecture.md, "File layout"): small files, short
functions, and a library that prints only from its command line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("blt_model", "benchmarks", "scripts")
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60
CONSOLE_PACKAGE = ROOT / "blt_model" / "cli"  # the one place in blt_model that talks to a person
UI_LIBRARIES = ("rich", "textual")


def _sources(*tops: str) -> list[Path]:
    return sorted(p for top in tops for p in (ROOT / top).rglob("*.py"))


def _is_table(node: ast.AST) -> bool:
    """A function that is one table (an argument parser spelled out as data) may be longer:
    every statement is an expression call, an assignment or a loop over literal rows."""
    body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return bool(body) and all(isinstance(s, ast.Assign | ast.AnnAssign | ast.Return) for s in body[:-1]) \
        and sum(isinstance(s, ast.Assign | ast.AnnAssign) for s in body) == 1 \
        and isinstance(body[0], ast.Assign | ast.AnnAssign) and isinstance(body[0].value, ast.List | ast.Tuple | ast.Dict)


def test_no_file_over_400_lines():
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in _sources(*CHECKED)
            if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES]
    assert not long, long


def test_no_function_over_60_lines():
    long = []
    for p in _sources(*CHECKED):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES and not _is_table(node):
                    long.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name}: {n} lines")
    assert not long, long


def _console_uses(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
            found.append(f"{where} print(")
        elif isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr") \
                and isinstance(node.value, ast.Name) and node.value.id == "sys":
            found.append(f"{where} sys.{node.attr}")
        elif isinstance(node, ast.Import):
            found += [f"{where} import {a.name}" for a in node.names if a.name.split(".")[0] in UI_LIBRARIES]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] in UI_LIBRARIES:
            found.append(f"{where} from {node.module} import")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cli" \
                and node.level > 0:
            found.append(f"{where} imports the command line")
    return found


def test_only_the_command_line_prints():
    """Outside blt_model/cli/, no module prints, writes to sys.stdout/sys.stderr, or imports rich
    or textual: the library reports through return values and callbacks."""
    offenders = [use for p in _sources("blt_model") if CONSOLE_PACKAGE not in p.parents
                 for use in _console_uses(p)]
    assert not offenders, offenders


@pytest.mark.parametrize("snippet", ["print('x')", "import sys\nsys.stderr.write('x')",
                                     "from rich.console import Console", "import textual.app",
                                     "from ..cli.report import TrainingProgress"])
def test_the_scan_sees_each_kind_of_console_use(tmp_path, snippet):
    p = ROOT / "blt_model" / "_layout_probe.py"
    try:
        p.write_text(snippet + "\n")
        assert _console_uses(p)
    finally:
        p.unlink(missing_ok=True)
