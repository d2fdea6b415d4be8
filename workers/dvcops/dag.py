"""pipeline_dag: a pipeline's stages and the paths that connect them, from DVC's own graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.domain.pipelines import Dag, DagEdge, DagNode
from workers.dvcops.mermaid import render_flowchart
from workers.dvcops.paths import relative_to_root
from workers.dvcops.repo import existing_pipeline_file, is_pipeline_stage, open_repo, stage_file, stage_label, stages_of


def pipeline_dag(root: Path, pipeline_path: str) -> Dag:
    """Nodes: the pipeline's stages, plus stages of other pipelines directly feeding or fed by them
    (``external``, named ``<dvc.yaml>:<stage>``). Edges: producer -> consumer, with the producer's
    outputs that the consumer depends on (a folder output counts for dependencies inside it, and a
    dependency on a folder for outputs inside it, as in DVC's graph).
    """
    file = existing_pipeline_file(root, pipeline_path)
    with open_repo(root) as repo:
        real_root = Path(repo.root_dir)
        graph = repo.index.graph
        own = stages_of(graph, file)
        # DVC's edges point from a consumer to the producer of one of its dependencies.
        links = [
            (producer, consumer)
            for consumer, producer in graph.edges
            if (consumer in own or producer in own) and is_pipeline_stage(consumer) and is_pipeline_stage(producer)
        ]
        external = [s for s in dict.fromkeys(s for pair in links for s in pair) if s not in own]
        nodes = [_node(real_root, s, pipeline_path, external=False) for s in own]
        nodes += [_node(real_root, s, pipeline_path, external=True) for s in external]
        edges = [
            DagEdge(
                source=stage_label(real_root, producer, pipeline_path),
                target=stage_label(real_root, consumer, pipeline_path),
                paths=_connecting_paths(real_root, producer, consumer),
            )
            for producer, consumer in links
        ]
    return Dag(nodes=nodes, edges=edges, mermaid=render_flowchart(nodes, edges))


def _node(root: Path, stage: Any, pipeline_path: str, *, external: bool) -> DagNode:
    cmd = stage.cmd
    return DagNode(
        name=stage_label(root, stage, pipeline_path),
        cmd=" && ".join(cmd) if isinstance(cmd, list) else str(cmd or ""),
        pipeline_path=stage_file(root, stage),
        external=external,
    )


def _connecting_paths(root: Path, producer: Any, consumer: Any) -> list[str]:
    """The producer's outputs that one of the consumer's dependencies equals, is inside, or contains."""
    paths: list[str] = []
    for out in producer.outs:
        for dep in consumer.deps:
            if out.fs.isin_or_eq(dep.fs_path, out.fs_path) or out.fs.isin(out.fs_path, dep.fs_path):
                paths.append(relative_to_root(root, out.fs_path))
                break
    return paths
