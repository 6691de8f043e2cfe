"""`costalloc init` and `costalloc team ...`: setting a stack up and managing who may use it."""

from __future__ import annotations

import argparse

from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from costalloc_pipeline.auth import add_member, remove_member
from costalloc_pipeline.bootstrap import bootstrap
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.errors import NotFound
from costalloc_pipeline.runtime import resolve_settings


def require_initialised(settings: Settings) -> None:
    """Commands other than init need its tables; say so instead of failing on a missing table."""
    if not inspect(engine_for(settings.repository_url)).has_table("team"):
        raise NotFound("this stack is not initialised; run `costalloc init` first")


def run_init(_args: argparse.Namespace) -> int:
    settings = resolve_settings()
    result = bootstrap(settings)
    print(f"repository database: {make_url(settings.repository_url).render_as_string(hide_password=True)}")
    print(f"S3 endpoint: {settings.s3_endpoint_url}")
    print(f"default bucket: {settings.default_bucket}")
    if result.admin_token is None:
        print("already initialised: the admin token was shown by the first `costalloc init`")
        return 0
    print(f"admin user: {result.admin_user}")
    print(f"admin token (shown once, only its hash is stored): {result.admin_token}")
    return 0


def run_add_member(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    require_initialised(settings)
    with engine_for(settings.repository_url).begin() as conn:
        token = add_member(conn, args.user)
    print(f"{args.user.strip()} is a member of the Cost Allocation Team")
    print(f"token (shown once, only its hash is stored): {token}")
    return 0


def run_remove_member(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    require_initialised(settings)
    with engine_for(settings.repository_url).begin() as conn:
        remove_member(conn, args.user)
    print(f"{args.user.strip()} is no longer a member of the Cost Allocation Team; their calls are refused")
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    init = commands.add_parser(
        "init",
        help="create the schema, the default bucket and the Cost Allocation Team; print the admin token",
        description=(
            "Migrates both databases, provisions the default bucket, creates the Cost Allocation Team "
            "and its administrator, and prints the administrator's API token (first run only). "
            "Starts the embedded S3 when COSTALLOC_S3_ENDPOINT_URL is not set. Safe to run again."
        ),
    )
    init.set_defaults(handler=run_init)

    team = commands.add_parser(
        "team", help="manage the Cost Allocation Team", description="Members of the team may call the API."
    )
    actions = team.add_subparsers(dest="team_command", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add-member",
        help="add a user to the team and print a new API token for it",
        description="Adds USER (created if unknown) to the Cost Allocation Team and prints a new token for it.",
    )
    add.add_argument("user", metavar="USER", help="user name")
    add.set_defaults(handler=run_add_member)
    remove = actions.add_parser(
        "remove-member",
        help="remove a user from the team; its calls are refused at once",
        description="Removes USER from the Cost Allocation Team: every later call with its tokens is a 403.",
    )
    remove.add_argument("user", metavar="USER", help="user name")
    remove.set_defaults(handler=run_remove_member)
