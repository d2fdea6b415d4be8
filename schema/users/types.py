"""GraphQL types of users and API tokens."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.domain.users import ApiToken as DomainApiToken
from app.domain.users import User as DomainUser


@strawberry.type(description="A user of the service.")
class User:
    id: strawberry.ID = strawberry.field(description="The user's id.")
    name: str = strawberry.field(description="Unique user name.")
    created_at: datetime = strawberry.field(description="When the user was created (UTC).")

    @classmethod
    def from_domain(cls, user: DomainUser) -> User:
        return cls(id=strawberry.ID(user.id), name=user.name, created_at=user.created_at)


@strawberry.type(description="An API token. Its secret is shown once, when it is created, and never stored.")
class ApiToken:
    id: strawberry.ID = strawberry.field(description="The token's id (not its secret).")
    name: str = strawberry.field(description="What it is for.")
    prefix: str = strawberry.field(description="The first characters of its secret, to tell tokens apart.")
    created_at: datetime = strawberry.field(description="When it was created (UTC).")
    expires_at: datetime | None = strawberry.field(description="When it stops working, if ever.")
    revoked_at: datetime | None = strawberry.field(description="When it was revoked, if it was.")
    last_used_at: datetime | None = strawberry.field(description="Last use, to the minute.")

    @classmethod
    def from_domain(cls, token: DomainApiToken) -> ApiToken:
        return cls(
            id=strawberry.ID(token.id),
            name=token.name,
            prefix=token.prefix,
            created_at=token.created_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
            last_used_at=token.last_used_at,
        )


@strawberry.type(description="A new token; copy `secret` now: it is not shown again.")
class ApiTokenCreated:
    token: ApiToken = strawberry.field(description="The token.")
    secret: str = strawberry.field(description="Send it as 'Authorization: Bearer <secret>'.")
