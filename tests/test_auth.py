"""Only members of the Cost Allocation Team get in: 401 without a valid token, 403 outside the team."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from costalloc_pipeline.api import create_app
from costalloc_pipeline.auth import add_member, bearer_token, remove_member
from costalloc_pipeline.bootstrap import ADMIN_USER, ensure_principal
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for, utcnow
from costalloc_pipeline.errors import BadRequest, NotFound, Unauthorized
from costalloc_pipeline.schema.repository import api_token
from costalloc_pipeline.tokens import hash_token, issue_token

ENDPOINTS = [
    ("GET", "/costAllocation"),
    ("GET", "/entity/syn10/costAllocation"),
    ("POST", "/entity/syn10/costAllocation"),
    ("DELETE", "/entity/syn10/costAllocation"),
    ("GET", "/entity/syn10/uploadDestination"),
]


@pytest.fixture
def anonymous(settings: Settings, admin_token: str) -> TestClient:
    return TestClient(create_app(settings), raise_server_exceptions=False)


def _call(client: TestClient, method: str, path: str, token: str | None = None, header: str | None = None):
    headers = {}
    if header is not None:
        headers["Authorization"] = header
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.request(method, path, headers=headers, json={"name": "lab-a"})


def test_every_endpoint_needs_a_token(anonymous: TestClient, settings: Settings) -> None:
    with engine_for(settings.repository_url).begin() as conn:
        outsider = issue_token(conn, ensure_principal(conn, "outsider"))
    for method, path in ENDPOINTS:
        missing = _call(anonymous, method, path)
        assert missing.status_code == 401, (method, path)
        assert "Authorization" in missing.json()["reason"]
        assert _call(anonymous, method, path, header="Basic abc").status_code == 401
        assert _call(anonymous, method, path, token="cat_not-a-real-token").status_code == 401
        forbidden = _call(anonymous, method, path, token=outsider)
        assert forbidden.status_code == 403, (method, path)
        assert forbidden.json() == {"reason": "user outsider is not a member of the Cost Allocation Team"}


def test_authentication_comes_before_input_checks(anonymous: TestClient) -> None:
    response = anonymous.post("/entity/not-an-id/costAllocation", content=b"{broken")
    assert response.status_code == 401
    assert anonymous.get("/costAllocation", params={"limit": "x"}).status_code == 401


def test_a_new_member_gets_in_and_a_removed_one_is_refused_at_once(
    anonymous: TestClient, settings: Settings, entities
) -> None:
    entities.project(10)
    with engine_for(settings.repository_url).begin() as conn:
        token = add_member(conn, "alice")
    assert _call(anonymous, "GET", "/costAllocation", token=token).status_code == 200
    created = _call(anonymous, "POST", "/entity/syn10/costAllocation", token=token)
    assert created.status_code == 201
    assert created.json()["createdBy"] != ""

    with engine_for(settings.repository_url).begin() as conn:
        remove_member(conn, "alice")
    assert _call(anonymous, "GET", "/costAllocation", token=token).status_code == 403


def test_revoked_and_expired_tokens_are_refused(anonymous: TestClient, settings: Settings) -> None:
    with engine_for(settings.repository_url).begin() as conn:
        revoked = add_member(conn, "bob")
        conn.execute(update(api_token).where(api_token.c.token_hash == hash_token(revoked)).values(revoked=True))
        expired = add_member(conn, "carol")
        conn.execute(
            update(api_token)
            .where(api_token.c.token_hash == hash_token(expired))
            .values(expires_on=utcnow() - dt.timedelta(seconds=1))
        )
        valid_for_a_while = issue_token(conn, ensure_principal(conn, "carol"), dt.timedelta(hours=1))
    assert _call(anonymous, "GET", "/costAllocation", token=revoked).json() == {"reason": "token has been revoked"}
    assert _call(anonymous, "GET", "/costAllocation", token=expired).json() == {"reason": "token has expired"}
    assert _call(anonymous, "GET", "/costAllocation", token=expired).status_code == 401
    assert _call(anonymous, "GET", "/costAllocation", token=valid_for_a_while).status_code == 200


def test_tokens_are_stored_hashed(settings: Settings, admin_token: str) -> None:
    with engine_for(settings.repository_url).begin() as conn:
        token = add_member(conn, "dave")
        stored = conn.execute(select(api_token.c.token_hash)).scalars().all()
    assert hash_token(token) in stored and hash_token(admin_token) in stored
    assert not any(token in value or admin_token in value for value in stored)


def test_member_management_errors(settings: Settings, admin_token: str) -> None:
    with engine_for(settings.repository_url).begin() as conn:
        with pytest.raises(NotFound, match="not a member"):
            remove_member(conn, "nobody")
        with pytest.raises(BadRequest, match="stays in the team"):
            remove_member(conn, ADMIN_USER)
        with pytest.raises(BadRequest, match="user name"):
            add_member(conn, "  ")


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Token abc", "abc"])
def test_malformed_authorization_headers(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        bearer_token(header)


def test_bearer_scheme_is_case_insensitive() -> None:
    assert bearer_token("bearer  cat_x ") == "cat_x"
