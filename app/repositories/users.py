"""Users and API tokens. Tokens are stored as SHA-256 hashes of their secret, never the secret."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.errors import DuplicateKeyError

from app.db import Database, Document
from app.domain.errors import Conflict, NotFound
from app.domain.users import ApiToken, User
from app.repositories.ids import parse_object_id


def _to_user(doc: Document) -> User:
    return User(id=str(doc["_id"]), name=doc["name"], created_at=doc["created_at"])


def _to_token(doc: Document) -> ApiToken:
    return ApiToken(
        id=str(doc["_id"]),
        user_id=doc["user_id"],
        name=doc["name"],
        prefix=doc["prefix"],
        created_at=doc["created_at"],
        expires_at=doc.get("expires_at"),
        revoked_at=doc.get("revoked_at"),
        last_used_at=doc.get("last_used_at"),
    )


class UserRepository:
    def __init__(self, db: Database) -> None:
        self._users = db.users
        self._tokens = db.api_tokens

    async def create_user(self, name: str) -> User:
        doc: Document = {"name": name, "created_at": datetime.now(UTC)}
        try:
            result = await self._users.insert_one(doc)
        except DuplicateKeyError as error:
            raise Conflict(f"a user named {name!r} already exists") from error
        doc["_id"] = result.inserted_id
        return _to_user(doc)

    async def get_user(self, user_id: str) -> User:
        doc = await self._users.find_one({"_id": parse_object_id(user_id, resource="user")})
        if doc is None:
            raise NotFound("user", user_id)
        return _to_user(doc)

    async def find_user_by_name(self, name: str) -> User | None:
        doc = await self._users.find_one({"name": name})
        return None if doc is None else _to_user(doc)

    async def create_token(
        self, *, user_id: str, name: str, secret_hash: str, prefix: str, expires_at: datetime | None
    ) -> ApiToken:
        doc: Document = {
            "user_id": user_id,
            "name": name,
            "hash": secret_hash,
            "prefix": prefix,
            "created_at": datetime.now(UTC),
            "expires_at": expires_at,
            "revoked_at": None,
            "last_used_at": None,
        }
        result = await self._tokens.insert_one(doc)
        doc["_id"] = result.inserted_id
        return _to_token(doc)

    async def find_token_by_hash(self, secret_hash: str) -> ApiToken | None:
        doc = await self._tokens.find_one({"hash": secret_hash})
        return None if doc is None else _to_token(doc)

    async def tokens_of(self, user_id: str) -> list[ApiToken]:
        docs = await self._tokens.find({"user_id": user_id}).sort("_id", 1).to_list()
        return [_to_token(d) for d in docs]

    async def revoke_token(self, *, token_id: str, user_id: str) -> ApiToken:
        doc = await self._tokens.find_one({"_id": parse_object_id(token_id, resource="token"), "user_id": user_id})
        if doc is None:
            raise NotFound("token", token_id)
        if doc.get("revoked_at") is None:
            doc["revoked_at"] = datetime.now(UTC)
            await self._tokens.update_one({"_id": doc["_id"]}, {"$set": {"revoked_at": doc["revoked_at"]}})
        return _to_token(doc)

    async def touch_token(self, token_id: str, at: datetime) -> None:
        await self._tokens.update_one(
            {"_id": parse_object_id(token_id, resource="token")}, {"$set": {"last_used_at": at}}
        )
