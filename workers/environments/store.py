"""Virtualenvs built with uv, one per requirements content (and interpreter), shared by every project using it.

An environment lives at ``<root>/py<version>-<hash>``, where the hash covers the requirements' bytes and the base
interpreter (its version and prefix), so projects with the same file share one. It is built under a file lock of
its own (two runs needing it at once build it once; the second finds it built) into a temporary folder that is
renamed into place when complete: a folder at the final path is always a whole environment. uv makes it
relocatable, so entry points still work after the rename. uv runs with the store as its working folder and
relative paths (its log names no server path), without reading any uv configuration (``--no-config``), never
downloading interpreters, and installing wheels only: a source build would run a package's code as the worker.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from uv import find_uv_bin

OutputCallback = Callable[[str], Awaitable[None]]

BUILDING_PREFIX = ".building-"
LOCKS_FOLDER = ".locks"
UV_CACHE_FOLDER = ".uv-cache"
LOCK_POLL_SECONDS = 0.2
READ_CHUNK_BYTES = 64 * 1024
# Variables of the worker's environment uv may need to reach the package index (proxies, certificates) or that an
# operator set for uv itself (an index mirror); nothing else of the worker's environment reaches it.
PASSED_PREFIXES = ("UV_", "SSL_CERT_", "REQUESTS_CA_BUNDLE")
PASSED_NAMES = frozenset(
    {
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
        "PATH",
        "HOME",
        "TMPDIR",
    }
)


@dataclass(frozen=True, slots=True)
class PythonEnvironment:
    """A project's Python environment: a virtualenv whose ``bin/`` leads a stage's PATH."""

    root: Path
    interpreter_home: Path
    """The base interpreter's prefix: the environment's ``python`` links into it, so a sandbox that shows the
    environment must show this folder too (read-only)."""

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    @property
    def read_only_folders(self) -> tuple[Path, ...]:
        """What a sandbox mounts read-only for this environment to work."""
        return (self.root, self.interpreter_home)


class EnvironmentBuildFailed(Exception):
    def __init__(self, exit_code: int) -> None:
        super().__init__(f"uv exited with code {exit_code}")
        self.exit_code = exit_code


def interpreter_tag() -> str:
    """What besides the requirements decides an environment: the base interpreter it is made from."""
    return f"{platform.python_implementation()} {platform.python_version()} {os.path.realpath(sys.base_prefix)}"


def environment_key(requirements: bytes) -> str:
    digest = hashlib.sha256(interpreter_tag().encode() + b"\0" + requirements).hexdigest()
    return f"py{platform.python_version()}-{digest[:32]}"


class EnvironmentStore:
    """The environments under one folder (PROJECT_ENVIRONMENTS_ROOT)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def environment_for(self, requirements: bytes) -> PythonEnvironment:
        """Where the environment of ``requirements`` is (built or not)."""
        return PythonEnvironment(
            root=self.root / environment_key(requirements), interpreter_home=Path(os.path.realpath(sys.base_prefix))
        )

    def is_built(self, environment: PythonEnvironment) -> bool:
        return environment.python.exists()

    async def ensure(self, requirements: bytes, on_output: OutputCallback) -> tuple[PythonEnvironment, bool]:
        """The environment of ``requirements``, built first unless it was already; True when it was built now.

        Raises EnvironmentBuildFailed (uv's output went to ``on_output``); cancelling stops uv and leaves nothing.
        """
        environment = self.environment_for(requirements)
        if self.is_built(environment):
            return environment, False
        await asyncio.to_thread(self._make_folders)
        lock_fd = await asyncio.to_thread(os.open, self._lock_path(environment), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await self._lock(lock_fd, environment, on_output)
            if self.is_built(environment):
                return environment, False  # another run built it while this one waited
            await self._build(environment, requirements, on_output)
            return environment, True
        finally:
            os.close(lock_fd)  # releases the lock

    def _make_folders(self) -> None:
        (self.root / LOCKS_FOLDER).mkdir(parents=True, exist_ok=True)

    def _lock_path(self, environment: PythonEnvironment) -> Path:
        return self.root / LOCKS_FOLDER / f"{environment.root.name}.lock"

    async def _lock(self, lock_fd: int, environment: PythonEnvironment, on_output: OutputCallback) -> None:
        told = False
        while True:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if not told:
                    await on_output(f"waiting for another run building environment {environment.root.name}\n")
                    told = True
                await asyncio.sleep(LOCK_POLL_SECONDS)

    async def _build(self, environment: PythonEnvironment, requirements: bytes, on_output: OutputCallback) -> None:
        """Under the environment's lock: build into a temporary folder, then rename it into place."""
        name = environment.root.name
        # Left by a worker that died while building (nobody else builds this one: the lock is ours).
        for stale in await asyncio.to_thread(lambda: list(self.root.glob(f"{BUILDING_PREFIX}{name}-*"))):
            await asyncio.to_thread(shutil.rmtree, stale, True)
        building = f"{BUILDING_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
        try:
            await self._uv(
                ["venv", "--quiet", "--relocatable", "--no-python-downloads", "--python", sys.executable, building],
                on_output,
            )
            if requirements:
                await asyncio.to_thread((self.root / building / "requirements.txt").write_bytes, requirements)
                await self._uv(
                    [
                        "pip",
                        "install",
                        "--python",
                        f"{building}/bin/python",
                        "--only-binary",
                        ":all:",
                        # Stages see the environment read-only (the sandbox): without bytecode compiled here, every
                        # stage would compile what it imports again (about 10 s for pandas and scikit-learn).
                        "--compile-bytecode",
                        "-r",
                        f"{building}/requirements.txt",
                    ],
                    on_output,
                )
            await asyncio.to_thread(os.rename, self.root / building, environment.root)
        finally:
            await asyncio.to_thread(shutil.rmtree, self.root / building, True)

    async def _uv(self, args: list[str], on_output: OutputCallback) -> None:
        argv = [find_uv_bin(), *args, "--no-config", "--color", "never"]
        # The log shows no server path: the interpreter's is replaced by what it is.
        shown = [f"python{sys.version_info.major}.{sys.version_info.minor}" if a == sys.executable else a for a in argv]
        await on_output("$ uv " + " ".join(shown[1:]) + "\n")
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=self.root,
            env=self._uv_environment(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        assert process.stdout is not None
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span two chunks
        try:
            while chunk := await process.stdout.read(READ_CHUNK_BYTES):
                if text := decoder.decode(chunk):
                    await on_output(text)
            exit_code = await process.wait()
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await asyncio.shield(process.wait())
        if exit_code != 0:
            raise EnvironmentBuildFailed(exit_code)

    def _uv_environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in PASSED_NAMES or k.startswith(PASSED_PREFIXES)}
        env.setdefault("UV_CACHE_DIR", str(self.root / UV_CACHE_FOLDER))  # same filesystem: uv hard-links from it
        env |= {"UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1", "UV_NO_PROGRESS": "1"}
        return env
