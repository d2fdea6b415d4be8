"""Streaming a process's output to a callback as text chunks, cut at line ends, at most ~10 per second."""

from __future__ import annotations

import asyncio
import codecs
import re
from collections.abc import Awaitable, Callable

OutputCallback = Callable[[str], Awaitable[None]]

READ_SIZE = 64 * 1024
# A chunk at most this long after the previous one while output flows; the first line after a quiet spell goes at once.
FLUSH_SECONDS = 0.1
# Held text past this size goes out without waiting for the interval.
MAX_PENDING_CHARS = 256 * 1024
# DVC's own words when it does not run a stage's command (dvc/stage/__init__.py reproduce, dvc/stage/cache.py restore).
SKIP_LINE = re.compile(r"didn't change, skipping|is cached - skipping run")


class OutputPump:
    """Reads a stream to its end, handing text to ``on_output``; remembers DVC's last "skipping" line.

    An exception from ``on_output`` stops the callbacks (the stream is still drained so the process never blocks on
    a full pipe) and is kept in ``callback_error``.
    """

    def __init__(self, stream: asyncio.StreamReader, on_output: OutputCallback) -> None:
        self.stream = stream
        self.on_output = on_output
        self.skip_line: str | None = None
        self.callback_error: BaseException | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self._pending_since = 0.0
        self._last_emit = float("-inf")
        self._scan_tail = ""

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        eof = False
        while not eof:
            timeout = None if not self._pending else max(0.0, self._due() - loop.time())
            try:
                data = await asyncio.wait_for(self.stream.read(READ_SIZE), timeout)
            except TimeoutError:
                data = None
            if data is not None:
                eof = not data
                text = self._decoder.decode(data, final=eof)
                if text and not self._pending:
                    self._pending_since = loop.time()
                self._pending += text
            if self._pending and (eof or loop.time() >= self._due() or len(self._pending) > MAX_PENDING_CHARS):
                await self._emit(whole=eof)
        if self._scan_tail:
            self._scan("\n")

    def _due(self) -> float:
        """When the held text should go out: complete lines after the interval, a partial line once it is that old."""
        if "\n" in self._pending:
            return max(self._pending_since, self._last_emit + FLUSH_SECONDS)
        return max(self._pending_since, self._last_emit) + FLUSH_SECONDS

    async def _emit(self, whole: bool) -> None:
        cut = len(self._pending) if whole else self._pending.rfind("\n") + 1
        if cut == 0:
            # No line end in sight (a progress bar, a long line): do not hold it back longer than the interval.
            cut = len(self._pending)
        chunk, self._pending = self._pending[:cut], self._pending[cut:]
        now = asyncio.get_running_loop().time()
        self._last_emit = now
        self._pending_since = now
        self._scan(chunk)
        if self.callback_error is None:
            try:
                await self.on_output(chunk)
            except Exception as error:
                self.callback_error = error

    def _scan(self, chunk: str) -> None:
        lines = (self._scan_tail + chunk).split("\n")
        self._scan_tail = lines.pop()
        for line in lines:
            if SKIP_LINE.search(line):
                self.skip_line = line.strip()
