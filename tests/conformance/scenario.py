"""One shape, exercised once against the service and against DVC on copies; every check's outcome recorded.

A shape's checks share one project (cloning is the slow part). Each state of the workspace is copied
(`snapshot`) before the service acts on it, and DVC acts on the copy: a status, a run, its rerun, then each
variation (edits through the API, a run with options). Failures are recorded per check rather than raised, so
one broken check (a refused dry run, say) does not hide the others; a step whose outcome later steps need
(cloning) blocks them and says so.
"""

from __future__ import annotations

import itertools
import pprint
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conformance import service
from tests.conformance.compare import (
    address,
    api_changes,
    api_stage,
    dvc_address,
    dvc_changes,
    dvc_stage,
    locked_stages,
    snapshot,
    tree,
    tree_difference,
    upstream_causes,
)
from tests.conformance.oracle import Oracle
from tests.conformance.repos import Shape, build_repository, text_of
from tests.conftest import GraphQLClient

CHECKS = ("listing", "validation", "dag", "status", "plan", "run", "rerun", "options")
EXECUTED = {"SUCCEEDED", "FAILED"}
FINAL_STAGE_STATES = {"SKIPPED", "SUCCEEDED", "FAILED", "CANCELLED", "NOT_RUN"}


@dataclass
class Report:
    """What each check of one shape found: failures by check; checks never reached and why."""

    shape: str
    failures: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in CHECKS})
    reached: set[str] = field(default_factory=set)
    blocked: str | None = None

    @contextmanager
    def check(self, name: str, label: str) -> Iterator[None]:
        self.reached.add(name)
        try:
            yield
        except Exception as exc:
            self.failures[name].append(f"[{label}] {type(exc).__name__}: {exc}")

    def outcome(self, name: str) -> str | None:
        """None when the check passed everywhere it ran; else what went wrong, for the assertion message."""
        if name not in self.reached:
            return f"{self.shape}: check {name!r} never ran ({self.blocked or 'nothing reached it'})"
        if self.failures[name]:
            return f"{self.shape}: {name}:\n" + "\n".join(self.failures[name])
        return None


def mismatch(problems: dict[str, Any]) -> None:
    if problems:
        raise AssertionError(pprint.pformat(problems, width=110, sort_dicts=False))


