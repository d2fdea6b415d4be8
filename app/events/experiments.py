"""Experiments' state changes on Redis: each message is the experiment's document as it was written (BSON).

A message is published after its write, so a subscriber that subscribed before reading the store receives every
state entered after its read. States only move forward (queued, running, a final one), and one experiment's states
are published by one job in turn; a subscriber drops a message whose state is not past the one it sent.
"""

from __future__ import annotations

from typing import Any

import bson
from bson.codec_options import CodecOptions
from redis.asyncio import Redis

from app.domain.experiments import Experiment
from app.events import channels
from app.repositories.experiments import experiment_document, experiment_of_document

# As the MongoDB client reads documents (app.db): datetimes in UTC, aware.
_CODEC: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True)


def encode_experiment(experiment: Experiment) -> bytes:
    return bson.encode(experiment_document(experiment))


def decode_experiment(raw: bytes) -> Experiment:
    return experiment_of_document(bson.decode(raw, codec_options=_CODEC))


async def publish_experiment(redis: Redis, experiment: Experiment) -> None:
    message = encode_experiment(experiment)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.publish(channels.pipeline_experiments(experiment.pipeline_id), message)
        if experiment.sweep_id is not None:
            pipe.publish(channels.sweep_experiments(experiment.sweep_id), message)
        await pipe.execute()
