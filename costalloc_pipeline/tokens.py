"""API tokens: random, shown once, stored as a SHA-256 hash."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import Connection, insert

from costalloc_pipeline.db import utcnow
from costalloc_pipeline.schema.repository import api_token

TOKEN_PREFIX = "cat_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(conn: Connection, principal_id: int, valid_for: dt.timedelta | None = None) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    conn.execute(
        insert(api_token).values(
            principal_id=principal_id,
            token_hash=hash_token(token),
            created_on=now,
            expires_on=now + valid_for if valid_for else None,
            revoked=False,
        )
    )
    return token
