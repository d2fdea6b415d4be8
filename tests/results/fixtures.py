"""A pipeline whose stages write metrics (JSON and YAML), read nested params, and draw a Vega plot and a PNG."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.api.pipeline_fixtures import create_pipeline, write_file
from tests.conftest import GraphQLClient

PARAMS = "train:\n  lr: {lr}\n  opt:\n    name: sgd\n    momentum: 0.9\n  layers: [8, 4]\n"

TRAIN_PY = """\
import json, os, re, struct, zlib
# Standard library only: a stage gets its project's Python environment, never the service's packages (PyYAML).
text = open("params.yaml").read()
lr = float(re.search(r"^\\s+lr:\\s*(\\S+)", text, re.M).group(1))
momentum = float(re.search(r"^\\s+momentum:\\s*(\\S+)", text, re.M).group(1))
os.makedirs("eval", exist_ok=True)
open("model.txt", "w").write(f"lr={lr}\\n")
# JSON is YAML: DVC reads this metrics file as YAML.
json.dump({"loss": round(1 - lr, 4), "epochs": 3, "opt": {"momentum": momentum}}, open("eval/train.yaml", "w"))
json.dump([{"step": s, "loss": round(1 / (s + lr), 4)} for s in range(1, 6)], open("eval/loss.json", "w"))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
pixel = bytes([0, int(lr * 255) % 256, 0, 0])
png = (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(pixel)) + chunk(b"IEND", b""))
open("eval/confusion.png", "wb").write(png)
"""

EVALUATE_PY = """\
import json
lr = float(open("model.txt").read().split("=")[1])
json.dump({"auc": round(0.5 + lr, 4), "detail": {"f1": round(0.4 + lr / 2, 4), "label": "ok"}},
          open("eval/metrics.json", "w"))
"""

STAGES: list[dict[str, Any]] = [
    {
        "name": "train",
        "command": "python3 train.py",
        "deps": ["train.py"],
        "params": ["train.lr", "train.opt"],
        "outs": ["model.txt"],
        "metrics": ["eval/train.yaml"],
        "plots": ["eval/loss.json", "eval/confusion.png"],
    },
    {
        "name": "evaluate",
        "command": "python3 evaluate.py",
        "deps": ["model.txt", "evaluate.py"],
        "metrics": ["eval/metrics.json"],
    },
]

RESULT_FIELDS = """
  metrics { readAt entries { file key value number } errors { kind file message } truncation }
  params { entries { file key value number } errors { file message } }
  plots { plots { id type revisions content data contentType imageUrl } errors { file message } truncation }
"""

RUN_RESULTS = f"""
query($id: ID!) {{ run(id: $id) {{ __typename ... on Run {{ id state error {RESULT_FIELDS} }} }} }}
"""


async def results_project(gql: GraphQLClient, project_id: str, lr: float = 0.1) -> str:
    """Writes the files and the pipeline; returns the pipeline's id."""
    await write_file(gql, project_id, "params.yaml", PARAMS.format(lr=lr))
    await write_file(gql, project_id, "train.py", TRAIN_PY)
    await write_file(gql, project_id, "evaluate.py", EVALUATE_PY)
    created = await create_pipeline(gql, project_id, name="results", stages=STAGES)
    assert created["__typename"] == "PipelineWritten", created
    pipeline_id: str = created["pipeline"]["id"]
    return pipeline_id


def dvc_json(workspace: Path, *args: str) -> Any:
    """DVC's own answer (the oracle), from its CLI in ``workspace``."""
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args, "--json"], cwd=workspace, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def copy_workspace(workspace: Path, into: Path) -> Path:
    """A copy to run DVC's CLI on, so the oracle never touches the service's workspace."""
    target = into / "copy"
    shutil.copytree(workspace, target, symlinks=True)
    return target


def flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        found: dict[str, Any] = {}
        for key, value in data.items():
            found |= flat(value, f"{prefix}.{key}" if prefix else key)
        return found
    return {prefix: data}
