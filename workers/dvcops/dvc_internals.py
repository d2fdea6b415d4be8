"""The one place the workers use DVC names outside its public surface.

DVC's public surface, used directly elsewhere: ``dvc.repo.Repo`` and its methods, ``dvc.api``, the CLI, and the
exceptions those raise (``dvc.exceptions``, ``dvc.lock.LockError``). Everything else DVC has is an internal of DVC
3.x, read as DVC 3.67 has it, and is reached only through this module: the rwlock file's name, schema and guard (for
its repair, rwlock_file) and the read lock over stages (stage_locks); the dvc.yaml text parser and schema
(replacePipelineFile, replacing, schema_checks); the stage name rule, params reader and per-stage checks of `dvc
stage add` (spec_checks, candidates); DVC's object for one dvc.yaml and its dvc.lock (reading, writing, changes,
candidates); the graph, index, outputs trie and active graph `dvc repro` builds (graph_checks, plan, status); the
dependency kinds; DVC's YAML serializer and config writer (writing, workspace); the plot renderers the
`dvc plots show --json` command uses (results); the `-S` overrides of `dvc exp run` (experiments.overrides); and
what the stage server needs to fork stages from one opened Repo (``open_repo_to_fork``,
``poll_repository_lock_every``, ``reproduce_loaded``; workers/execution/stage_server.py).

``checked()`` says whether the running DVC is a version these were checked against; the tests that compare with the
CLI (tests/conformance/, tests/workers/test_dvcops_rwlock.py, tests/api/test_templated_pipelines.py, tests/results/,
tests/execution/test_launch_oracle.py) are their oracle, and tests/unit/test_dvc_surface.py fails when a module
elsewhere imports a DVC module outside the public surface.

Standard library at the top and DVC inside the functions only: the stage server loads this file by path (it imports
nothing of the workers' packages).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

# dvc/lock.py Lock.lock retries a waiting repository lock every DEFAULT_TIMEOUT / default_retries, default_retries = 6.
LOCK_DEFAULT_RETRIES = 6

CHECKED_DVC_MAJOR = 3
"""The internals below are those of DVC 3.x (checked with 3.67)."""


def dvc_version_checked(version: str) -> bool:
    """True for a DVC version whose internals are those this module was written against."""
    major = version.split(".", 1)[0]
    return major.isdigit() and int(major) == CHECKED_DVC_MAJOR


def checked() -> bool:
    import dvc

    return dvc_version_checked(dvc.__version__)


def dvc_version() -> str:
    import dvc

    return str(dvc.__version__)


def rwlock_file_name() -> str:
    from dvc.rwlock import RWLOCK_FILE

    return str(RWLOCK_FILE)


def check_rwlock_shape(data: Any) -> None:
    """Raises when ``data`` is not of the shape DVC's rwlock file has (dvc.rwlock.SCHEMA)."""
    from dvc.rwlock import SCHEMA

    SCHEMA(data)


def rwlock_guard(rwlock_path: Path, *, hardlink_lock: bool) -> AbstractContextManager[Any]:
    """DVC's own guard of the rwlock file (``<file>.lock``), taken as dvc/rwlock.py takes it."""
    from dvc.lock import make_lock
    from dvc.rwlock import RWLOCK_LOCK

    lock: AbstractContextManager[Any] = make_lock(
        str(rwlock_path.with_name(RWLOCK_LOCK)), tmp_dir=str(rwlock_path.parent), hardlink_lock=hardlink_lock
    )
    return lock


def parse_pipeline_text(text: str, path: str) -> tuple[Any, list[tuple[str, str]]]:
    """dvc.yaml ``text`` as DVC parses it, and what its schema refuses (dotted field path, message); raises
    DvcException when it is not YAML DVC can read."""
    from dvc.schema import COMPILED_MULTI_STAGE_SCHEMA
    from dvc.utils.strictyaml import YAMLValidationError, parse_yaml, validate

    data = parse_yaml(text, path)
    try:
        validate(data, COMPILED_MULTI_STAGE_SCHEMA, text=text, path=path)
    except YAMLValidationError as exc:
        return data, [(".".join(map(str, error.path)), str(error.msg)) for error in exc.exc.errors]
    return data, []


def rendered_plots(data: Any, *, out: str, templates_dir: Any) -> Iterator[tuple[Any, Any, Any, list[Any]]]:
    """`dvc plots show --json`'s rendering (dvc/commands/plots.py): per renderer, its source and definition errors
    and its JSON items."""
    from dvc.render.convert import to_json
    from dvc.render.match import match_defs_renderers

    for renderer, source_errors, definition_errors in match_defs_renderers(
        data=data, out=out, templates_dir=templates_dir
    ):
        yield renderer, source_errors, definition_errors, list(to_json(renderer))


def open_repo_to_fork(root: str) -> Any:
    """The workspace's Repo, opened once for processes forked from this one to reproduce stages with.

    As `dvc --wait-for-lock` opens it (``_wait_for_lock``: a stage queues for DVC's repository lock rather than failing
    after 3 s), and with no open state database: taking and releasing the repository lock resets the Repo
    (``lock_repo``), which closes it, so no SQLite connection crosses a fork; each child opens its own.
    """
    from dvc.repo import Repo, lock_repo

    repo = Repo(root, _wait_for_lock=True)
    with lock_repo(repo):
        pass
    return repo


