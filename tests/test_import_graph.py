"""The package is a DAG: no import cycle between its areas, nor between its modules.

The imports are read from the source with :mod:`ast` (nothing is imported), including
the imports inside functions, which a cycle otherwise hides until run time. An *area*
is a top-level subpackage or module of ``cipherfuse`` (``he``, ``nn``, ``cli``,
``errors``, ...), except that ``he.nn`` and ``he.seeded`` are areas of their own: they
build on the scheme in ``he``, which must not need them.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import cipherfuse

PACKAGE_DIR = Path(cipherfuse.__file__).resolve().parent
#: Compiled modules: importable, no source to read.
EXTENSION_MODULES = frozenset({"cipherfuse._core"})
#: Areas split out of their parent subpackage.
SPLIT_AREAS = ("he.nn", "he.seeded")

#: Edges that point the wrong way, with the reason; each must stay absent.
FORBIDDEN_EDGES: dict[tuple[str, str], str] = {
    ("analysis", "cli"): "experiments do not know the command line (cli imports analysis)",
    ("he", "he.nn"): "the HE scheme is below the encrypted layers built on it",
    ("he", "he.seeded"): "the HE scheme is below the seeded packed layout built on it",
    ("he", "nn"): "the HE scheme (and its numpy reference kernels) needs no JAX",
    ("he", "fusion"): "the HE scheme is below the fusion models",
    ("he.seeded", "he.nn"): "the seeded layout does not need the encrypted layers",
    ("nn", "he"): "plaintext models do not know about encryption",
    ("nn", "he.nn"): "plaintext models do not know about encryption",
    ("nn", "fusion"): "the fusion models are built on nn, not the other way",
    ("data", "nn"): "data sets do not know the models trained on them",
    ("geometry", "he"): "the convolution geometry is numpy only, below he and nn",
    ("geometry", "nn"): "the convolution geometry is numpy only, below he and nn",
}
#: The command line is the top: only ``python -m cipherfuse`` may import it.
MAY_IMPORT_CLI = frozenset({"__main__"})


@dataclass(frozen=True)
class Import:
    """One import statement resolved to the ``cipherfuse`` module it loads."""

    source: str  # importing module
    target: str  # imported module
    line: int
    at_runtime: bool  # False inside ``if TYPE_CHECKING:``


def _modules() -> dict[str, tuple[Path, bool]]:
    """``{module name: (file, is a package)}`` for every source file of the package."""
    out: dict[str, tuple[Path, bool]] = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = ["cipherfuse", *path.relative_to(PACKAGE_DIR).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


MODULES = _modules()
KNOWN = frozenset(MODULES) | EXTENSION_MODULES


def _nearest_module(name: str) -> str:
    while name not in KNOWN and "." in name:
        name = name.rpartition(".")[0]
    return name


def _imports_in(module: str) -> list[Import]:
    path, is_package = MODULES[module]
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, at_runtime: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, at_runtime)
            return
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # ``from pkg import name`` loads the submodule pkg.name when there is one
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in KNOWN else base
                for alias in node.names
            ]
        for target in targets:
            if target == "cipherfuse" or target.startswith("cipherfuse."):
                resolved = _nearest_module(target)
                if resolved != module:
                    found.append(Import(module, resolved, getattr(node, "lineno", 0), at_runtime))
        for child in ast.iter_child_nodes(node):
            visit(child, at_runtime)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), True)
    return found


ALL_IMPORTS = [imp for module in MODULES for imp in _imports_in(module)]


def area_of(module: str) -> str:
    """The area of ``cipherfuse.x.y...``: ``x``, or ``he.nn`` / ``he.seeded``."""
    rest = module.split(".")[1:]
    if not rest:
        return "cipherfuse"
    for split in SPLIT_AREAS:
        if ".".join(rest[: split.count(".") + 1]) == split:
            return split
    return rest[0]


def _area_graph() -> dict[tuple[str, str], list[Import]]:
    edges: dict[tuple[str, str], list[Import]] = defaultdict(list)
    for imp in ALL_IMPORTS:
        a, b = area_of(imp.source), area_of(imp.target)
        if a != b:
            edges[(a, b)].append(imp)
    return dict(edges)


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    nodes = sorted(set(graph) | {w for ws in graph.values() for w in ws})
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def _site(imp: Import) -> str:
    where = MODULES[imp.source][0].relative_to(PACKAGE_DIR.parent)
    return f"{where}:{imp.line} imports {imp.target}"


def _describe(edges: dict[tuple[str, str], list[Import]]) -> str:
    lines = []
    for (a, b), sites in sorted(edges.items()):
        lines.append(f"  {a} -> {b}  ({len(sites)} imports, e.g. {_site(sites[0])})")
    return "\n".join(lines)


def test_the_import_reader_sees_function_local_and_submodule_imports() -> None:
    # known imports of the tree: a lazy one inside a function and ``from pkg import module``
    # (cipherfuse/__init__.py: ``from cipherfuse.api import run_demo`` in ``__getattr__`` and
    # under ``if TYPE_CHECKING:``)
    lazy = [i for i in ALL_IMPORTS if i.source == "cipherfuse" and i.target == "cipherfuse.api"]
    assert {i.at_runtime for i in lazy} == {True, False}
    assert any(i.target == "cipherfuse._core" for i in ALL_IMPORTS)
    submodule = ("cipherfuse.cli.reproduce_commands", "cipherfuse.cli.cases_commands")
    assert any((i.source, i.target) == submodule for i in ALL_IMPORTS)
    assert area_of("cipherfuse.he.nn.layers") == "he.nn"
    assert area_of("cipherfuse.he.seeded") == "he.seeded"
    assert area_of("cipherfuse.he.scheme") == "he"
    assert area_of("cipherfuse.errors") == "errors"
    assert _strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ["a", "b", "c"]
    ]
    assert _strongly_connected({"a": {"b"}, "b": {"c"}}) == []


def test_areas_form_a_dag() -> None:
    edges = _area_graph()
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    cycles = _strongly_connected(graph)
    detail = []
    for component in cycles:
        inside = {e: s for e, s in edges.items() if e[0] in component and e[1] in component}
        detail.append(f"cycle {' <-> '.join(component)}:\n{_describe(inside)}")
    assert not cycles, "\n".join(detail) + "\n\nthe area graph:\n" + _describe(edges)


def test_no_forbidden_edges_between_areas() -> None:
    edges = _area_graph()
    bad = [
        f"{a} -> {b}: {FORBIDDEN_EDGES[(a, b)]}; {_site(edges[(a, b)][0])}"
        for a, b in sorted(edges)
        if (a, b) in FORBIDDEN_EDGES
    ]
    bad += [
        f"{a} -> cli: only {sorted(MAY_IMPORT_CLI)} may import the command line; "
        f"{_site(edges[(a, b)][0])}"
        for a, b in sorted(edges)
        if b == "cli" and a not in MAY_IMPORT_CLI and (a, b) not in FORBIDDEN_EDGES
    ]
    assert not bad, "\n".join(bad) + "\n\nthe area graph:\n" + _describe(edges)


def test_modules_form_a_dag() -> None:
    # Module level: the imports that run (inside functions too, not those only the type
    # checker sees), plus the package ``__init__`` every submodule import runs first.
    graph: dict[str, set[str]] = defaultdict(set)
    sites: dict[tuple[str, str], Import] = {}
    for imp in ALL_IMPORTS:
        if not imp.at_runtime:
            continue
        parts = imp.target.split(".")
        parents = [".".join(parts[:i]) for i in range(2, len(parts))]  # not the root package
        # a parent package of the importer itself is already being initialized
        inside = (imp.source + ".").startswith
        for target in [imp.target] + [p for p in parents if not inside(p + ".")]:
            graph[imp.source].add(target)
            sites.setdefault((imp.source, target), imp)
    cycles = _strongly_connected(graph)
    detail = []
    for component in cycles:
        inside = sorted(e for e in sites if e[0] in component and e[1] in component)
        detail.append(
            f"cycle between {', '.join(component)}:\n"
            + "\n".join(f"  {a} -> {b}  ({_site(sites[(a, b)])})" for a, b in inside)
        )
    assert not cycles, "\n".join(detail)


def test_reference_kernels_convolve_without_jax() -> None:
    # The numpy reference of the scheme must work where JAX is absent (a bare wheel).
    script = """
