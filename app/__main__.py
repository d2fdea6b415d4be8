"""``python -m app``: administration from the command line.

    python -m app create-user NAME [--token-name NAME] [--expires-days N]
    python -m app create-token USER [--token-name NAME] [--expires-days N]
    python -m app ensure-admin [--graphiql-url URL]

create-user and create-token print a new API token's secret once; it is stored only as a hash. ensure-admin
(run by ``make run``) creates a local user ``admin`` and prints its token, but only while no user exists.
With ``make run`` going, the database's URL comes from .data/services.env (see app/settings.py).
Every failure is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import urllib.parse

from pymongo.errors import ConnectionFailure, PyMongoError

from app.db import Database, create_client, ensure_indexes
from app.domain.errors import DomainError
from app.repositories.users import UserRepository
from app.services.auth import AuthService
from app.settings import SERVICES_FILE, InvalidSettings, Settings

ADMIN_NAME = "admin"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app", description="Administer the DVC pipelines service.")
    commands = parser.add_subparsers(dest="command", required=True)
    create_user = commands.add_parser("create-user", help="create a user and their first API token")
    create_user.add_argument("name")
    create_token = commands.add_parser("create-token", help="create another API token for a user")
    create_token.add_argument("name", help="the user's name")
    for command in (create_user, create_token):
        command.add_argument("--token-name", default="cli", help="what the token is for")
        command.add_argument("--expires-days", type=int, default=None, help="days until it expires (default: never)")
    ensure_admin = commands.add_parser(
        "ensure-admin", help=f"on an empty database, create the user {ADMIN_NAME!r} and print its token"
    )
    ensure_admin.add_argument("--graphiql-url", default="http://127.0.0.1:8000/graphql", help="named in the hint")
    return parser.parse_args(argv)


async def run(arguments: argparse.Namespace, settings: Settings) -> str:
    """What the command prints on stdout."""
    client = create_client(settings.mongodb_url)
    try:
        db = client[settings.mongodb_database]
        await ensure_indexes(db)
        auth = AuthService(users=UserRepository(db))
        if arguments.command == "ensure-admin":
            return await ensure_admin(db, auth, arguments.graphiql_url)
        if arguments.command == "create-user":
            user = await auth.create_user(arguments.name)
        else:
            user = await auth.user_named(arguments.name)
        _, secret = await auth.create_token(
            user_id=user.id, name=arguments.token_name, expires_in_days=arguments.expires_days
        )
        print(
            "Keep this token secret: it is shown only now. Send it as 'Authorization: Bearer <token>'.",
            file=sys.stderr,
        )
        return secret
    finally:
        await client.close()


async def ensure_admin(db: Database, auth: AuthService, graphiql_url: str) -> str:
    # Only "is there anyone at all": a first-start question no repository method asks.
    if await db.users.find_one({}, projection={"_id": 1}) is not None:
        return (
            "Users exist already, so no admin was created. A new token for one of them:\n"
            "    .venv/bin/python -m app create-token NAME"
        )
    user = await auth.create_user(ADMIN_NAME)
    _, secret = await auth.create_token(user_id=user.id, name="make run (first start)", expires_in_days=None)
    headers = json.dumps({"Authorization": f"Bearer {secret}"})
    prefilled = f"{graphiql_url}?{urllib.parse.urlencode({'headers': headers})}"
    return (
        f"First start on an empty database: created the local user {ADMIN_NAME!r}. Its API token, shown only now:\n"
        f"    {secret}\n"
        f"GraphiQL with the token already in its Headers tab:\n"
        f"    {prefilled}\n"
        f"(or open {graphiql_url} and put {headers} in the Headers tab)"
    )


def unreachable(settings: Settings, error: PyMongoError) -> str:
    where = urllib.parse.urlsplit(settings.mongodb_url)
    address = where.hostname or settings.mongodb_url
    if where.port:
        address = f"{address}:{where.port}"
    if isinstance(error, ConnectionFailure):
        reason = "no server answered"
    else:
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
    hint = (
        f"is 'make run' still going? (it wrote {SERVICES_FILE.name})"
        if SERVICES_FILE.exists()
        else "start the local stack with 'make run', or set MONGODB_URL to your MongoDB"
    )
    return f"error: cannot use the database (MongoDB at {address}): {reason}; {hint}"


def main(argv: list[str] | None = None) -> int:
    arguments = parse(sys.argv[1:] if argv is None else argv)
    try:
        settings = Settings.from_env()
    except InvalidSettings as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    try:
        output = asyncio.run(run(arguments, settings))
    except DomainError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    except PyMongoError as error:
        print(unreachable(settings, error), file=sys.stderr)
        return 1
    print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
