"""Shape checks for the production files: compose.yaml and Dockerfile.

No Docker engine is needed: the files are parsed and their structure asserted.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...]
        return dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """target -> source for the service's volumes (short or long syntax)."""
    mounts: dict[str, str] = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        mounts[target] = source
    return mounts


def _command(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def _healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


def _build_context(service: dict[str, Any]) -> str | None:
    build = service.get("build")
    if build is None:
        return None
    return build if isinstance(build, str) else build.get("context", ".")


def test_compose_has_the_four_services() -> None:
    assert {"mongo", "redis", "api", "worker"} <= set(_services())


def test_compose_mongo_and_redis_are_persistent_and_healthchecked() -> None:
    services = _services()
    volumes = _compose().get("volumes") or {}

    mongo = services["mongo"]
    assert str(mongo["image"]).startswith("mongo:7")
    assert _mounts(mongo)["/data/db"] in volumes
    assert "mongosh" in _healthcheck_text(mongo)
    assert "ping" in _healthcheck_text(mongo)

    redis = services["redis"]
    assert str(redis["image"]).startswith("redis:7")
    command = _command(redis.get("command"))
    assert "--appendonly" in command
    assert command[command.index("--appendonly") + 1] == "yes"
    assert _mounts(redis)["/data"] in volumes
    assert "redis-cli" in _healthcheck_text(redis)
    assert "ping" in _healthcheck_text(redis)


def test_compose_api_is_built_configured_and_waits_for_healthy_stores() -> None:
    api = _services()["api"]
    assert _build_context(api) == "."
    assert any(str(port).endswith("8000") for port in api["ports"])
    env = _env(api)
    assert env["MONGODB_URL"] == (
        "mongodb://${MONGO_USER:-dvc}:${MONGO_PASSWORD:-change-me-mongo}@mongo:27017/?authSource=admin"
    )
    assert env["REDIS_URL"] == "redis://:${REDIS_PASSWORD:-change-me-redis}@redis:6379"
    assert env["WORKSPACE_ROOT"] == "/workspaces"
    for dependency in ("mongo", "redis"):
        assert api["depends_on"][dependency]["condition"] == "service_healthy"


def test_compose_worker_uses_the_api_image_and_is_scalable() -> None:
    services = _services()
    api, worker = services["api"], services["worker"]
    assert _command(worker.get("command")) == ["python", "-m", "workers"]
    # Same image as the API: the same build and the same image name.
    assert _build_context(worker) == _build_context(api) == "."
    assert worker.get("image") == api.get("image")
    assert worker.get("image")
    # `docker compose up --scale worker=N` needs no fixed name and no published ports.
    assert "container_name" not in worker
    assert not worker.get("ports")
    # The API's settings, and where the workers keep the projects' Python environments.
    assert _env(worker) == _env(api) | {"PROJECT_ENVIRONMENTS_ROOT": "/environments"}
    for dependency in ("mongo", "redis"):
        assert worker["depends_on"][dependency]["condition"] == "service_healthy"


def _credential(value: str, variable: str) -> bool:
    """A compose interpolation of ``variable`` with a default: ``${VARIABLE:-default}``."""
    return re.fullmatch(r"\$\{" + variable + r":-[^}]+\}", value) is not None


def test_compose_mongo_and_redis_require_the_credentials_the_apps_use() -> None:
    services = _services()
    mongo_env = _env(services["mongo"])
    assert _credential(mongo_env["MONGO_INITDB_ROOT_USERNAME"], "MONGO_USER")
    assert _credential(mongo_env["MONGO_INITDB_ROOT_PASSWORD"], "MONGO_PASSWORD")
    command = _command(services["redis"].get("command"))
    password = command[command.index("--requirepass") + 1]
    assert _credential(password, "REDIS_PASSWORD")
    assert _env(services["redis"])["REDISCLI_AUTH"] == password  # the healthcheck authenticates too
    app_env = _env(services["api"])
    assert (
        f"{mongo_env['MONGO_INITDB_ROOT_USERNAME']}:{mongo_env['MONGO_INITDB_ROOT_PASSWORD']}@mongo:"
        in (app_env["MONGODB_URL"])
    )
    assert f":{password}@redis:" in app_env["REDIS_URL"]
    header = (ROOT / "compose.yaml").read_text(encoding="utf-8").split("x-app:")[0]
    for variable in ("MONGO_USER", "MONGO_PASSWORD", "REDIS_PASSWORD"):
        assert variable in header, f"{variable} is not documented at the top of compose.yaml"


def test_compose_stores_sit_on_an_internal_network_only() -> None:
    services = _services()
    networks = _compose().get("networks") or {}
    for store in ("mongo", "redis"):
        joined = services[store].get("networks") or []
        assert joined, f"{store} is on the default network"
        assert all((networks.get(n) or {}).get("internal") is True for n in joined), (store, joined)
        assert not services[store].get("ports"), f"{store} publishes a port"
    for app in ("api", "worker"):
        assert "backend" in services[app]["networks"], app
    assert (networks["backend"] or {}).get("internal") is True
    # The API is reachable from outside; the workers can clone; neither network holds a store.
    outside = {n for app in ("api", "worker") for n in services[app]["networks"]} - {"backend"}
    assert outside and not any((networks.get(n) or {}).get("internal") for n in outside)
    assert not outside & {n for s in ("mongo", "redis") for n in services[s]["networks"]}


def test_compose_api_and_worker_share_the_workspaces_volume() -> None:
    services = _services()
    assert "workspaces" in (_compose().get("volumes") or {})
    for name in ("api", "worker"):
        assert _mounts(services[name]).get("/workspaces") == "workspaces", name


def test_compose_workers_share_a_volume_of_project_environments_the_api_does_not_mount() -> None:
    services = _services()
    assert "environments" in (_compose().get("volumes") or {})
    assert _mounts(services["worker"]).get("/environments") == "environments"
    assert "/environments" not in _mounts(services["api"])


# What bwrap needs to build a stage's namespaces in a container as a non-root user (compose.yaml says why).
SANDBOX_SECURITY = {"seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"}


def _security_options(service: dict[str, Any]) -> set[str]:
    """security_opt entries, with the older ``key:value`` spelling read as ``key=value``."""
    return {str(option).replace(":", "=", 1) for option in service.get("security_opt") or []}


def test_compose_only_the_worker_may_build_sandboxes_and_it_gains_no_capability() -> None:
    services = _services()
    worker = services["worker"]
    assert _security_options(worker) >= SANDBOX_SECURITY
    assert "no-new-privileges=true" in _security_options(worker), "bwrap needs no setuid: nothing may gain privileges"
    assert not worker.get("cap_add") and not worker.get("privileged")
    assert worker.get("user") in {None, "app", "10001"}, "the workspaces' owner, as the API (bwrap takes a userns)"
    assert "STAGES_UNSANDBOXED" not in _env(worker), "unsandboxed only when an operator says so"
    for name in ("api", "mongo", "redis"):
        service = services[name]
        assert not _security_options(service) & SANDBOX_SECURITY, name
        assert not service.get("cap_add") and not service.get("privileged"), name
    # The stores stay on the internal network only, whatever the worker may do (test above); the comment says why.
    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    for option in SANDBOX_SECURITY:
        assert f"{option.split('=')[0]}=unconfined " in text.split("security_opt:")[0], f"{option} is not explained"


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # comment inside a continued instruction
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    if current:
        logical.append(current)
    result = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


def test_dockerfile_is_production_shaped() -> None:
    instructions = _dockerfile_instructions()
    by_keyword: dict[str, list[str]] = {}
    for keyword, args in instructions:
        by_keyword.setdefault(keyword, []).append(args)

    assert by_keyword["FROM"][0].split()[0] == "python:3.11-slim"

    # Runs as a non-root user.
    users = by_keyword.get("USER", [])
    assert users, "no USER instruction"
    assert users[-1].split(":")[0] not in {"root", "0"}

    env_text = " ".join(by_keyword.get("ENV", []))
    assert re.search(r"\bWORKSPACE_ROOT=/workspaces\b", env_text)
    assert re.search(r"\bDVC_NO_ANALYTICS=1\b", env_text)
    assert any("/workspaces" in volume for volume in by_keyword.get("VOLUME", []))
    runs = by_keyword.get("RUN", [])
    # git for the workspaces; bubblewrap (bwrap) for the stage sandbox (its PID 1 is the stage shell).
    for package in ("git", "bubblewrap"):
        assert any("install" in run and package in run.split() for run in runs), package
    # The service's packages live in a virtualenv outside /usr, which a stage's sandbox shows: the base interpreter
    # of the projects' environments (/usr/local/bin/python3) imports none of them.
    assert any(run.split()[:4] == ["python", "-m", "venv", "/opt/service"] for run in runs)
    assert re.search(r"\bPATH=/opt/service/bin:\$PATH\b", env_text)
    pip_installs = [run for run in runs if "pip install" in run]
    assert pip_installs and runs.index(pip_installs[0]) > runs.index("python -m venv /opt/service")
    assert re.search(r"\bPROJECT_ENVIRONMENTS_ROOT=/environments\b", env_text)
    assert any("/environments" in volume for volume in by_keyword.get("VOLUME", []))

    healthchecks = by_keyword.get("HEALTHCHECK", [])
    assert healthchecks, "no HEALTHCHECK instruction"
    assert "urllib" in healthchecks[-1]
    assert "/health" in healthchecks[-1]

    cmd = json.loads(by_keyword["CMD"][-1])  # exec form
    assert cmd[:2] == ["uvicorn", "app.main:app"]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--port") + 1] == "8000"
    assert "--proxy-headers" in cmd
    assert "--reload" not in cmd
