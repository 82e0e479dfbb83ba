"""The layout is part of the contract: no import cycles (counting imports anywhere in a
module, also inside functions), layers imported only downwards, ``settlement`` reached
from ``market`` only through the CLI, the public names pinned, small modules, and the
settlement stages in an order where every table is made before it is read."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("market", "settlement")
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every project module ``name`` imports, wherever the import statement stands."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_graph_sees_imports_inside_functions() -> None:
    # the CLI imports the settlement package lazily, inside a command: it must be counted
    assert any(t.startswith("settlement") for t in GRAPH["market.cli.settlement"])


def test_no_import_cycles() -> None:
    assert _cycles(GRAPH) == []


def test_cycle_detection_finds_a_planted_cycle() -> None:
    planted = {k: set(v) for k, v in GRAPH.items()}
    planted["market.io.batch"].add("market.io.read")  # read imports batch already
    assert any({"market.io.batch", "market.io.read"} <= set(c) for c in _cycles(planted))


# Layers in the order the data flows; a module may import its own layer and those below.
LAYERS = [
    ("market.enums", "market.errors", "market.extras"),
    ("market.io",),
    ("market.design",),
    ("market.clearing",),
    ("market.analysis",),
    ("market.testing",),
    ("market.cli", "market"),
]


def _layer(module: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes if p != "market") or module == "market":
            return rank if module != "market" else len(LAYERS) - 1
    raise AssertionError(f"{module} is in no layer")


def test_market_imports_only_downwards() -> None:
    upward = [
        (m, t, _layer(m), _layer(t))
        for m, targets in GRAPH.items()
        if m.startswith("market")
        for t in targets
        if t.startswith("market") and _layer(t) > _layer(m)
    ]
    assert upward == []


def test_settlement_is_reached_from_market_only_through_the_cli() -> None:
    bad = [
        (m, t)
        for m, targets in GRAPH.items()
        if m.startswith("market") and not m.startswith("market.cli")
        for t in targets
        if t.startswith("settlement")
    ]
    assert bad == []


def test_modules_are_small() -> None:
    big = {n: len(p.read_text().splitlines()) for n, p in MODULES.items()}
    assert {n: k for n, k in big.items() if k > MAX_LINES} == {}


MARKET_API = [
    "__version__",
    "Batch",
    "BatchConfig",
    "load_batch",
    "clear",
    "compare",
    "render_report",
    "Design",
    "Step",
    "load_design",
    "ClearingResult",
    "ClearingStatus",
    "Direction",
    "Service",
    "SignalState",
    "Pricing",
    "Buyer",
    "ConstraintScope",
    "SignalMode",
    "Tier",
    "FlexmarketError",
    "BatchError",
    "BatchValidationError",
    "DesignError",
    "SolverError",
    "SettlementError",
    "Finding",
    "FindingCode",
]
SETTLEMENT_API = ["settle", "check_meter", "SettlementResult", "SettleConfig", "load_config", "METHODS"]


@pytest.mark.parametrize(("package", "names"), [("market", MARKET_API), ("settlement", SETTLEMENT_API)])
def test_public_api_is_pinned(package: str, names: list[str]) -> None:
    mod = importlib.import_module(package)
    assert list(mod.__all__) == names
    for name in names:
        assert getattr(mod, name) is not None


def test_version_is_the_installed_one() -> None:
    from importlib import metadata

    import market

    assert market.__version__ == metadata.version("flexmarket")


def test_settlement_stages_read_only_what_earlier_stages_made() -> None:
    from settlement.pipeline import STAGES

    files = {"awards.parquet", "meter file"}
    made: set[str] = set()
    for stage in STAGES:
        missing = set(stage.consumes) - made - files
        assert not missing, f"stage {stage.name} reads {sorted(missing)} before any stage makes them"
        made |= set(stage.produces)
    assert "baselines" in made and "awards_t" in made
