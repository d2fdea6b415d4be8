"""``python -m app``: administration from the command line.

    python -m app create-user NAME [--token-name NAME] [--expires-days N]
    python -m app create-token USER [--token-name NAME] [--expires-days N]

Each prints a new API token's secret once; it is stored only as a hash.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from app.db import create_client, ensure_indexes
from app.domain.errors import DomainError
from app.repositories.users import UserRepository
from app.services.auth import AuthService
from app.settings import Settings


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
    return parser.parse_args(argv)


async def run(arguments: argparse.Namespace, settings: Settings) -> str:
    client = create_client(settings.mongodb_url)
    try:
        db = client[settings.mongodb_database]
        await ensure_indexes(db)
        auth = AuthService(users=UserRepository(db))
        if arguments.command == "create-user":
            user = await auth.create_user(arguments.name)
        else:
            user = await auth.user_named(arguments.name)
        _, secret = await auth.create_token(
            user_id=user.id, name=arguments.token_name, expires_in_days=arguments.expires_days
        )
        return secret
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    arguments = parse(sys.argv[1:] if argv is None else argv)
    try:
        secret = asyncio.run(run(arguments, Settings.from_env()))
    except DomainError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    print(secret)
    print("Keep this token secret: it is shown only now. Send it as 'Authorization: Bearer <token>'.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
