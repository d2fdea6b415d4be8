"""Project documents."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.db import Database, Document
from app.domain.errors import Conflict, NotFound
from app.domain.pages import Page
from app.domain.projects import Project, ProjectState, ResourceLimits
from app.domain.users import Member, Role
from app.repositories.ids import after_filter, parse_object_id


def _to_project(doc: Document) -> Project:
    return Project(
        id=str(doc["_id"]),
        owner=doc["owner"],
        name=doc["name"],
        description=doc.get("description"),
        repository_url=doc.get("repository_url"),
        state=ProjectState(doc.get("state", ProjectState.READY)),
        created_at=doc["created_at"],
        members=[Member(user_id=m["user_id"], role=Role(m["role"])) for m in doc.get("members", [])],
        limits=ResourceLimits.from_dict(doc.get("limits")),
        requirements_path=doc.get("requirements_path"),
        network_allowed=bool(doc.get("network_allowed", False)),
    )


class ProjectRepository:
    def __init__(self, db: Database) -> None:
        self._collection = db.projects

    async def create(self, *, owner: str, name: str, description: str | None, repository_url: str | None) -> Project:
        doc: Document = {
            "owner": owner,
            "name": name,
            "description": description,
            "repository_url": repository_url,
            "state": ProjectState.INITIALIZING.value,
            "created_at": datetime.now(UTC),
            "members": [{"user_id": owner, "role": Role.OWNER.value}],
        }
        try:
            result = await self._collection.insert_one(doc)
        except DuplicateKeyError as error:
            raise Conflict(f"a project named {name!r} already exists") from error
        doc["_id"] = result.inserted_id
        return _to_project(doc)

    async def get(self, project_id: str) -> Project:
        doc = await self._collection.find_one({"_id": parse_object_id(project_id, resource="project")})
        if doc is None:
            raise NotFound("project", project_id)
        return _to_project(doc)

    async def list_page(self, *, member: str, first: int, after: str | None) -> Page[Project]:
        query: Document = {"members.user_id": member, **after_filter(after, resource="project cursor")}
        docs = await self._collection.find(query).sort("_id", 1).limit(first + 1).to_list()
        return Page(items=[_to_project(d) for d in docs[:first]], has_next_page=len(docs) > first)

    async def ids_of(self, member: str) -> list[str]:
        docs = await self._collection.find({"members.user_id": member}, {"_id": 1}).to_list()
        return [str(d["_id"]) for d in docs]

    async def requirements_paths(self) -> list[tuple[str, str | None]]:
        """Every project's id and requirements path as its owner set it (the environments' cleanup)."""
        docs = await self._collection.find({}, {"_id": 1, "requirements_path": 1}).to_list()
        return [(str(d["_id"]), d.get("requirements_path")) for d in docs]

    async def set_members(self, project_id: str, members: list[Member]) -> Project:
        doc = await self._collection.find_one_and_update(
            {"_id": parse_object_id(project_id, resource="project")},
            {"$set": {"members": [{"user_id": m.user_id, "role": m.role.value} for m in members]}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise NotFound("project", project_id)
        return _to_project(doc)

    async def set_limits(self, project_id: str, limits: ResourceLimits) -> Project:
        doc = await self._collection.find_one_and_update(
            {"_id": parse_object_id(project_id, resource="project")},
            {"$set": {"limits": limits.to_dict()}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise NotFound("project", project_id)
        return _to_project(doc)

    async def set_requirements_path(self, project_id: str, path: str | None) -> Project:
        doc = await self._collection.find_one_and_update(
            {"_id": parse_object_id(project_id, resource="project")},
            {"$set": {"requirements_path": path}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise NotFound("project", project_id)
        return _to_project(doc)

    async def set_network_allowed(self, project_id: str, allowed: bool) -> Project:
        doc = await self._collection.find_one_and_update(
            {"_id": parse_object_id(project_id, resource="project")},
            {"$set": {"network_allowed": allowed}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise NotFound("project", project_id)
        return _to_project(doc)

    async def mark_ready(self, project_id: str) -> None:
        await self._collection.update_one(
            {"_id": parse_object_id(project_id, resource="project")},
            {"$set": {"state": ProjectState.READY.value}},
        )

    async def delete(self, project_id: str) -> bool:
        result = await self._collection.delete_one({"_id": parse_object_id(project_id, resource="project")})
        return result.deleted_count == 1