def poll_repository_lock_every(seconds: float) -> bool:
    """In this process, DVC's waiting repository lock is retried every ``seconds`` instead of every 0.5 s.

    Only for a lock that waits without end (a Repo opened by ``open_repo_to_fork``), and only the interval: the lock,
    what it protects and DVC's loop around it are unchanged, so no result can differ; stages queueing for the lock
    (their pre- and post-command steps) get it milliseconds after it is freed instead of up to half a second later.
    Lock.lock reads the module's DEFAULT_TIMEOUT once, at its start, to compute its delay; the process is
    single-threaded when DVC takes its lock, so setting it around the call affects that call only. Locks that give up
    after a few tries (DVC's rwlock, wait=False) keep DVC's 3 s budget. False (nothing changed) on a DVC this was not
    checked with.
    """
    if not checked():
        return False
    import dvc.lock

    original = dvc.lock.Lock.lock

    def lock(self: Any) -> Any:
        if not getattr(self, "_wait", False):
            return original(self)
        saved = dvc.lock.DEFAULT_TIMEOUT
        dvc.lock.DEFAULT_TIMEOUT = seconds * LOCK_DEFAULT_RETRIES
        try:
            return original(self)
        finally:
            dvc.lock.DEFAULT_TIMEOUT = saved

    dvc.lock.Lock.lock = lock
    return True


def load_pipeline_stages(repo: Any, files: list[str]) -> dict[str, Any]:
    """Each dvc.yaml of ``files`` (paths relative to the repo's root) and its dvc.lock read once, under DVC's repository
    lock as `dvc repro` reads them: per file, DVC's stage loader (a stage is built from it on demand). Releasing the
    lock resets the Repo (as in ``open_repo_to_fork``). Raises what DVC raises for a file it cannot read."""
    from dvc.dvcfile import load_file
    from dvc.repo import lock_repo

    with lock_repo(repo):
        return {path: load_file(repo, path).stages for path in files}


def loaded_stage(loaders: dict[str, Any], target: str) -> Any | None:
    """The stage ``target`` (``path/dvc.yaml:name``) of what ``load_pipeline_stages`` read; None if it did not."""
    path, _, name = target.rpartition(":")
    loader = loaders.get(path)
    return loader[name] if loader is not None and name in loader else None


def reproduce_loaded(repo: Any, stage: Any, *, force: bool) -> bool:
    """``Repo.reproduce(target, single_item=True, force=force)`` of a stage already loaded, without reading its files
    again: what dvc/repo/reproduce.py ``reproduce`` does once it collected the stage (DVC's repository lock, its scm
    context, ``_reproduce`` of the one stage with the same arguments). Whether the stage was reproduced (Repo.reproduce
    returning a non-empty list); raises what Repo.reproduce raises.

    A stage read when the run's session opened stays valid for the run as within one `dvc repro`: its own dvc.lock
    entry is written only by itself, its dependencies are hashed afresh when it runs, and DVC's dump merges the entry
    into dvc.lock as it is on disk (under the lock) when the stage ends.
    """
    from dvc.repo import lock_repo
    from dvc.repo.reproduce import _reproduce

    with lock_repo(repo), repo.scm_context():
        interactive = repo.config["core"].get("interactive", False)
        return bool(_reproduce([stage], graph=None, on_error="fail", force=force, interactive=interactive))


def yaml_parse_error() -> type[Exception]:
    """The exception DVC's YAML readers raise on text that does not parse (dvc.utils.serialize._common.ParseError)."""
    from dvc.utils.serialize._common import ParseError

    error: type[Exception] = ParseError
    return error


def lockfile_of(dvcfile: Any) -> Any:
    """The dvc.lock beside a dvc.yaml (``ProjectFile._lockfile``: DVC has no public name for it)."""
    return dvcfile._lockfile


# Stages, graphs and files as DVC's own commands build them (dvcops: checks, plans, status, writing). DVC's public
# surface has none of these: `dvc stage add`, `dvc status` and `dvc repro --dry` use them inside.


def project_file(repo: Any, path: str, *, verify: bool = True) -> Any:
    """DVC's object for one dvc.yaml (dvc.dvcfile.ProjectFile): its stage loader, resolver, dump and lock file."""
    from dvc.dvcfile import ProjectFile

    return ProjectFile(repo, path, verify=verify)


def project_file_holding(repo: Any, path: str, contents: dict[str, Any]) -> Any:
    """A ProjectFile for ``path`` whose contents are ``contents`` and whose dvc.lock is empty, read from neither file:
    DVC's stage loader and resolver then interpolate, resolve paths and build deps and outs of a proposed dvc.yaml
    exactly as of one on disk. Seeds the file's cached properties (``contents``, ``lockfile_contents``)."""
    dvcfile = project_file(repo, path, verify=False)
    dvcfile.__dict__["contents"] = contents
    dvcfile.__dict__["lockfile_contents"] = {}
    return dvcfile


