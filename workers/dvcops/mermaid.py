"""A Dag as a Mermaid `flowchart TD`."""

from __future__ import annotations

from itertools import groupby

from app.domain.pipelines import DagEdge, DagNode

INDENT = "    "


def render_flowchart(nodes: list[DagNode], edges: list[DagEdge]) -> str:
    """Node ids are generated (``s0``, ``s1``...) because stage names may hold characters Mermaid reads
    as syntax; labels are the bare stage names. Other pipelines' stages sit in a subgraph per file.
    """
    ids = {node.name: f"s{position}" for position, node in enumerate(nodes)}
    lines = ["flowchart TD"]
    lines += [f"{INDENT}{ids[node.name]}[{_label(node)}]" for node in nodes if not node.external]
    external = sorted((n for n in nodes if n.external), key=lambda n: n.pipeline_path)
    for group, (pipeline_path, members) in enumerate(groupby(external, key=lambda n: n.pipeline_path)):
        lines.append(f"{INDENT}subgraph p{group}[{_quote(pipeline_path)}]")
        lines += [f"{INDENT * 2}{ids[node.name]}[{_label(node)}]" for node in members]
        lines.append(f"{INDENT}end")
    lines += [f"{INDENT}{ids[edge.source]} --> {ids[edge.target]}" for edge in edges]
    return "\n".join(lines) + "\n"


def _label(node: DagNode) -> str:
    # External nodes are named `<dvc.yaml>:<stage>`; the subgraph already shows the file.
    return _quote(node.name.rsplit(":", 1)[-1] if node.external else node.name)


def _quote(text: str) -> str:
    # Inside a quoted label Mermaid only needs '"' escaped, as an entity.
    return '"' + text.replace('"', "#quot;") + '"'
