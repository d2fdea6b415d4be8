"""Result snapshots of runs, one document per run in ``run_results``, their images in ``run_result_images``.

Apart from the run documents on purpose: every event, subscription and list reads runs, and a snapshot may hold
thousands of entries and megabytes of plots that none of those paths need.
"""

from __future__ import annotations

from datetime import datetime

from bson import Binary

from app.db import Database, Document
from app.domain.results import MetricPoint, PlotImage, ResultsSnapshot, RunResults

# metricHistory reads at most this many snapshots of a pipeline, newest first, to find a metric's values.
HISTORY_SCAN_LIMIT = 500


def _to_results(doc: Document) -> RunResults:
    return RunResults(
        run_id=doc["run_id"],
        project_id=doc["project_id"],
        pipeline_id=doc["pipeline_id"],
        read_at=doc["read_at"],
        snapshot=ResultsSnapshot.from_dict(doc),
    )


class ResultsRepository:
    def __init__(self, db: Database) -> None:
        self._collection = db.run_results
        self._images = db.run_result_images

    async def save(
        self, *, run_id: str, project_id: str, pipeline_id: str, read_at: datetime, snapshot: ResultsSnapshot
    ) -> None:
        """Store (or replace: a job may run twice) the snapshot of a run, images first so a reader finds them."""
        await self._images.delete_many({"run_id": run_id})
        if snapshot.images:
            await self._images.insert_many([_image_document(run_id, image) for image in snapshot.images])
        doc: Document = {
            "run_id": run_id,
            "project_id": project_id,
            "pipeline_id": pipeline_id,
            "read_at": read_at,
            **snapshot.to_dict(),
        }
        await self._collection.replace_one({"run_id": run_id}, doc, upsert=True)

    async def get(self, run_id: str) -> RunResults | None:
        doc = await self._collection.find_one({"run_id": run_id})
        return None if doc is None else _to_results(doc)

    async def get_many(self, run_ids: list[str]) -> dict[str, RunResults]:
        docs = await self._collection.find({"run_id": {"$in": run_ids}}, {"plots": 0}).to_list()
        return {d["run_id"]: _to_results(d) for d in docs}

    async def image(self, run_id: str, index: int) -> PlotImage | None:
        doc = await self._images.find_one({"run_id": run_id, "index": index})
        if doc is None:
            return None
        return PlotImage(index=doc["index"], plot_id=doc["plot_id"], content_type=doc["content_type"], data=doc["data"])

    async def metric_history(self, *, pipeline_id: str, file: str, key: str, first: int) -> list[MetricPoint]:
        """The metric in the pipeline's snapshots, newest first; snapshots without it are passed over."""
        points: list[MetricPoint] = []
        cursor = (
            self._collection.find({"pipeline_id": pipeline_id}, {"run_id": 1, "read_at": 1, "metrics": 1})
            .sort("read_at", -1)
            .limit(HISTORY_SCAN_LIMIT)
        )
        async for doc in cursor:
            for entry in doc.get("metrics", []):
                if entry.get("file") == file and entry.get("key") == key:
                    number = entry.get("number")
                    points.append(
                        MetricPoint(
                            run_id=doc["run_id"],
                            read_at=doc["read_at"],
                            value_json=entry.get("value"),
                            number=None if number is None else float(number),
                        )
                    )
                    break
            if len(points) >= first:
                break
        await cursor.close()
        return points

    async def delete_for_project(self, project_id: str) -> None:
        run_ids = [
            d["run_id"] for d in await self._collection.find({"project_id": project_id}, {"run_id": 1}).to_list()
        ]
        await self._images.delete_many({"run_id": {"$in": run_ids}})
        await self._collection.delete_many({"project_id": project_id})


def _image_document(run_id: str, image: PlotImage) -> Document:
    return {
        "run_id": run_id,
        "index": image.index,
        "plot_id": image.plot_id,
        "content_type": image.content_type,
        "data": Binary(image.data),
    }
