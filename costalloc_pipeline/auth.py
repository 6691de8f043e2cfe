"""Who may call the service: members of the Cost Allocation Team, holding a valid API token.

Membership is read from the database on every request, so removing a member takes effect at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, and_, delete, select

from costalloc_pipeline.bootstrap import (
    ADMIN_USER,
    add_team_member,
    ensure_principal,
    team_id,
)
from costalloc_pipeline.db import utcnow
from costalloc_pipeline.errors import BadRequest, Forbidden, NotFound, Unauthorized
from costalloc_pipeline.schema.repository import (
    COST_ALLOCATION_TEAM,
    api_token,
    principal,
    team,
    team_member,
)
from costalloc_pipeline.tokens import hash_token, issue_token

BEARER = "bearer"
MAX_USER_NAME_LENGTH = 100  # principal.user_name is VARCHAR(100)


@dataclass(frozen=True)
class Caller:
    principal_id: int
    user_name: str


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header."""
    if not authorization or not authorization.strip():
        raise Unauthorized("missing Authorization header; send 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != BEARER or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def authenticate(conn: Connection, authorization: str | None) -> Caller:
    """401 for a missing, unknown, revoked or expired token; 403 for a caller outside the team."""
    token = bearer_token(authorization)
    row = conn.execute(
        select(principal.c.id, principal.c.user_name, api_token.c.revoked, api_token.c.expires_on)
        .join(principal, principal.c.id == api_token.c.principal_id)
        .where(api_token.c.token_hash == hash_token(token))
    ).first()
    if row is None:
        raise Unauthorized("invalid token")
    if row.revoked:
        raise Unauthorized("token has been revoked")
    if row.expires_on is not None and row.expires_on <= utcnow():
        raise Unauthorized("token has expired")
    member = conn.execute(
        select(team_member.c.principal_id).where(
            and_(team_member.c.team_id == team_id(conn), team_member.c.principal_id == row.id)
        )
    ).first()
    if member is None:
        raise Forbidden(f"user {row.user_name} is not a member of the Cost Allocation Team")
    return Caller(principal_id=row.id, user_name=row.user_name)


def _user_name(raw: str) -> str:
    user_name = raw.strip()
    if not user_name or len(user_name) > MAX_USER_NAME_LENGTH:
        raise BadRequest(f"user name must be 1 to {MAX_USER_NAME_LENGTH} characters")
    return user_name


def _require_team(conn: Connection) -> None:
    if conn.execute(select(team.c.id).where(team.c.name == COST_ALLOCATION_TEAM)).first() is None:
        raise NotFound("this stack is not initialised; run `costalloc init` first")


def add_member(conn: Connection, user_name: str) -> str:
    """Adds the user to the team (creating the principal if needed) and returns a new token for it.
    The token is shown once: only its hash is stored."""
    _require_team(conn)
    principal_id = ensure_principal(conn, _user_name(user_name))
    add_team_member(conn, principal_id)
    return issue_token(conn, principal_id)


def remove_member(conn: Connection, user_name: str) -> None:
    """Their tokens stay valid for who they are, but every call is refused (403) from now on."""
    user_name = _user_name(user_name)
    if user_name == ADMIN_USER:
        raise BadRequest(f"{ADMIN_USER} is the bootstrap administrator and stays in the team")
    _require_team(conn)
    principal_id = conn.execute(select(principal.c.id).where(principal.c.user_name == user_name)).scalar()
    removed = 0
    if principal_id is not None:
        removed = conn.execute(
            delete(team_member).where(
                and_(team_member.c.team_id == team_id(conn), team_member.c.principal_id == principal_id)
            )
        ).rowcount
    if not removed:
        raise NotFound(f"user {user_name} is not a member of the Cost Allocation Team")


def admin_caller(conn: Connection) -> Caller:
    """The bootstrap administrator, as whom the CLI acts."""
    principal_id = conn.execute(select(principal.c.id).where(principal.c.user_name == ADMIN_USER)).scalar()
    if principal_id is None:
        raise NotFound("this stack is not initialised; run `costalloc init` first")
    return Caller(principal_id=principal_id, user_name=ADMIN_USER)
