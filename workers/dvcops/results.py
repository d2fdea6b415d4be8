"""Reading a workspace's metrics, params and plots with DVC's own API, into a bounded snapshot.

``repo.metrics.show``, ``repo.params.show`` and ``repo.plots.show`` cover every dvc.yaml of the workspace, with
their top-level ``metrics:``/``plots:`` sections. Plots are rendered the way ``dvc plots show --json`` renders them
(DVC's own renderers, as dvc/commands/plots.py uses them, through workers.dvcops.dvc_internals).
Errors inside DVC's answer stay per file; only a workspace DVC cannot open at all raises.
"""

from __future__ import annotations

import json
import mimetypes
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from app.domain.errors import InvalidInput, Issue
from app.domain.results import (
    MAX_ENTRIES,
    MAX_IMAGE_BYTES,
    MAX_IMAGES,
    MAX_PLOTS_JSON_BYTES,
    MAX_VALUE_JSON_BYTES,
    DiffEntry,
    FileError,
    Plot,
    PlotImage,
    PlotType,
    ResultEntry,
    ResultKind,
    ResultsSnapshot,
    RevisionDiff,
    is_number,
)
from workers.dvcops import dvc_internals
from workers.dvcops.repo import open_repo

WORKSPACE = "workspace"


def read_results(root: Path, *, plots: bool = True) -> ResultsSnapshot:
    """Metrics, params and (unless ``plots`` is False) plots of the workspace as it is now."""
    if not declares_results(root):
        return ResultsSnapshot()  # what DVC would answer, without building its index (~150 ms per run's end)
    return read_with_dvc(root, plots=plots)


def read_with_dvc(root: Path, *, plots: bool = True) -> ResultsSnapshot:
    """What DVC's own API reads, always."""
    with open_repo(root) as repo:
        errors: list[FileError] = []
        truncation: list[str] = []
        metrics = _entries(root, ResultKind.METRICS, repo.metrics.show(hide_workspace=False), errors, truncation)
        params = _entries(root, ResultKind.PARAMS, repo.params.show(hide_workspace=False), errors, truncation)
        rendered: list[Plot] = []
        images: list[PlotImage] = []
        if plots:
            rendered, images = _plots(root, repo, errors, truncation)
    # A data file shared by several plots is reported once.
    unique = list(dict.fromkeys(errors))
    return ResultsSnapshot(
        metrics=metrics, params=params, plots=rendered, errors=unique, truncation=truncation, images=images
    )


RESULT_KEYS = frozenset({"metrics", "params", "plots", "vars"})
SKIPPED_FOLDERS = frozenset({".git", ".dvc"})
DEFAULT_PARAMS_FILE = "params.yaml"


def snapshot_of_shown(root: Path, shown: Mapping[str, Any]) -> ResultsSnapshot:
    """The params and metrics of one revision as ``dvc exp show --json`` gives them (its ``data``: ``params`` and
    ``metrics``, each ``{file: {"data": ...}}`` or an error)."""
    errors: list[FileError] = []
    truncation: list[str] = []
    metrics = _entries(root, ResultKind.METRICS, {"rev": {"data": shown.get("metrics") or {}}}, errors, truncation)
    params = _entries(root, ResultKind.PARAMS, {"rev": {"data": shown.get("params") or {}}}, errors, truncation)
    return ResultsSnapshot(metrics=metrics, params=params, errors=list(dict.fromkeys(errors)), truncation=truncation)


def declares_results(root: Path) -> bool:
    """Whether any dvc.yaml of the workspace may give DVC metrics, params or plots to show: one of those keys (or
    ``vars``) anywhere in it, at any depth (``foreach``/``matrix`` stages included), or a ``params.yaml`` at the root
    (DVC shows its default params file whether a stage reads it or not). Unreadable files count as yes."""
    if (root / DEFAULT_PARAMS_FILE).exists():
        return True
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if name not in SKIPPED_FOLDERS]
        if "dvc.yaml" not in files:
            continue
        try:
            content = yaml.safe_load((Path(folder) / "dvc.yaml").read_text())
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            return True
        if _has_result_key(content):
            return True
    return False


