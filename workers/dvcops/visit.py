"""The stages `dvc repro` visits, in its order, without DVC's per-target walks."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def repro_order(graph: Any, stages: list[Any], *, downstream: bool = False) -> list[Any]:
    """What DVC's ``plan_repro(graph, stages, downstream=downstream)`` answers, in the same order.

    DVC collects the stages to visit with one full depth-first walk per target
    (get_subgraph_of_nodes), quadratic for the stages of a chain, then walks the subgraph of what it
    found in post-order. The subgraph's node order can follow the order in which that set of nodes
    was filled (networkx iterates the smaller of graph and node set), so the set is filled here in
    the same order: the first appearances in DVC's walks, which is one walk sharing its visited set
    across the targets.
    """
    import networkx as nx

    if not stages:
        return list(nx.dfs_postorder_nodes(graph))
    neighbours = graph.predecessors if downstream else graph.successors
    return list(nx.dfs_postorder_nodes(graph.subgraph(_postorder(neighbours, stages))))


def _postorder(neighbours: Callable[[Any], Iterable[Any]], sources: list[Any]) -> list[Any]:
    """networkx's dfs_postorder_nodes from each source in turn, skipping nodes an earlier one visited."""
    seen: set[Any] = set()
    order: list[Any] = []
    for source in sources:
        if source in seen:
            continue
        seen.add(source)
        stack = [(source, iter(neighbours(source)))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if child not in seen:
                    seen.add(child)
                    stack.append((child, iter(neighbours(child))))
                    break
            else:
                stack.pop()
                order.append(node)
    return order
