"""Who the harness is: a user and API token made the administrator's way (`python -m app create-user`).

Before the service had tokens it named callers with `X-User`; both are sent, so the harness works either way.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from bench.stack import ROOT

TOKEN_ENV = "BENCH_TOKEN"
USER_ENV = "BENCH_USER"


@dataclass(frozen=True, slots=True)
class Credentials:
    user: str
    token: str | None

    @property
    def headers(self) -> dict[str, str]:
        headers = {"x-user": self.user}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        return headers

    @property
    def init_payload(self) -> dict[str, str]:
        """What graphql-transport-ws `connection_init` carries (browsers cannot set WebSocket headers)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def as_env(self) -> dict[str, str]:
        """For the load processes: in their environment, not on their command line."""
        return {USER_ENV: self.user, TOKEN_ENV: self.token or ""}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Credentials:
        return cls(user=env[USER_ENV], token=env.get(TOKEN_ENV) or None)


def create(env: Mapping[str, str]) -> Credentials:
    user = f"bench-{uuid.uuid4().hex[:8]}"
    if not (ROOT / "app" / "__main__.py").exists():
        return Credentials(user, None)
    done = subprocess.run(
        [sys.executable, "-m", "app", "create-user", user],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"python -m app create-user failed ({done.returncode}): {done.stderr[-1000:]}")
    return Credentials(user, done.stdout.strip())