def _has_result_key(value: Any) -> bool:
    if isinstance(value, dict):
        return any(key in RESULT_KEYS or _has_result_key(inner) for key, inner in value.items())
    if isinstance(value, list):
        return any(_has_result_key(item) for item in value)
    return False


def error_message(error: object) -> str:
    """DVC's errors as ``dvc ... --json`` encodes them: the type, then the message."""
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    return str(error)


def only_revision(result: Mapping[str, Any]) -> Any:
    """The one revision a show without ``revs`` reads: ``workspace`` (``""`` in a repository with no commit)."""
    if WORKSPACE in result:
        return result[WORKSPACE]
    return next(iter(result.values()), {})


def inside(root: Path, file: str) -> bool:
    """A file named by dvc.yaml (user data) that resolves inside the workspace; a symlink out is not read."""
    real_root = os.path.realpath(root)
    target = os.path.realpath(os.path.join(root, file))
    return target == real_root or target.startswith(real_root + os.sep)


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted key paths, as DVC's diff flattens (dicts are walked, anything else is a value)."""
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, value


def entry(kind: ResultKind, file: str, key: str, value: Any, truncation: list[str]) -> ResultEntry:
    encoded = json.dumps(value, default=str)
    if len(encoded.encode()) > MAX_VALUE_JSON_BYTES:
        truncation.append(f"{kind.value}: {file}:{key}: a value of {len(encoded.encode())} bytes was not kept")
        encoded_or_none: str | None = None
    else:
        encoded_or_none = encoded
    return ResultEntry(
        file=file, key=key, value_json=encoded_or_none, number=float(value) if is_number(value) else None
    )


def _entries(
    root: Path, kind: ResultKind, result: Mapping[str, Any], errors: list[FileError], truncation: list[str]
) -> list[ResultEntry]:
    revision = only_revision(result)
    if "error" in revision:
        errors.append(FileError(kind=kind, file="", message=error_message(revision["error"])))
        return []
    entries: list[ResultEntry] = []
    total = 0
    for file, content in sorted(revision.get("data", {}).items()):
        file = file.replace(os.sep, "/")
        if not inside(root, file):
            errors.append(FileError(kind=kind, file=file, message="the file lies outside the workspace; not read"))
            continue
        if "error" in content:
            errors.append(FileError(kind=kind, file=file, message=error_message(content["error"])))
            continue
        for key, value in flatten(content.get("data", {})):
            total += 1
            if len(entries) < MAX_ENTRIES:
                entries.append(entry(kind, file, key, value, truncation))
    if total > MAX_ENTRIES:
        truncation.append(f"{kind.value}: {total} entries, only the first {MAX_ENTRIES} were kept")
    return entries


def _plots(root: Path, repo: Any, errors: list[FileError], truncation: list[str]) -> tuple[list[Plot], list[PlotImage]]:
    data = repo.plots.show()
    for revision in data.values():
        if definition_error := revision.get("definitions", {}).get("error"):
            errors.append(FileError(kind=ResultKind.PLOTS, file="", message=error_message(definition_error)))
        # Data read through a symlink out of the workspace is dropped before anything is rendered from it.
        sources = revision.get("sources", {}).get("data", {})
        for source in list(sources):
            if not inside(root, source):
                sources[source] = {"error": "the file lies outside the workspace; not read"}
    plots: list[Plot] = []
    images: list[PlotImage] = []
    spent = 0
    # The CLI writes image plots into an output folder; here it is a scratch one, never the workspace.
    with tempfile.TemporaryDirectory(prefix="dvc-plots-") as out:
        renderers = dvc_internals.rendered_plots(data, out=out, templates_dir=repo.plots.templates_dir)
        for renderer, source_errors, definition_errors, items in renderers:
            for per_source in source_errors.values():
                for source, error in per_source.items():
                    errors.append(FileError(kind=ResultKind.PLOTS, file=source, message=error_message(error)))
            for error in definition_errors.values():
                errors.append(FileError(kind=ResultKind.PLOTS, file=renderer.name, message=error_message(error)))
            for rendered in items:
                if rendered["type"] == PlotType.IMAGE.value:
                    plot = _image(root, renderer.name, rendered, images, errors, truncation)
                else:
                    content = json.dumps(rendered["content"], default=str)
                    spent += len(content.encode())
                    if spent > MAX_PLOTS_JSON_BYTES:
                        truncation.append(
                            f"plots: {renderer.name}: over {MAX_PLOTS_JSON_BYTES} bytes of plots, not kept"
                        )
                        continue
                    plot = Plot(
                        id=renderer.name, type=PlotType.VEGA, revisions=rendered["revisions"], content_json=content
                    )
                if plot is not None:
                    plots.append(plot)
    return plots, images


