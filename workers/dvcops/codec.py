"""StageSpec <-> the stage entries of a dvc.yaml, written the way `dvc stage add` writes them."""

from __future__ import annotations

from typing import Any

from app.domain.pipelines import StageSpec
from workers.dvcops.paths import to_dvc_wdir, to_project_wdir

DEFAULT_PARAMS_FILE = "params.yaml"
# `dvc stage add -M` and `--plots-no-cache`: metrics and plots are small and belong in git.
UNCACHED = {"cache": False}


def to_dvc_stage(spec: StageSpec, pipeline_path: str) -> dict[str, Any]:
    """The dvc.yaml entry of one stage (without its name)."""
    data: dict[str, Any] = {"cmd": spec.cmd}
    wdir = to_dvc_wdir(spec.wdir, pipeline_path)
    if wdir is not None:
        data["wdir"] = wdir
    if spec.deps:
        data["deps"] = list(spec.deps)
    if spec.params:
        data["params"] = params_to_dvc(spec.params)
    if spec.outs:
        data["outs"] = list(spec.outs)
    if spec.metrics:
        data["metrics"] = [{path: dict(UNCACHED)} for path in spec.metrics]
    if spec.plots:
        data["plots"] = [{path: dict(UNCACHED)} for path in spec.plots]
    if spec.description is not None:
        data["desc"] = spec.description
    if spec.frozen:
        data["frozen"] = True
    if spec.always_changed:
        data["always_changed"] = True
    return data


def to_dvc_stages(specs: list[StageSpec], pipeline_path: str) -> dict[str, Any]:
    return {spec.name: to_dvc_stage(spec, pipeline_path) for spec in specs}


def from_dvc_stage(name: str, data: dict[str, Any], pipeline_path: str) -> StageSpec:
    """A StageSpec from a resolved dvc.yaml entry (after DVC's interpolation and foreach/matrix expansion).

    Output options other than the path (cache, persist, plot props) are not part of StageSpec and are
    dropped; a list ``cmd`` (DVC runs its items one after another, stopping at the first failure)
    becomes one command joined with ``&&``.
    """
    cmd = data.get("cmd") or ""
    return StageSpec(
        name=name,
        cmd=" && ".join(cmd) if isinstance(cmd, list) else str(cmd),
        deps=[str(dep) for dep in data.get("deps") or []],
        outs=_out_paths(data.get("outs")),
        params=params_from_dvc(data.get("params")),
        metrics=_out_paths(data.get("metrics")),
        plots=_out_paths(data.get("plots")),
        description=data.get("desc"),
        frozen=bool(data.get("frozen", False)),
        always_changed=bool(data.get("always_changed", False)),
        wdir=to_project_wdir(data.get("wdir"), pipeline_path),
    )


def split_param(entry: str) -> tuple[str, str]:
    """``key`` -> (params.yaml, key); ``file.yaml:key`` -> (file.yaml, key)."""
    file, sep, key = entry.rpartition(":")
    return (file, key) if sep else (DEFAULT_PARAMS_FILE, entry)


def params_to_dvc(entries: list[str]) -> list[str | dict[str, list[str]]]:
    """Bare keys stay strings (params.yaml, DVC's default); other files become ``{file: [keys]}``."""
    result: list[str | dict[str, list[str]]] = []
    by_file: dict[str, list[str]] = {}
    for entry in entries:
        if ":" not in entry:
            result.append(entry)
            continue
        file, key = split_param(entry)
        if file not in by_file:
            by_file[file] = []
            result.append({file: by_file[file]})
        if key:  # `file:` alone tracks the whole file, which DVC writes as `{file: []}`
            by_file[file].append(key)
    return result


def params_from_dvc(raw: Any) -> list[str]:
    entries: list[str] = []
    for item in raw or []:
        if isinstance(item, dict):
            for file, keys in item.items():
                # `{file: }` / `{file: []}` track the whole file; kept as `file:` to survive a round trip.
                entries.extend(f"{file}:{key}" for key in keys or [""])
        else:
            entries.append(str(item))
    return entries


def _out_paths(raw: Any) -> list[str]:
    paths: list[str] = []
    for item in raw or []:
        if isinstance(item, dict):
            paths.extend(str(path) for path in item)
        else:
            paths.append(str(item))
    return paths