import json, sys
import numpy as np
import cipherfuse.he
from cipherfuse.he.reference import ReferenceKernels

rng = np.random.default_rng(7)
x = rng.integers(-50, 50, size=(2, 5, 6, 3), dtype=np.int64)
kern = rng.integers(0, 2**63, size=(3, 2, 3, 4), dtype=np.uint64)
bias = rng.integers(0, 2**63, size=4, dtype=np.uint64)
k = ReferenceKernels()
out = k.conv2d(x, kern, bias, (2, 1), "SAME")
l1 = k.conv2d_patch_l1_max(x, (3, 2), (2, 1), "SAME")
print(json.dumps({"jax": sorted(m for m in sys.modules if m.split(".")[0] in ("jax", "flax")),
                  "out": [str(v) for v in out.ravel()], "shape": list(out.shape), "l1": l1}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=300
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["jax"] == [], f"importing/using the reference kernels loaded {got['jax']}"
    # independent reference: a direct loop over output positions, SAME padding with the
    # odd row/column below/right (Flax/XLA), arithmetic mod 2^64 in Python integers
    import numpy as np

    rng = np.random.default_rng(7)
    x = rng.integers(-50, 50, size=(2, 5, 6, 3), dtype=np.int64)
    kern = rng.integers(0, 2**63, size=(3, 2, 3, 4), dtype=np.uint64)
    bias = rng.integers(0, 2**63, size=4, dtype=np.uint64)
    (h, w), (kh, kw), (sh, sw) = x.shape[1:3], kern.shape[:2], (2, 1)
    oh, ow = -(-h // sh), -(-w // sw)
    top = max((oh - 1) * sh + kh - h, 0) // 2
    left = max((ow - 1) * sw + kw - w, 0) // 2
    want, l1 = [], 0
    for n in range(2):
        for i in range(oh):
            for j in range(ow):
                patch_l1 = 0
                acc = [int(b) for b in bias]
                for dy in range(kh):
                    for dx in range(kw):
                        y, xx = i * sh + dy - top, j * sw + dx - left
                        if 0 <= y < h and 0 <= xx < w:
                            for c in range(3):
                                v = int(x[n, y, xx, c])
                                patch_l1 += abs(v)
                                for f in range(4):
                                    acc[f] += v * int(kern[dy, dx, c, f])
                l1 = max(l1, patch_l1)
                want += [str(a % 2**64) for a in acc]
    assert got["shape"] == [2, oh, ow, 4]
    assert got["out"] == want
    assert got["l1"] == l1
