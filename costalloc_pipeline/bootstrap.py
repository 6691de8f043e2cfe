"""First start of a stack: schema, default storage location, the Cost Allocation Team and its admin."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, text

from costalloc_pipeline.buckets import DEFAULT_BUCKET_TAG_VALUE, provision_bucket
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for, insert_id, utcnow
from costalloc_pipeline.s3 import s3_client
from costalloc_pipeline.schema.migrate import upgrade_all
from costalloc_pipeline.schema.repository import (
    COST_ALLOCATION_TEAM,
    DEFAULT_STORAGE_LOCATION_ID,
    principal,
    storage_location,
    team,
    team_member,
)
from costalloc_pipeline.tokens import issue_token

ADMIN_USER = "costalloc-admin"


@dataclass(frozen=True)
class BootstrapResult:
    admin_user: str
    # None when the stack was already bootstrapped: tokens are shown only once.
    admin_token: str | None


def ensure_principal(conn: Connection, user_name: str) -> int:
    # The tables' columns are untyped (Any): the annotations state what the id columns hold.
    found: int | None = conn.execute(select(principal.c.id).where(principal.c.user_name == user_name)).scalar()
    if found is not None:
        return found
    principal_id = insert_id(
        conn,
        insert(principal).values(user_name=user_name, created_on=utcnow()),
    )
    return principal_id


def team_id(conn: Connection) -> int:
    found: int = conn.execute(select(team.c.id).where(team.c.name == COST_ALLOCATION_TEAM)).scalar_one()
    return found


def add_team_member(conn: Connection, principal_id: int) -> None:
    tid = team_id(conn)
    exists = conn.execute(
        select(team_member.c.principal_id).where(
            team_member.c.team_id == tid, team_member.c.principal_id == principal_id
        )
    ).first()
    if exists is None:
        conn.execute(insert(team_member).values(team_id=tid, principal_id=principal_id, added_on=utcnow()))


def bootstrap(settings: Settings) -> BootstrapResult:
    """Idempotent: migrates, provisions the default bucket, then creates whatever of the bootstrap
    rows is missing."""
    upgrade_all(settings.repository_url, settings.replica_url)
    # Before any row: the default bucket needs the same archive lifecycle as every managed bucket,
    # and a refusal from S3 leaves the stack uninitialised rather than half set up.
    provision_bucket(s3_client(settings), settings.default_bucket, DEFAULT_BUCKET_TAG_VALUE, settings)
    with engine_for(settings.repository_url).begin() as conn:
        if (
            conn.execute(
                select(storage_location.c.id).where(storage_location.c.id == DEFAULT_STORAGE_LOCATION_ID)
            ).first()
            is None
        ):
            conn.execute(
                insert(storage_location).values(
                    id=DEFAULT_STORAGE_LOCATION_ID,
                    bucket=settings.default_bucket,
                    upload_type="S3",
                    description="default repository bucket",
                    created_on=utcnow(),
                )
            )
            if conn.dialect.name == "postgresql":
                # An explicit id does not advance the serial sequence; later locations must not reuse 1.
                conn.execute(
                    text(
                        "SELECT setval(pg_get_serial_sequence('storage_location', 'id'), "
                        "(SELECT max(id) FROM storage_location))"
                    )
                )
        if conn.execute(select(team.c.id).where(team.c.name == COST_ALLOCATION_TEAM)).first() is None:
            conn.execute(insert(team).values(name=COST_ALLOCATION_TEAM, created_on=utcnow()))
        admin_exists = conn.execute(select(principal.c.id).where(principal.c.user_name == ADMIN_USER)).first()
        if admin_exists is not None:
            return BootstrapResult(ADMIN_USER, None)
        admin_id = ensure_principal(conn, ADMIN_USER)
        add_team_member(conn, admin_id)
        return BootstrapResult(ADMIN_USER, issue_token(conn, admin_id))
