"""No import cycle at module level in ``faceanon`` and ``ddfa_v3``: importing any module never needs
a module that is still half-initialised (imports inside functions, made when called, do not count)."""

from __future__ import annotations

import ast
from pathlib import Path

import faceanon

ROOTS = ("faceanon", "ddfa_v3")


def _modules(src: Path) -> dict[str, Path]:
    mods = {}
    for root in ROOTS:
        for p in (src / root).rglob("*.py"):
            parts = p.relative_to(src).with_suffix("").parts
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return mods


def module_graph(src: Path) -> dict[str, set[str]]:
    """module -> the project modules its top-level statements import (``from pkg import sub`` counts
    as ``pkg.sub`` when ``sub`` is a module)."""
    mods = _modules(src)
    graph = {}
    for name, path in mods.items():
        deps: set[str] = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = {f"{node.module}.{a.name}" for a in node.names} & set(mods)
                deps |= subs if len(subs) == len(node.names) else subs | {node.module}
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on, stack, found = set(), [], []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_level_import_cycle():
    src = Path(faceanon.__file__).resolve().parents[1]
    graph = module_graph(src)
    assert "faceanon.options" in graph and "ddfa_v3.model" in graph
    assert cycles(graph) == []
