"""Queries about the caller."""

from __future__ import annotations

import strawberry

from schema.context import Info
from schema.users.types import ApiToken, User


@strawberry.type
class UserQueries:
    @strawberry.field(description="The user whose token made this request.")
    async def me(self, info: Info) -> User:
        principal = info.context.principal
        assert principal is not None  # the auth middleware lets no anonymous request through
        return User.from_domain(principal.user)

    @strawberry.field(description="Your API tokens (without their secrets).")
    async def api_tokens(self, info: Info) -> list[ApiToken]:
        tokens = await info.context.services.auth.tokens(user_id=info.context.caller)
        return [ApiToken.from_domain(t) for t in tokens]
