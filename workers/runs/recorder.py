"""The single writer of one run's state and events while a worker executes it.

Stages run concurrently, so events are numbered under one lock, then stored and published in
order, batch after batch: a subscriber that sees event N live can rely on every event before N
being stored already. Events numbered while a batch is being written wait for it and go together
in the next one, so a burst of output costs a few writes, not one per chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from app.domain.runs import EventType, Run, RunEvent, RunState, StageRun, StageRunState
from app.events.publisher import record_events
from app.repositories.events import EventRepository
from app.repositories.runs import RunRepository
from workers.runs import faults


def without_server_paths(message: str | None, *, server_root: str, project_id: str) -> str | None:
    """``message`` with the project's workspace path shown as '.', and WORKSPACE_ROOT itself as '..'."""
    root = server_root.rstrip("/")
    if not message or not root:
        return message
    return message.replace(f"{root}/{project_id}", ".").replace(root, "..")


@dataclass
class RunRecorder:
    run: Run
    runs: RunRepository
    events: EventRepository
    redis: Redis
    seq: int = 0
    stages: dict[str, StageRun] = field(default_factory=dict)
    """The run's stages by name, in the run's order (their positions in the stored list)."""
    log_offsets: dict[str, int] = field(default_factory=dict)
    log_limit: int = 20 * 1024**2
    """Bytes of log kept per stage; past it one notice says the log was cut."""
    server_root: str = ""
    """The worker's WORKSPACE_ROOT: stored error messages show paths relative to the workspace, never this."""
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while an event is numbered (and its run document change stored)."""
    _send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while a batch is stored and published; batches therefore go out in order."""
    _unsent: list[RunEvent] = field(default_factory=list)
    _sent_through: int = 0
    """Every event up to this number was stored and published, or failed with ``_failure``."""
    _failure: tuple[range, BaseException] | None = None
    """The numbers of the last batch that could not be written, and why."""

    _positions: dict[str, int] = field(default_factory=dict)
    """Where each stage is in the stored list of the run's stages (a change updates that record alone)."""

    def __post_init__(self) -> None:
        self._positions = {name: i for i, name in enumerate(self.stages)}

    @classmethod
    def for_run(cls, run: Run, runs: RunRepository, events: EventRepository, redis: Redis) -> RunRecorder:
        return cls(
            run=run, runs=runs, events=events, redis=redis, seq=run.last_seq, stages={s.name: s for s in run.stages}
        )

    def snapshot(self) -> Run:
        """The run with its stages as this recorder knows them (ahead of the document when a write failed)."""
        return replace(self.run, stages=self._stages_now(), last_seq=self.seq)

    def _stages_now(self) -> list[StageRun]:
        return [replace(s, log_bytes=self.log_offsets.get(s.name, s.log_bytes)) for s in self.stages.values()]

    async def _emit(
        self, build: Callable[[int, datetime], RunEvent], store: Callable[[int], Awaitable[object]] | None = None
    ) -> RunEvent | None:
        """Number the event, update the run document (``store``), then store and publish the event.

        ``store`` returning None means the document refused the change (a state transition lost its
        race): then the number is not used and nothing is recorded. Returns once the event is
        stored and published; raises when the batch carrying it could not be.
        """
        async with self._lock:
            seq = self.seq + 1
            now = datetime.now(UTC)
            if store is not None and await store(seq) is None:
                return None
            self.seq = seq
            event = build(seq, now)
            self._unsent.append(event)
        await self._send_through(seq)
        return event

    async def _send_through(self, seq: int) -> None:
        async with self._send_lock:
            if seq > self._sent_through and self._unsent:
                batch, self._unsent = self._unsent, []
                self._sent_through = batch[-1].seq
                try:
                    if any(e.stage_state == StageRunState.SUCCEEDED for e in batch):
                        faults.inject(self.run.pipeline_name, "recording")
                    if any(e.run_state is not None and e.run_state.finished for e in batch):
                        faults.inject(self.run.pipeline_name, "final_event")
                    await record_events(
                        self.events, self.redis, batch, project_id=self.run.project_id, pipeline_id=self.run.pipeline_id
                    )
                except BaseException as error:
                    # The numbers are spent either way (as with a single event): followers read past the gap.
                    self._failure = (range(batch[0].seq, batch[-1].seq + 1), error)
                    raise
            if self._failure is not None and seq in self._failure[0]:
                raise self._failure[1]  # the batch carrying this event, written by another caller, failed

    @classmethod
    async def claim(
        cls, run_id: str, *, worker: str, runs: RunRepository, events: EventRepository, redis: Redis
    ) -> RunRecorder | None:
        """QUEUED -> RUNNING, recorded before anything else the worker does; None when the run is no longer queued
        (cancelled, or another worker has it).

        One write moves the run and numbers its RUNNING event (it also returns the run, so nothing is read before);
        ``announce`` then stores and publishes that event like every other. From here on the run is the caller's to
        end, whatever fails (workers.runs.job).
        """
        started = await runs.claim(run_id, worker=worker, at=datetime.now(UTC))
        if started is None:
            return None
        recorder = cls.for_run(started, runs, events, redis)
        at = started.started_at or datetime.now(UTC)
        recorder._unsent.append(recorder._run_event(recorder.seq, at, RunState.RUNNING, None))
        return recorder

    async def announce(self) -> None:
        """Store and publish the RUNNING event ``claim`` numbered."""
        await self._send_through(self.seq)

    async def set_stages(self, stages: list[StageRun]) -> None:
        """The stages this run considers, in order (replacing the pipeline's full list)."""
        self.stages = {s.name: s for s in stages}
        self._positions = {s.name: i for i, s in enumerate(stages)}
        async with self._lock:
            # Not stored when the run was settled meanwhile (cancelled by the API, declared lost): nothing to number.
            await self.runs.set_stages(self.run.id, stages, seq=self.seq)

    async def heartbeat(self, *, worker: str) -> None:
        """Say the worker is alive, between this recorder's own writes of the run document, never during one.

        FerretDB v1 applies an update by reading the document and writing all of it back, so two updates of one
        document at once can lose one of them: a heartbeat racing the final transition could write RUNNING back.
        MongoDB updates a document atomically; serialising costs nothing there.
        """
        async with self._lock:
            await self.runs.heartbeat(self.run.id, worker=worker)

    @contextlib.asynccontextmanager
    async def writing_alone(self) -> AsyncIterator[None]:
        """Hold off this recorder's writes (and heartbeats) while someone else writes the run document."""
        async with self._lock:
            yield

    def without_server_paths(self, message: str | None) -> str | None:
        return without_server_paths(message, server_root=self.server_root, project_id=self.run.project_id)

    async def stage(self, name: str, state: StageRunState, **fields: Any) -> StageRun:
        if "error" in fields:
            fields["error"] = self.without_server_paths(fields["error"])
        stage = replace(self.stages[name], state=state, log_bytes=self.log_offsets.get(name, 0), **fields)
        self.stages[name] = stage
        position = self._positions[name]

        async def store(seq: int) -> bool | None:
            # A run settled meanwhile keeps its final stages: then this change is not recorded at all.
            return await self.runs.update_stage(self.run.id, position, stage, seq=seq) or None

        await self._emit(
            lambda seq, at: RunEvent(
                run_id=self.run.id,
                seq=seq,
                type=EventType.STAGE_STATE,
                at=at,
                stage=name,
                stage_state=state,
                message=stage.error or stage.skip_reason,
            ),
            store,
        )
        return stage

    async def log(self, stage: str, text: str) -> None:
        offset = self.log_offsets.get(stage, 0)
        if not text or offset >= self.log_limit:
            return
        encoded = text.encode()
        if offset + len(encoded) > self.log_limit:
            kept = encoded[: self.log_limit - offset].decode(errors="ignore")
            text = kept + f"\n[log cut: the stage printed more than {self.log_limit} bytes; the rest was not kept]\n"
        # After a cut the offset passes the limit (by the notice's length), so nothing more is stored.
        self.log_offsets[stage] = offset + len(text.encode())
        await self._emit(
            lambda seq, at: RunEvent(
                run_id=self.run.id, seq=seq, type=EventType.LOG, at=at, stage=stage, text=text, offset=offset
            )
        )

    async def finish(self, state: RunState, *, error: str | None, outputs_changed: list[str]) -> Run | None:
        """RUNNING -> ``state`` with the stages as recorded, in one write, then its event; None when the run was no
        longer RUNNING (someone else settled it: its final state stands)."""
        error = self.without_server_paths(error)
        stages = self._stages_now()

        async def store(seq: int) -> Run | None:
            finished = await self.runs.transition(
                self.run.id,
                from_states=(RunState.RUNNING,),
                to_state=state,
                seq=seq,
                stages=stages,
                finished_at=datetime.now(UTC),
                error=error,
                outputs_changed=outputs_changed,
            )
            if finished is not None:
                self.run = finished
            return finished

        if await self._emit(lambda seq, at: self._run_event(seq, at, state, error), store) is None:
            return None
        return self.run

    def _run_event(self, seq: int, at: datetime, state: RunState, message: str | None) -> RunEvent:
        return RunEvent(run_id=self.run.id, seq=seq, type=EventType.RUN_STATE, at=at, run_state=state, message=message)
