"""DVC's refusals in the promotion jobs become the service's typed errors (a DVC exception never reaches the API)."""

from __future__ import annotations

import pytest
from dvc.exceptions import DvcException
from dvc.lock import LockError

from app.domain.errors import WorkspaceBusy, WorkspaceError
from workers.experiments.promotion import dvc_failures


def test_a_dvc_refusal_is_a_workspace_error_naming_what_was_done() -> None:
    with pytest.raises(WorkspaceError) as refused, dvc_failures("apply the experiment"):
        raise DvcException("no cache for model.txt")
    assert refused.value.message == "DVC could not apply the experiment: no cache for model.txt"


def test_dvcs_held_lock_is_a_busy_workspace() -> None:
    with pytest.raises(WorkspaceBusy), dvc_failures("remove the experiments"):
        raise LockError("Unable to acquire lock")
