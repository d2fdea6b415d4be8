"""repro_order visits exactly what DVC's plan_repro does, in the same order, on any DAG."""

from __future__ import annotations

import networkx as nx
from dvc.repo.reproduce import plan_repro
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.dvcops.visit import repro_order


@st.composite
def dags_and_targets(draw: st.DrawFn) -> tuple[nx.DiGraph, list[int], bool]:
    size = draw(st.integers(min_value=1, max_value=40))
    # Edges only from a higher to a lower number: acyclic, as DVC's graph is.
    edges = draw(st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, size - 1)).filter(lambda e: e[0] > e[1])))
    graph = nx.DiGraph()
    graph.add_nodes_from(draw(st.permutations(range(size))))
    graph.add_edges_from(edges)
    targets = draw(st.lists(st.integers(0, size - 1), unique=True))
    return graph, targets, draw(st.booleans())


@settings(deadline=None)  # the machine is shared; only the answers matter here
@given(dags_and_targets())
def test_same_stages_in_the_same_order_as_plan_repro(case: tuple[nx.DiGraph, list[int], bool]) -> None:
    graph, targets, downstream = case

    assert repro_order(graph, targets, downstream=downstream) == plan_repro(graph, targets, downstream=downstream)
