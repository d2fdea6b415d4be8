"""``python -m workers``: run one worker for the workspace-operations queue."""

from __future__ import annotations

import logging
import os

# DVC reads this at import time; without it every DVC call forks an analytics reporter.
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

from arq import run_worker

from workers.settings import WorkerSettings


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    run_worker(WorkerSettings)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
