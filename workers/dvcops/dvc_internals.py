"""The one place the workers use DVC names outside its public surface (``Repo`` methods, ``dvc.api``, the CLI).

Each is an internal of DVC 3.x, read as DVC 3.67 has it: the rwlock file's name, schema and guard (for its repair,
rwlock_file), the dvc.yaml text parser and schema (replacePipelineFile, replacing), and the plot renderers the
`dvc plots show --json` command uses (results). ``checked()`` says whether the running DVC is a version these were
checked against; the tests that compare with the CLI (tests/workers/test_dvcops_rwlock.py,
tests/api/test_templated_pipelines.py, tests/results/) are their oracle.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

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
