"""API tokens: random secrets shown once, stored as hashes, expiring and revocable."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.domain.errors import InvalidInput, Issue, NotFound, Unauthenticated
from app.domain.names import check_name
from app.domain.users import ApiToken, Principal, User
from app.repositories.users import UserRepository

TOKEN_PREFIX = "dvcs_"
SHOWN_PREFIX_LENGTH = len(TOKEN_PREFIX) + 6
MAX_TOKEN_DAYS = 3650
# last_used_at is a convenience, not an audit log: writing it once a minute spares a write per request.
TOUCH_EVERY = timedelta(minutes=1)


def hash_secret(secret: str) -> str:
    # Secrets are 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def bearer_secret(authorization: str | None) -> str | None:
    """The secret of an ``Authorization: Bearer <secret>`` header value."""
    if not authorization:
        return None
    scheme, _, secret = authorization.strip().partition(" ")
    return secret.strip() or None if scheme.lower() == "bearer" else None


DEFAULT_MAX_TOKENS_PER_USER = 50


@dataclass(frozen=True, slots=True)
class AuthService:
    users: UserRepository
    max_tokens_per_user: int = DEFAULT_MAX_TOKENS_PER_USER
    """Live (unrevoked, unexpired) tokens one user may hold; creating one more answers ValidationError."""

    async def authenticate(self, secret: str | None) -> Principal:
        if not secret:
            raise Unauthenticated("an API token is required: send 'Authorization: Bearer <token>'")
        token = await self.users.find_token_by_hash(hash_secret(secret))
        now = datetime.now(UTC)
        if token is None or token.revoked_at is not None:
            raise Unauthenticated("the API token is not valid (unknown or revoked)")
        if token.expires_at is not None and token.expires_at <= now:
            raise Unauthenticated("the API token has expired")
        if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
            await self.users.touch_token(token.id, now)
        return Principal(user=await self.users.get_user(token.user_id), token_id=token.id)

    async def create_user(self, name: str) -> User:
        check_name(name, field="name", what="user")
        return await self.users.create_user(name)

    async def user_named(self, name: str) -> User:
        user = await self.users.find_user_by_name(name)
        if user is None:
            raise NotFound("user", name)
        return user

    async def create_token(
        self, *, user_id: str, name: str, expires_in_days: int | None, made_with: str | None = None
    ) -> tuple[ApiToken, str]:
        """The token and its secret: the only time the secret exists outside the caller's hands.

        ``made_with`` is the id of the token the request came with (None from the operator's command line): the new
        token never outlives it, so a short-lived or leaked token cannot mint a longer-lived one.
        """
        if not name.strip() or len(name) > 100 or not name.isprintable():
            message = "a token name is 1-100 printable characters (no NUL or other control characters)"
            raise InvalidInput([Issue(path="name", message=message)])
        if expires_in_days is not None and not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
            raise InvalidInput([Issue(path="expiresInDays", message=f"between 1 and {MAX_TOKEN_DAYS} days")])
        now = datetime.now(UTC)
        existing = await self.users.tokens_of(user_id)
        live = [t for t in existing if t.revoked_at is None and (t.expires_at is None or t.expires_at > now)]
        if len(live) >= self.max_tokens_per_user:
            message = f"a user holds at most {self.max_tokens_per_user} live tokens; revoke one first"
            raise InvalidInput([Issue(path="name", message=message)])
        expires_at = now + timedelta(days=expires_in_days) if expires_in_days else None
        parent = next((t for t in existing if t.id == made_with), None) if made_with else None
        if parent is not None and parent.expires_at is not None:
            expires_at = parent.expires_at if expires_at is None else min(expires_at, parent.expires_at)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = await self.users.create_token(
            user_id=user_id,
            name=name,
            secret_hash=hash_secret(secret),
            prefix=secret[:SHOWN_PREFIX_LENGTH],
            expires_at=expires_at,
        )
        return token, secret

    async def tokens(self, *, user_id: str) -> list[ApiToken]:
        return await self.users.tokens_of(user_id)

    async def revoke(self, *, user_id: str, token_id: str) -> ApiToken:
        return await self.users.revoke_token(token_id=token_id, user_id=user_id)