def _image(
    root: Path,
    plot_id: str,
    rendered: dict[str, Any],
    images: list[PlotImage],
    errors: list[FileError],
    truncation: list[str],
) -> Plot | None:
    if not inside(root, plot_id):
        errors.append(FileError(kind=ResultKind.PLOTS, file=plot_id, message="the file lies outside the workspace"))
        return None
    content_type = mimetypes.guess_type(plot_id)[0] or "application/octet-stream"
    plot = Plot(id=plot_id, type=PlotType.IMAGE, revisions=rendered["revisions"], content_type=content_type)
    url = rendered.get("url")
    if not url or not os.path.isfile(url):
        errors.append(FileError(kind=ResultKind.PLOTS, file=plot_id, message="DVC rendered no image for it"))
        return plot
    size = os.path.getsize(url)
    if size > MAX_IMAGE_BYTES or len(images) >= MAX_IMAGES:
        truncation.append(
            f"plots: image {plot_id}: {size} bytes, not kept (at most {MAX_IMAGES} of {MAX_IMAGE_BYTES} bytes)"
        )
        return plot
    index = len(images)
    images.append(PlotImage(index=index, plot_id=plot_id, content_type=content_type, data=Path(url).read_bytes()))
    return Plot(
        id=plot_id, type=PlotType.IMAGE, revisions=rendered["revisions"], image_index=index, content_type=content_type
    )


def diff_revisions(root: Path, kind: ResultKind, a: str, b: str, *, unchanged: bool = False) -> RevisionDiff:
    """``dvc metrics diff --json a b`` (or ``params diff``; ``--all`` with ``unchanged``) as entries: each key that
    differs, with its old and new value and their difference when both are numbers. ``workspace`` is the working
    tree."""
    with open_repo(root) as repo:
        if repo.scm.no_commits:
            raise InvalidInput([Issue(path="a", message="the repository has no commit yet")])
        for path, revision in (("a", a), ("b", b)):
            if revision != WORKSPACE and not _resolves(repo, revision):
                raise InvalidInput([Issue(path=path, message=f"no revision {revision!r} in the repository")])
        show = repo.metrics if kind == ResultKind.METRICS else repo.params
        result = show.diff(a_rev=a, b_rev=b, all=unchanged)
    entries = [
        DiffEntry(
            file=file.replace(os.sep, "/"),
            key=key,
            old_json=json.dumps(change.get("old"), default=str),
            new_json=json.dumps(change.get("new"), default=str),
            delta=float(change["diff"]) if is_number(change.get("diff")) else None,
        )
        for file, changes in sorted(result.get("diff", {}).items())
        for key, change in sorted(changes.items())
    ]
    errors: list[FileError] = []
    for revision, failed in result.get("errors", {}).items():
        if isinstance(failed, dict):
            errors.extend(
                FileError(kind=kind, file=f, message=error_message(e), revision=revision) for f, e in failed.items()
            )
        else:
            errors.append(FileError(kind=kind, file="", message=error_message(failed), revision=revision))
    return RevisionDiff(a=a, b=b, entries=entries, errors=errors)


def _resolves(repo: Any, revision: str) -> bool:
    from scmrepo.exceptions import RevError

    try:
        repo.scm.resolve_rev(revision)
    except RevError:
        return False
    return True
