"""A lean install: ``--help`` of every verb stays fast because it imports no heavy library, and
the package's modules import each other without cycles."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from dermasynth_builder.sources.registry import REGISTRY

PACKAGE = Path(__file__).resolve().parents[1] / "dermasynth_builder"
HEAVY = ("pandas", "numpy", "pyarrow", "datasets", "google.genai", "matplotlib")
VERBS = {
    (),
    ("sources",),
    ("sources", "check"),
    ("sources", "list"),
    ("plan",),
    ("generate",),
    ("status",),
    ("cancel",),
    ("curate",),
    ("package",),
    ("push",),
    ("run",),
    ("demo",),
    ("import-original",),
}

# Runs in a fresh interpreter: walks every verb of the click group (so a new verb is covered
# without editing this test), shows its --help, and notes which heavy modules appeared first there.
HELP_SCRIPT = """
import contextlib, io, json, sys
import click
from dermasynth_builder.cli import cli

heavy = {heavy!r}
def verbs(group, path=()):
    yield path
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from verbs(command, (*path, name))
        else:
            yield (*path, name)

report = []
for verb in verbs(cli):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            cli.main([*verb, "--help"], prog_name="dermasynth")
        except SystemExit as exc:
            code = exc.code
        else:
            code = 0
    loaded = [m for m in heavy if m in sys.modules]
    report.append({{"verb": verb, "code": code, "usage": buf.getvalue().startswith("Usage:"),
                    "loaded": loaded}})
print(json.dumps(report))
"""


def test_help_of_every_verb_imports_no_heavy_library():
    proc = subprocess.run(
        [sys.executable, "-c", HELP_SCRIPT.format(heavy=HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    seen = {tuple(item["verb"]) for item in report}
    assert seen >= VERBS, f"verbs missing from the CLI: {sorted(VERBS - seen)}"
    for item in report:
        name = " ".join(["dermasynth", *item["verb"]])
        assert item["code"] == 0 and item["usage"], f"{name} --help did not show help"
        assert not item["loaded"], f"{name} --help imported {', '.join(item['loaded'])}"


def test_source_names_and_licences_are_cheap():
    """Planning, the card and `sources list` read names and licences without loading readers."""
    readers = [f"dermasynth_builder.sources.{info.reader}" for info in REGISTRY.values()]
    script = (
        "import sys\n"
        "from dermasynth_builder.sources import SOURCES\n"
        "from dermasynth_builder.sources.registry import REGISTRY\n"
        "assert list(SOURCES) == list(REGISTRY) and 'scin' in SOURCES and 'nope' not in SOURCES\n"
        "assert all(info.license_info.link for info in REGISTRY.values())\n"
        f"print(sorted(set(sys.modules) & {set(HEAVY) | set(readers)!r}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time_nodes(node: ast.AST):
    """Import statements that run when the module is imported: not in functions, not under
    ``if TYPE_CHECKING:`` (class bodies and try/if blocks do run, so they count)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _import_time_nodes(ast.Module(body=[other], type_ignores=[]))
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        else:
            yield from _import_time_nodes(child)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports at import time."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _import_time_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                    for alias in node.names
                ]
            graph[name].update(t for t in targets if t in files and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_one_cycle(graph, set(c)) for c in components]


def _one_cycle(graph: dict[str, set[str]], members: set[str]) -> list[str]:
    start = min(members)
    path, seen = [start], {start}
    while True:
        nxt = min(n for n in graph[path[-1]] if n in members)
        if nxt in seen:
            return [*path[path.index(nxt) :], nxt]
        path.append(nxt)
        seen.add(nxt)


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)