@dataclass
class Exercise:
    shape: Shape
    gql: GraphQLClient
    oracle: Oracle
    workspace: Path
    scratch: Path
    project_id: str
    listed: dict[str, dict[str, Any]]
    report: Report
    records: list[dict[str, Any]] = field(default_factory=list)
    hung: str | None = None
    """Set when a run never ended: the runs after it are not attempted (each would wait out its deadline)."""
    _copies: Iterator[int] = field(default_factory=itertools.count)

    def copy(self) -> Path:
        return snapshot(self.workspace, self.scratch / f"copy-{next(self._copies)}")

    async def refresh(self) -> None:
        self.listed = await service.pipelines(self.gql, self.project_id)

    def check_listing(self, copy: Path, label: str) -> None:
        with self.report.check("listing", label):
            self.records = self.oracle.stages(copy)
            files = sorted({r["file"] for r in self.records} | set(self.listed))
            problems: dict[str, Any] = {}
            for file in files:
                dvc = [dvc_stage(r) for r in self.records if r["file"] == file]
                api = [api_stage(s) for s in self.listed[file]["stages"]] if file in self.listed else None
                if api != dvc:
                    problems[file] = {"service": api, "dvc": dvc}
            mismatch(problems)
        with self.report.check("validation", label):
            mismatch(
                {
                    path: pipeline["validation"]
                    for path, pipeline in self.listed.items()
                    if not (pipeline["validation"] or {}).get("valid")
                }
            )

    async def check_dag(self, copy: Path, label: str) -> None:
        """Each pipeline's DAG edges (producer -> consumer) are DVC's graph edges touching its stages."""
        with self.report.check("dag", label):
            edges = [(dvc_address(p), dvc_address(c)) for p, c in self.oracle.edges(copy)]
            problems: dict[str, Any] = {}
            for path, pipeline in self.listed.items():
                answer = await service.dag(self.gql, pipeline["id"])
                ours = sorted((address(path, e["source"]), address(path, e["target"])) for e in answer["edges"])
                own = f"{path}:"
                dvc = sorted(e for e in edges if e[0].startswith(own) or e[1].startswith(own))
                if ours != dvc:
                    problems[path] = {"service": ours, "dvc": dvc}
            mismatch(problems)

    async def check_status(self, copy: Path, label: str) -> None:
        """Each pipeline's status against `dvc status --json` (each stage's own entries) and `dvc status
        --with-deps <dvc.yaml>` (the pipeline's upToDate, and other pipelines' stages named as UPSTREAM)."""
        with self.report.check("status", label):
            everything = self.oracle.status(copy)
            problems: dict[str, Any] = {}
            for path, pipeline in self.listed.items():
                answer = await service.status(self.gql, pipeline["id"])
                by_name = {s["name"]: s for s in answer["stages"]}
                own = [r for r in self.records if r["file"] == path]
                locked = locked_stages(copy, path)
                for record in own:
                    entries = everything.get(record["address"])
                    stage = by_name.get(record["name"])
                    if stage is None:
                        problems[f"{path}:{record['name']}"] = "DVC has this stage; the service's status has not"
                        continue
                    never_run = any(c["kind"] == "NEVER_RUN" for c in stage["changes"])
                    dvc = {"changes": dvc_changes(entries or [], record), "never run": record["name"] not in locked}
                    ours = {"changes": api_changes(stage), "never run": never_run}
                    if ours != dvc or (entries and stage["upToDate"]) or (stage["upToDate"] and never_run):
                        problems[f"{path}:{record['name']}"] = {
                            "service": ours | {"upToDate": stage["upToDate"]},
                            "dvc": dvc | {"raw": entries},
                        }
                for name in sorted(set(by_name) - {r["name"] for r in own}):
                    problems[f"{path}:{name}"] = "in the service's status, not a stage of this dvc.yaml for DVC"
                # `dvc status --with-deps <dvc.yaml>`: up to date only when nothing upstream changed either.
                with_deps = self.oracle.status(copy, targets=[path], with_deps=True)
                if answer["upToDate"] != (not with_deps):
                    problems[f"{path} upToDate"] = {"service": answer["upToDate"], "dvc --with-deps": with_deps}
                foreign = sorted(
                    dvc_address(a)
                    for a in with_deps
                    if ":" in dvc_address(a) and not dvc_address(a).startswith(f"{path}:")
                )
                if upstream_causes(answer) != foreign:
                    problems[f"{path} UPSTREAM causes"] = {
                        "service": upstream_causes(answer),
                        "dvc --with-deps (other pipelines' stages)": foreign,
                    }
            mismatch(problems)

    async def check_run(
        self, check: str, label: str, options: dict[str, Any], *, pipeline_path: str, edits: dict[str, str]
    ) -> None:
        if self.hung:
            with self.report.check(check, label):
                raise AssertionError(f"not attempted: an earlier run never ended ({self.hung})")
            return
        with self.report.check(check, label):
            for path, content in edits.items():
                await service.write_file(self.gql, self.project_id, path, content)
        copy = self.copy()
        await self.check_status(copy, label)
        pipeline = self.listed[pipeline_path]
        plan: dict[str, Any] | None = None
        with self.report.check("plan", label):
            plan = await service.dry_run(self.gql, pipeline["id"], options)
        run: dict[str, Any] | None = None
        with self.report.check(check, label):
            try:
                run = await service.run(self.gql, pipeline["id"], options)
            except service.RunNeverEnded as exc:
                self.hung = f"{label}: {exc}"
                raise
            repro = self.oracle.repro(
                copy,
                targets=[f"{pipeline_path}:{t}" for t in options.get("targets", [])] or [pipeline_path],
                force=bool(options.get("force")),
                downstream=bool(options.get("downstream")),
                single_item=bool(options.get("singleItem")),
                keep_going=bool(options.get("keepGoing")),
            )
            dvc_error = repro["error"]
            problems: dict[str, Any] = {}
            dvc_failed = sorted(dvc_address(a) for a in repro["failed"])
            dvc_succeeded = sorted({dvc_address(a) for a in repro["ran"]} - set(dvc_failed))
            for state, expected in (("SUCCEEDED", dvc_succeeded), ("FAILED", dvc_failed)):
                ours = sorted(address(pipeline_path, s["name"]) for s in run["stages"] if s["state"] == state)
                if ours != expected:
                    problems[f"stages {state}"] = {"service": ours, "dvc repro": expected}
            wanted_state = "FAILED" if dvc_error else "SUCCEEDED"
            if run["state"] != wanted_state:
                problems["run state"] = {"service": [run["state"], run["error"]], "dvc repro": dvc_error or "ran"}
            unfinished = [(s["name"], s["state"]) for s in run["stages"] if s["state"] not in FINAL_STAGE_STATES]
            if unfinished:
                problems["stages left unfinished"] = unfinished
            ours, theirs = tree(self.workspace), tree(copy)
            if dvc_error:
                # A failed `dvc repro` takes back the .gitignore entries it added (dvc/repo/scm_context.py), even for
                # outputs it cached and locked; the service runs each stage as its own DVC operation, so they stay.
                ours, theirs = ({p: v for p, v in t.items() if not p.endswith(".gitignore")} for t in (ours, theirs))
            difference = tree_difference(ours, theirs)
            if difference:
                problems["workspace files (service vs dvc repro)"] = difference
            mismatch(problems)
        if plan is not None and run is not None:
            with self.report.check("plan", label):
                planned = {address(pipeline_path, s["name"]) for s in plan["stages"]}
                executed = {address(pipeline_path, s["name"]) for s in run["stages"] if s["state"] in EXECUTED}
                # A frozen stage DVC reproduces (forced) never runs its command: DVC only records it anew.
                frozen = {dvc_address(r["address"]) for r in self.records if r["frozen"]}
                certain = {
                    address(pipeline_path, s["name"]) for s in plan["stages"] if s["certainty"] == "WILL_RUN"
                } - frozen
                problems = {}
                if executed - planned:
                    problems["ran but not planned"] = sorted(executed - planned)
                if run["state"] == "SUCCEEDED" and certain - executed:
                    problems["planned WILL_RUN but did not run"] = sorted(certain - executed)
                mismatch(problems)