def status_without_lock(stage: Any) -> dict[str, list[Any]]:
    """``Stage.status()`` without the read lock its decorator takes (``inspect.unwrap`` of DVC's ``rwlocked``):
    for callers already holding one lock over all the stages they ask about (dvcops.stage_locks.reading_stages)."""
    import inspect

    status: dict[str, list[Any]] = inspect.unwrap(type(stage).status)(stage)
    return status


def check_stage_arguments(stage: Any) -> None:
    """What `dvc stage add` checks of one stage's paths (a path both dep and out, duplicates); raises DVC's error."""
    from dvc.stage.utils import check_circular_dependency, check_duplicated_arguments

    check_circular_dependency(stage)
    check_duplicated_arguments(stage)


def is_valid_stage_name(name: str) -> bool:
    """DVC's rule for a stage name typed by a user (dvc.stage.utils.is_valid_name)."""
    from dvc.stage.utils import is_valid_name

    return bool(is_valid_name(name))


def validate_stage_data(data: Any) -> None:
    """One stage's dvc.yaml data checked with DVC's schema of a dvc.yaml; raises DVC's voluptuous error."""
    from dvc.schema import COMPILED_MULTI_STAGE_SCHEMA

    COMPILED_MULTI_STAGE_SCHEMA(data)


def is_pipeline_stage(stage: Any) -> bool:
    """Whether a stage is one of a dvc.yaml (not a .dvc file's)."""
    from dvc.stage import PipelineStage

    return isinstance(stage, PipelineStage)


def is_params_dependency(dep: Any) -> bool:
    from dvc.dependency import ParamsDependency

    return isinstance(dep, ParamsDependency)


def is_dataset_dependency(dep: Any) -> bool:
    from dvc.dependency import DatasetDependency

    return isinstance(dep, DatasetDependency)


def is_external_dependency(dep: Any) -> bool:
    """A dependency on another repository or a database (`dvc import`, db deps): not a path in the workspace."""
    from dvc.dependency.db import AbstractDependency
    from dvc.dependency.repo import RepoDependency

    return isinstance(dep, (RepoDependency, AbstractDependency))


def build_stage_graph(stages: list[Any]) -> Any:
    """DVC's DAG of stages (dvc.repo.graph.build_graph), with its checks: cycles, overlapping or duplicated outputs."""
    from dvc.repo.graph import build_graph

    return build_graph(stages)


def index_of(repo: Any, *, onerror: Any) -> Any:
    """The repository's index as `dvc repro` collects it (every dvc.yaml and .dvc file), ``onerror`` per bad file."""
    from dvc.repo.index import Index

    return Index.from_repo(repo, onerror=onerror)


def outputs_trie(stages: list[Any]) -> Any:
    """DVC's trie of the stages' outputs (dvc.repo.trie.build_outs_trie), raising on overlapping outputs."""
    from dvc.repo.trie import build_outs_trie

    return build_outs_trie(stages)


def active_graph(graph: Any) -> Any:
    """The graph without its frozen stages' edges, as `dvc repro` walks it (dvc.repo.reproduce.get_active_graph)."""
    from dvc.repo.reproduce import get_active_graph

    return get_active_graph(graph)


def read_params(path: str, keys: list[str]) -> dict[str, Any]:
    """Keys of a params file (YAML, JSON, TOML or Python) as DVC reads them for a params dependency, flattened."""
    from dvc.dependency.param import read_param_file
    from dvc.fs import localfs

    found: dict[str, Any] = read_param_file(localfs, path, keys, flatten=True)
    return found


def stage_read_lock(repo: Any, paths: list[str], *, hardlink: bool) -> AbstractContextManager[Any]:
    """DVC's read lock on ``paths`` (dvc.rwlock.rwlock, as a stage's dependencies are locked while it runs)."""
    import sys

    from dvc.rwlock import rwlock

    lock: AbstractContextManager[Any] = rwlock(repo.tmp_dir, repo.fs, " ".join(sys.argv), paths, [], hardlink)
    return lock


def repository_config(dvc_dir: str) -> Any:
    """The workspace's DVC config files (dvc.config.Config), for writing its local settings as `dvc config` does."""
    from dvc.config import Config

    return Config(dvc_dir=dvc_dir, validate=False)


def dump_yaml(data: Any) -> str:
    """YAML text as DVC writes dvc.yaml and dvc.lock (dvc.utils.serialize.dumps_yaml)."""
    from dvc.utils.serialize import dumps_yaml

    return str(dumps_yaml(data))


def parse_yaml_for_update(text: str, path: str) -> Any:
    """YAML read as DVC reads a file it will rewrite (comments and order kept)."""
    from dvc.utils.serialize import parse_yaml_for_update as parse

    return parse(text, path)


def apply_param_overrides(path: Path, overrides: list[str]) -> None:
    """`dvc exp run -S` overrides of one params file, applied as DVC's experiments apply them
    (dvc.utils.hydra.apply_overrides); raises InvalidArgumentError for one DVC refuses."""
    from dvc.utils.hydra import apply_overrides

    apply_overrides(path, overrides)
