"""Mutations on the caller's API tokens."""

from __future__ import annotations

from typing import Annotated

import strawberry

from schema.context import Info
from schema.errors import NotFoundError, ValidationError
from schema.users.types import ApiToken, ApiTokenCreated

CreateTokenResult = Annotated[ApiTokenCreated | ValidationError, strawberry.union("CreateTokenResult")]
RevokeTokenResult = Annotated[ApiToken | NotFoundError, strawberry.union("RevokeTokenResult")]


@strawberry.type
class UserMutations:
    @strawberry.mutation(
        description="Create another API token for yourself; its secret is shown only here. It expires no later than "
        "the token you call with, and a user holds a limited number of live tokens."
    )
    async def create_api_token(self, info: Info, name: str, expires_in_days: int | None = None) -> CreateTokenResult:
        principal = info.context.principal
        token, secret = await info.context.services.auth.create_token(
            user_id=info.context.caller,
            name=name,
            expires_in_days=expires_in_days,
            made_with=principal.token_id if principal is not None else None,
        )
        return ApiTokenCreated(token=ApiToken.from_domain(token), secret=secret)

    @strawberry.mutation(description="Revoke one of your API tokens; it stops working at once.")
    async def revoke_api_token(self, info: Info, id: strawberry.ID) -> RevokeTokenResult:
        token = await info.context.services.auth.revoke(user_id=info.context.caller, token_id=id)
        return ApiToken.from_domain(token)
