"""DVC itself, as the oracle: one long-lived process answering what `dvc stage list`, `dvc status --json`
and `dvc repro` say about a workspace copy.

Each request opens a fresh ``Repo`` on the given folder and calls the public method the CLI command calls
(``Repo.index.stages``, ``Repo.status``, ``Repo.reproduce``), so the answers are the CLI's without paying
DVC's import time on every question. It runs in its own process (``python -m tests.conformance.oracle``):
the test process never imports DVC, and DVC's printing ("Running stage ...") cannot mix into the replies,
which travel on a private copy of the original stdout.

Requests and replies are one JSON object per line: ``{"op": ..., "root": ..., ...}`` ->
``{"ok": <result>}`` or ``{"error": "<exception text>"}``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
REPLY_SECONDS = 120.0


# ---- the server side: runs inside the oracle process, where DVC is imported -------------------------------


def _stage_record(repo: Any, stage: Any) -> dict[str, Any]:
    """A dvc.yaml stage as DVC reads it: paths as written (relative to the stage's wdir)."""
    from dvc.dependency import ParamsDependency

    deps: list[str] = []
    params: list[list[str]] = []
    for dep in stage.deps:
        if isinstance(dep, ParamsDependency):
            # A whole-file params dependency has no keys; it is listed as the file with an empty key.
            keys = list(dep.params or []) or [""]
            params.extend([dep.def_path, key] for key in keys)
        else:
            deps.append(dep.def_path)
    root = Path(repo.root_dir)
    return {
        "file": Path(stage.dvcfile.path).resolve().relative_to(root.resolve()).as_posix(),
        "name": stage.name,
        "address": stage.addressing,
        "cmd": stage.cmd,
        "wdir": Path(stage.wdir).resolve().relative_to(root.resolve()).as_posix(),
        "deps": deps,
        "params": params,
        "outs": [o.def_path for o in stage.outs if not o.metric and not o.plot],
        "metrics": [o.def_path for o in stage.outs if o.metric],
        "plots": [o.def_path for o in stage.outs if o.plot],
        "frozen": bool(stage.frozen),
        "always_changed": bool(stage.always_changed),
    }


class _StartedStages(logging.Handler):
    """Collects the addresses in DVC's "Running stage '<address>':" and "Stage '<address>' is cached" lines, and the
    data sources (.dvc files) it verified and saved again ("Verifying data sources in stage: '<address>'")."""

    PATTERNS = ("Running stage '%s':", "Stage '%s' is cached - skipping run, checking out outputs")

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.addresses: list[str] = []

    DATA_SOURCES = "Verifying %s in %s%s"

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg in self.PATTERNS and record.args:
            self.addresses.append(str(record.args[0]))  # type: ignore[index]
        elif record.msg == self.DATA_SOURCES and isinstance(record.args, tuple) and record.args[0] == "data sources":
            self.addresses.append(str(record.args[2].addressing))  # type: ignore[attr-defined]


def _explained(exc: BaseException) -> str:
    causes = [exc]
    while causes[-1].__cause__ is not None:
        causes.append(causes[-1].__cause__)  # type: ignore[arg-type]
    return " <- ".join(f"{type(e).__name__}: {e}" for e in causes)


def _serve_one(request: dict[str, Any]) -> Any:
    from dvc.exceptions import ReproductionError
    from dvc.repo import Repo
    from dvc.stage import PipelineStage

    root = request["root"]
    if request["op"] == "init":
        Repo.init(root).close()  # `dvc init`
        return None
    os.chdir(root)  # the CLI runs in the workspace: status keys and printed addresses are relative to it
    with Repo(root) as repo:
        op = request["op"]
        if op == "stages":
            return [_stage_record(repo, s) for s in repo.index.stages if isinstance(s, PipelineStage)]
        if op == "edges":
            # DVC's graph: an edge from a stage to the producer of one of its dependencies (`dvc dag` draws them).
            graph = repo.index.graph
            pipeline = [s for s in graph if isinstance(s, PipelineStage)]
            return [[p.addressing, c.addressing] for c, p in graph.edges if c in pipeline and p in pipeline]
        if op == "add":
            repo.add(request["path"])  # `dvc add <path>`
            return None
        if op == "status":
            return repo.status(targets=request.get("targets") or None, with_deps=bool(request.get("with_deps")))
        if op == "repro":
            # The stages DVC starts (or restores from its run cache), as it logs them: also known when it fails.
            started = _StartedStages()
            logging.getLogger("dvc").addHandler(started)
            try:
                # The keyword arguments `dvc repro` passes (dvc/commands/repro.py), at the CLI's defaults but the flags.
                repo.reproduce(
                    targets=request.get("targets") or None,
                    single_item=bool(request.get("single_item")),
                    force=bool(request.get("force")),
                    dry=False,
                    interactive=False,
                    pipeline=False,
                    all_pipelines=False,
                    downstream=bool(request.get("downstream")),
                    recursive=False,
                    force_downstream=False,
                    pull=False,
                    allow_missing=False,
                    on_error="keep-going" if request.get("keep_going") else "fail",
                    run_cache=True,
                    no_commit=False,
                    glob=False,
                )
                return {"ran": started.addresses, "failed": [], "error": None}
            except Exception as exc:
                traceback.print_exc()  # into the oracle's log
                # ReproductionError: "failed to reproduce 'a', 'b'" names the stages that failed.
                failed = re.findall(r"'([^']+)'", str(exc)) if isinstance(exc, ReproductionError) else []
                return {"ran": started.addresses, "failed": failed, "error": _explained(exc)}
            finally:
                logging.getLogger("dvc").removeHandler(started)
        raise ValueError(f"unknown op {op!r}")


def serve() -> None:
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    # Everything DVC and the stage commands print goes to stderr (the oracle's log), never into the replies.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply: dict[str, Any] = {"ok": _serve_one(request)}
        except Exception as exc:
            traceback.print_exc()  # into the oracle's log
            reply = {"error": _explained(exc)}
        finally:
            os.chdir("/")
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


# ---- the client side: the tests' handle on the oracle process ---------------------------------------------


class OracleError(AssertionError):
    """DVC refused the request (the text is DVC's)."""


class Oracle:
    """Asks the oracle process; every answer comes within REPLY_SECONDS or the test fails."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self._log_handle: IO[bytes] = log.open("ab")
        env = dict(os.environ, DVC_NO_ANALYTICS="1", PYTHONPATH=str(ROOT))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.conformance.oracle"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_handle,
            text=True,
            start_new_session=True,
        )

    def ask(self, op: str, root: Path, **fields: Any) -> Any:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps({"op": op, "root": str(root), **fields}) + "\n")
        self._process.stdin.flush()
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self._process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(REPLY_SECONDS)
        if not line or not line[0]:
            self.close()
            raise AssertionError(f"the DVC oracle gave no answer to {op} within {REPLY_SECONDS}s: {self.tail()}")
        reply = json.loads(line[0])
        if "error" in reply:
            raise OracleError(f"DVC ({op} in {root}): {reply['error']}")
        return reply["ok"]

    def init(self, root: Path) -> None:
        """`dvc init` in a git repository."""
        self.ask("init", root)

    def add(self, root: Path, path: str) -> None:
        """`dvc add <path>`."""
        self.ask("add", root, path=path)

    def stages(self, root: Path) -> list[dict[str, Any]]:
        """Every dvc.yaml stage of the workspace (`dvc stage list --all`), in DVC's order."""
        result: list[dict[str, Any]] = self.ask("stages", root)
        return result

    def edges(self, root: Path) -> list[list[str]]:
        """[producer, consumer] addresses of every edge between dvc.yaml stages in DVC's graph."""
        result: list[list[str]] = self.ask("edges", root)
        return result

    def status(self, root: Path, *, targets: list[str] | None = None, with_deps: bool = False) -> dict[str, Any]:
        """`dvc status --json [--with-deps] [targets]`."""
        result: dict[str, Any] = self.ask("status", root, targets=targets, with_deps=with_deps)
        return result

    def repro(
        self,
        root: Path,
        *,
        targets: list[str],
        force: bool = False,
        downstream: bool = False,
        single_item: bool = False,
        keep_going: bool = False,
    ) -> dict[str, Any]:
        """`dvc repro [-f] [--downstream] [-s] [-k] targets`: ``ran``, the addresses of the stages it started (or
        restored from the run cache) in order; ``failed``, those its error names; ``error`` (None: it succeeded)."""
        result: dict[str, Any] = self.ask(
            "repro",
            root,
            targets=targets,
            force=force,
            downstream=downstream,
            single_item=single_item,
            keep_going=keep_going,
        )
        return result

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # Its own process group: a stage command it started goes with it.
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._log_handle.close()


if __name__ == "__main__":
    serve()
