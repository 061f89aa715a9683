"""The library's imports run one way: commands -> library cores -> families/backends -> utilities.

Every ``import voxlora...`` in shared/voxlora (at module level or inside a function: both load the
module when run) is an edge. No module may import one in a layer above its own, and the modules
import no circle (Python's partial-module errors, and a sign that two modules are one concern).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "shared" / "voxlora"

# top to bottom; a module belongs to the first layer whose prefix names it (utilities: the rest)
LAYERS = {
    "cores": (
        "voxlora.train",
        "voxlora.synth",
        "voxlora.evaluation",
        "voxlora.merge",
        "voxlora.adapter_report",
        "voxlora.lora_options",
        "voxlora.prepare",
        "voxlora.recordings",
        "voxlora.rawdata_options",
        "voxlora.prepare_options",
        "voxlora.hf",
        "voxlora.corpora",
        "voxlora.demo_corpus",
        "voxlora.demo_model",
        "voxlora.clikit",
    ),
    "families/backends": (
        "voxlora.families",
        "voxlora.backends",
        "voxlora.models",
        "voxlora.peft_bridge",
        "voxlora.adapter",
        "voxlora.targets",
    ),
    "utilities": ("voxlora",),  # errors, atomic, audio, manifest, lora, codes_cache, modelfolder, turns, ...
}
RANK = {name: i for i, name in enumerate(LAYERS)}


def layer(module: str) -> str:
    for name, prefixes in LAYERS.items():
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return name
    raise AssertionError(module)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(("voxlora", *parts)).removesuffix(".__init__")


def graph() -> dict[str, set[str]]:
    """module -> the voxlora modules it imports (``from a import b`` is a.b when b is a module)."""
    paths = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
    edges = {}
    for module, path in paths.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("voxlora")}
            elif (
                isinstance(node, ast.ImportFrom)
                and node.level == 0
                and (node.module or "").startswith("voxlora")
            ):
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    deps.add(sub if sub in paths else node.module)
        edges[module] = {d for d in deps if d in paths and d != module}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_the_library():
    edges = graph()
    assert "voxlora.train.recipe" in edges and "voxlora.families.registry" in edges["voxlora.train.recipe"]


def test_no_import_circles():
    assert cycles(graph()) == []


def test_no_module_imports_a_layer_above_its_own():
    upward = [
        f"{m} ({layer(m)}) imports {d} ({layer(d)})"
        for m, deps in graph().items()
        for d in sorted(deps)
        if RANK[layer(d)] < RANK[layer(m)]
    ]
    assert upward == []


@pytest.mark.parametrize(
    "edges, expected",
    [({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]), ({"a": {"b"}, "b": set()}, [])],
)
def test_cycles_finds_circles(edges, expected):
    assert cycles(edges) == expected


def test_the_library_and_commands_import_no_test_fixture():
    tools = Path(__file__).resolve().parents[2] / "tools"
    for path in [*tools.glob("*.py"), *ROOT.rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "tests" for a in node.names), path
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "tests", path
