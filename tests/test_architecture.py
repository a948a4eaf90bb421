"""The layout is the architecture (docs/ARCHITECTURE.md): modules import only their own stage or earlier
ones, and no two modules import each other, directly or around a loop.

Imports are read from the source (module level and inside functions alike); those under
`if TYPE_CHECKING:` are for type checkers only and do not count.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# The pipeline, first to last. A module may import modules of its own stage and of earlier stages.
STAGES = [
    (
        "foundation",
        [
            "dcgan",
            "dcgan.errors",
            "dcgan.fileio",
            "dcgan.progress",
            "dcgan.device",
            "dcgan.threads",
            "dcgan.images",
        ],
    ),
    ("config", ["dcgan.config"]),
    ("data", ["dcgan.data", "dcgan.data.*"]),
    ("models", ["dcgan.frozen", "dcgan.models", "dcgan.artifacts"]),
    ("training", ["dcgan.training", "dcgan.training.*"]),
    ("sampling", ["dcgan.sampling"]),
    ("probes", ["dcgan.probes", "dcgan.probes.*"]),
    ("metrics", ["dcgan.metrics", "dcgan.metrics.*"]),
    ("report", ["dcgan.report", "dcgan.report.*"]),
    ("api", ["dcgan.api", "dcgan.api.*"]),
    ("cli", ["dcgan.cli", "dcgan.cli.*", "dcgan.__main__"]),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage(module: str) -> int:
    for i, (_, patterns) in enumerate(STAGES):
        if any(fnmatch.fnmatchcase(module, p) for p in patterns):
            return i
    raise AssertionError(f"{module} belongs to no stage: add it to STAGES and docs/ARCHITECTURE.md")


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path, modules: set[str]) -> set[str]:
    """The dcgan modules that `path` imports at run time (resolving `from dcgan.x import y` to dcgan.x.y
    when y is a module)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "dcgan")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "dcgan":
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in modules else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in (SRC / "dcgan").rglob("*.py")}
    graph = {m: imports(p, set(files)) - {m} for m, p in files.items()}
    for m, deps in graph.items():  # importing dcgan.a.b runs dcgan.a's __init__ first: not an edge of m's own
        graph[m] = {d for d in deps if not m.startswith(d + ".")}
    return graph


def test_every_module_belongs_to_a_stage():
    for m in import_graph():
        stage(m)


def test_no_module_imports_a_later_stage():
    later = [
        f"{m} ({STAGES[stage(m)][0]}) imports {d} ({STAGES[stage(d)][0]})"
        for m, deps in import_graph().items()
        for d in sorted(deps)
        if stage(d) > stage(m)
    ]
    assert later == []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import loops found by a depth-first walk, each as [a, b, …, a]."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    found: list[list[str]] = []

    def walk(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                found.append([*path[path.index(d) :], d])
            elif d not in state:
                walk(d, [*path, d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            walk(m, [m])
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_loops():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from dcgan.training.trainer import Trainer\n", {"dcgan.training.trainer"}),
        ("from dcgan import api\n", {"dcgan.api"}),
        ("def f():\n    from dcgan.sampling import generate\n", {"dcgan.sampling"}),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from dcgan.api import train\n", set()),
    ],
)
def test_the_checker_sees_imports_at_every_level_but_not_type_only_ones(tmp_path, source, expected):
    p = tmp_path / "m.py"
    p.write_text(source)
    assert imports(p, {"dcgan.api", "dcgan.training.trainer", "dcgan.sampling"}) == expected


def test_the_package_lists_what_it_exports():
    import dcgan

    assert set(dcgan.__all__) == set(dcgan._API)
    assert set(dcgan.__all__) <= set(dir(dcgan))
    for name in dcgan.__all__:  # each resolves, and is documented for help() and completion
        assert getattr(dcgan, name).__doc__, name
