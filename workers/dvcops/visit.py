"""The stages `dvc repro` visits, in its order, without DVC's per-target walks."""

from __future__ import annotations

from typing import Any


def repro_order(graph: Any, stages: list[Any], *, downstream: bool = False) -> list[Any]:
    """What DVC's ``plan_repro(graph, stages, downstream=downstream)`` answers, in the same order.

    DVC collects the stages to visit with one depth-first walk per target (get_subgraph_of_nodes),
    which for the stages of a chain is quadratic. The set it collects is simply everything reachable
    from the targets, so one walk finds it; the order then comes from DVC's own final step, a
    post-order walk of the subgraph (whose nodes keep the graph's order).
    """
    import networkx as nx

    if not stages:
        return list(nx.dfs_postorder_nodes(graph))
    neighbours = graph.predecessors if downstream else graph.successors
    reached = set(stages)
    pending = list(stages)
    while pending:
        for node in neighbours(pending.pop()):
            if node not in reached:
                reached.add(node)
                pending.append(node)
    return list(nx.dfs_postorder_nodes(graph.subgraph(reached)))
