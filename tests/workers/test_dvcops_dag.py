"""pipeline_dag: DVC's graph around one pipeline, and its Mermaid rendering."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import CHAIN, chain_stages

from app.domain.pipelines import DagEdge, DagNode, StageSpec
from workers.dvcops import pipeline_dag, write_pipeline

PUBLISH = "pipelines/publish/dvc.yaml"


def test_chain(make_workspace: Callable[[], Path]) -> None:
    root = make_workspace()
    write_pipeline(root, CHAIN, chain_stages())

    dag = pipeline_dag(root, CHAIN)

    assert [(n.name, n.external) for n in dag.nodes] == [("prepare", False), ("train", False), ("evaluate", False)]
    assert sorted(dag.edges, key=lambda e: e.source) == [
        DagEdge(source="prepare", target="train", paths=["prepared.csv"]),
        DagEdge(source="train", target="evaluate", paths=["model.txt"]),
    ]
    assert dag.mermaid.splitlines()[0] == "flowchart TD"
    assert '    s0["prepare"]' in dag.mermaid
    assert "    s0 --> s1" in dag.mermaid and "    s1 --> s2" in dag.mermaid


def test_edge_across_pipelines_through_a_folder_output(make_workspace: Callable[[], Path]) -> None:
    root = make_workspace()
    stages = chain_stages()
    write_pipeline(root, CHAIN, [*stages, StageSpec(name="report", cmd="mkdir -p report", outs=["report"])])
    publish = StageSpec(name="publish", cmd="cp report/index.html site.html", deps=["report/index.html", "model.txt"])
    write_pipeline(root, PUBLISH, [publish])

    dag = pipeline_dag(root, PUBLISH)

    assert dag.nodes[0] == DagNode(name="publish", cmd=publish.cmd, pipeline_path=PUBLISH, external=False)
    assert {(n.name, n.pipeline_path, n.external) for n in dag.nodes[1:]} == {
        (f"{CHAIN}:train", CHAIN, True),
        (f"{CHAIN}:report", CHAIN, True),
    }
    assert sorted(dag.edges, key=lambda e: e.source) == [
        DagEdge(source=f"{CHAIN}:report", target="publish", paths=["report"]),
        DagEdge(source=f"{CHAIN}:train", target="publish", paths=["model.txt"]),
    ]
    assert f'subgraph p0["{CHAIN}"]' in pipeline_dag(root, PUBLISH).mermaid
    # Seen from the chain, publish is the external consumer.
    assert f"{PUBLISH}:publish" in {e.target for e in pipeline_dag(root, CHAIN).edges}
