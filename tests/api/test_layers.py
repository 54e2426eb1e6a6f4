"""HTTP stays at the edge: only the routes and the application import FastAPI or Starlette."""

from __future__ import annotations

import ast
from pathlib import Path

API = Path(__file__).resolve().parents[2] / "api"
# Where HTTP lives: the routes, the application that assembles them, and (later) the web pages.
HTTP_PLACES = ("routes/", "web/", "app.py")
HTTP_PACKAGES = ("fastapi", "starlette")


def _imports(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_no_module_below_the_routes_imports_fastapi_or_starlette():
    offenders = []
    for path in sorted(API.rglob("*.py")):
        where = path.relative_to(API).as_posix()
        if where.startswith(HTTP_PLACES):
            continue
        for name in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if name.split(".")[0] in HTTP_PACKAGES:
                offenders.append(f"api/{where}: {name}")
    assert offenders == []


def test_the_scan_sees_the_routes_imports():
    """The scan would see an offender: the routes do import FastAPI."""
    tree = ast.parse((API / "routes" / "evaluate.py").read_text(encoding="utf-8"))
    assert "fastapi" in {n.split(".")[0] for n in _imports(tree)}