async def setup_exercise(
    shape: Shape, report: Report, gql: GraphQLClient, oracle: Oracle, workspaces: Path, scratch: Path
) -> Exercise | None:
    """The shape's repository, cloned into a project, its listing checked; None (report blocked) if that failed."""
    try:
        source = build_repository(shape, scratch / "source", oracle)
        project_id = await service.create_project(gql, str(source))
        for path in shape.tracked:
            await service.write_file(gql, project_id, path, text_of(shape.files[path]))
        listed = await service.pipelines(gql, project_id)
    except Exception as exc:
        report.blocked = f"setting up the project failed: {type(exc).__name__}: {exc}"
        return None
    exercise = Exercise(shape, gql, oracle, workspaces / project_id, scratch, project_id, listed, report)
    cloned = exercise.copy()
    exercise.check_listing(cloned, "cloned")
    await exercise.check_dag(cloned, "cloned")
    if shape.main not in listed:
        report.blocked = f"the service lists no pipeline {shape.main}: {sorted(listed)}"
        return None
    return exercise


async def exercise(
    shape: Shape, report: Report, gql: GraphQLClient, oracle: Oracle, workspaces: Path, scratch: Path
) -> None:
    """Every check of one shape: listing, validation, status, plan, a run, its rerun, each variation."""
    run = await setup_exercise(shape, report, gql, oracle, workspaces, scratch)
    if run is None:
        return
    await run.check_run("run", "first run", shape.run_options, pipeline_path=shape.main, edits={})
    await run.check_run("rerun", "second run", shape.run_options, pipeline_path=shape.main, edits={})
    for variation in shape.variations:
        await run.check_run(
            "options",
            variation.name,
            variation.options,
            pipeline_path=variation.pipeline or shape.main,
            edits=variation.edits,
        )
    # The state every run left: status once more, against DVC.
    await run.check_status(run.copy(), "after every run")
