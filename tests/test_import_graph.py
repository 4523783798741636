"""No module imports itself back, by any path: the module-level twin of the import contracts.

import-linter's `acyclic_siblings` contract (run by `scripts/test`) compares sibling packages
and modules; it does not see a package's `__init__` and one of its own modules importing each
other. This test walks the whole graph that grimp builds, where every import counts: top
level, inside functions and under `TYPE_CHECKING`.
"""

from __future__ import annotations

from collections.abc import Iterable

import grimp


def cycles(modules: Iterable[str], imports: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    work: list[tuple[str, list[str]]] = []  # the depth-first path, each with what is left

    def enter(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        work.append((node, sorted(imports.find_modules_directly_imported_by(node))))

    for root in sorted(modules):
        if root in index:
            continue
        enter(root)
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop()
                if nxt not in index:
                    enter(nxt)
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_of_bot_or_handlers_is_part_of_an_import_cycle() -> None:
    graph = grimp.build_graph("bot", "handlers", include_external_packages=False)
    assert cycles(graph.modules, graph) == []


def test_the_check_finds_a_cycle_through_a_package_init() -> None:
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.app", "pkg.state", "other"):
        graph.add_module(module)
    graph.add_import(importer="pkg", imported="pkg.app")
    graph.add_import(importer="pkg.app", imported="pkg.state")
    graph.add_import(importer="pkg.app", imported="pkg")  # the kind a TYPE_CHECKING import hides
    graph.add_import(importer="other", imported="pkg")
    assert cycles(graph.modules, graph) == [["pkg", "pkg.app"]]
