"""Hostile input to the REST API: generated requests (schemathesis, from the app's own OpenAPI
schema) and hand-picked attacks. Every rejected request must leave the repository and S3 as they
were; no request may cause a 500."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
)
from sqlalchemy import select

from costalloc_pipeline.api import create_app
from costalloc_pipeline.auth import add_member, remove_member
from costalloc_pipeline.bootstrap import ensure_principal
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.naming import MAX_ENTITY_ID
from costalloc_pipeline.s3 import s3_client
from costalloc_pipeline.schema.repository import (
    api_token,
    cost_allocation,
    cost_allocation_change,
    cost_allocation_project,
    files,
    storage_location,
    team_member,
)
from costalloc_pipeline.tokens import issue_token

PROJECT, FOLDER = 10, 11
# What the app answers besides its documented 200s: {"reason": ...} with one of these statuses.
ERROR_STATUSES = {400, 401, 403, 404, 409, 503}
EXAMPLES_PER_OPERATION = 25
WATCHED_TABLES = (
    cost_allocation,
    cost_allocation_project,
    cost_allocation_change,
    storage_location,
    team_member,
    files,
)


class Watched:
    """Everything a request could change: the association tables, members, tokens, buckets."""

    def __init__(self, settings: Settings) -> None:
        self.engine = engine_for(settings.repository_url)
        self.s3 = s3_client(settings)

    def state(self) -> tuple[Any, ...]:
        with self.engine.connect() as conn:
            rows = tuple(tuple(map(tuple, conn.execute(select(table)).all())) for table in WATCHED_TABLES)
            tokens = conn.execute(select(api_token.c.id, api_token.c.revoked)).all()
        buckets = sorted(b["Name"] for b in self.s3.list_buckets()["Buckets"])
        return rows, tuple(map(tuple, tokens)), tuple(buckets)


@pytest.fixture
def hostile(settings: Settings, admin_token: str, entities) -> dict[str, Any]:
    entities.project(PROJECT)
    entities.folder(FOLDER, PROJECT, PROJECT)
    return {"settings": settings, "token": admin_token}


@pytest.fixture
def watched(hostile: dict[str, Any]) -> Watched:
    return Watched(hostile["settings"])


@pytest.fixture
def client(hostile: dict[str, Any]) -> Iterator[TestClient]:
    with TestClient(create_app(hostile["settings"]), raise_server_exceptions=False) as running:
        yield running


def authorised(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_reason(response: Any, status: int, case: object = None) -> None:
    assert response.status_code == status, (case, response.text)
    body = response.json()
    assert set(body) == {"reason"} and isinstance(body["reason"], str) and body["reason"]


# --- generated requests ---------------------------------------------------------------------------


def error_bodies_are_reasons(response: Any) -> None:
    if response.status_code >= 300:
        assert response.status_code in ERROR_STATUSES, f"unexpected status {response.status_code}: {response.text}"
        body = json.loads(response.content)
        assert set(body) == {"reason"} and isinstance(body["reason"], str), response.text


def test_generated_requests(hostile: dict[str, Any], watched: Watched) -> None:
    settings, token = hostile["settings"], hostile["token"]
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance, negative_data_rejection]
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 7

    def explore(operation: schemathesis.APIOperation, mode: schemathesis.GenerationMode) -> None:
        # One call per operation and mode, so `request` closes over its own pair, not the loop's.
        try:

            @hypothesis.given(case=operation.as_strategy(generation_mode=mode), with_token=st.booleans())
            @hypothesis.settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(hypothesis.HealthCheck),
            )
            def request(case: schemathesis.Case, with_token: bool) -> None:
                headers = authorised(token) if with_token else None
                before = watched.state()
                response = case.call(headers=headers)
                try:
                    case.validate_response(response, checks=checks, headers=headers)
                    error_bodies_are_reasons(response)
                    if response.status_code >= 300:
                        assert watched.state() == before, "a rejected request changed something"
                except (FailureGroup, AssertionError) as failure:
                    failures.append(f"{operation.label} ({mode.value}): {failure}")

            request()
        except hypothesis.errors.Unsatisfiable:
            # Nothing in this operation can be made schema-invalid (a free-form path string).
            assert mode is schemathesis.GenerationMode.NEGATIVE

    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            explore(operation, mode)
    assert not failures, "\n\n".join(failures[:5])


# --- hand-picked attacks (each list in one test: every case needs a bootstrapped stack) ----------

PATH_TRICKS = ["../default", "a/../../b", "a/b", "..\\x", "%2e%2e%2fx", "x?name=y", "x#y", "~root", "a b"]
UNICODE = [
    "naïve",
    "ｆｕｌｌｗｉｄｔｈ",
    "straße",
    "İstanbul",
    "a\u200bb",
    "emoji-🙂",
    "rtl-\u202eevil",
    "a\x00b",
    "\ud800",
]
SQL = ["x'; DROP TABLE files; --", "1 OR 1=1", 'name"--', "a;b", "$$", "%"]
LONG = ["a" * 65, "a" * 10_000, " " * 300, ""]
NOT_STRINGS: list[Any] = [None, 12, 1.5, True, [], {}, ["a"], {"name": "x"}]


def test_hostile_names_are_refused_and_change_nothing(hostile, client, watched):
    before = watched.state()
    for name in PATH_TRICKS + UNICODE + SQL + LONG + NOT_STRINGS:
        body = json.dumps({"name": name}, ensure_ascii=False).encode("utf-8", "surrogatepass")
        response = client.post(
            f"/entity/syn{PROJECT}/costAllocation",
            content=body,
            headers={**authorised(hostile["token"]), "Content-Type": "application/json"},
        )
        assert_reason(response, 400, name)
    assert watched.state() == before


def test_the_longest_name_is_accepted_and_dots_stay_inside_the_stack(hostile, client):
    headers = authorised(hostile["token"])
    assert (
        client.post(f"/entity/syn{PROJECT}/costAllocation", json={"name": "a" * 64}, headers=headers).status_code == 201
    )
    dots = client.post(f"/entity/syn{PROJECT}/costAllocation", json={"name": ".."}, headers=headers)
    assert dots.status_code == 201
    assert dots.json()["bucket"].startswith("test-ca-") and ".." not in dots.json()["bucket"]


MALFORMED_BODIES = [
    b"",
    b"{",
    b"[]",
    b'"name"',
    b"null",
    b'{"nom": "x"}',
    b"\xff\xfe",
    b"{" * 100_000,
    # These two made the API answer 500 (RecursionError, and ValueError past 4300 digits).
    b"[" * 100_000,
    b'{"name": 1' + b"1" * 5000 + b"}",
]


def test_malformed_bodies_are_refused_and_change_nothing(hostile, client, watched):
    before = watched.state()
    for body in MALFORMED_BODIES:
        response = client.post(
            f"/entity/syn{PROJECT}/costAllocation",
            content=body,
            headers={**authorised(hostile["token"]), "Content-Type": "application/json"},
        )
        assert_reason(response, 400, body[:20])
    assert watched.state() == before


HOSTILE_ENTITY_IDS = [
    "0",
    "-1",
    "syn-1",
    str(MAX_ENTITY_ID + 1),
    str(2**63),
    "syn" + "9" * 41,
    "1e3",
    "0x10",
    "syn10 OR 1=1",
    "10;DROP TABLE node",
    "١٠",
    "syn%00",
]


def test_entity_ids_out_of_range_or_forged_change_nothing(hostile, client, watched):
    headers = authorised(hostile["token"])
    before = watched.state()
    for entity in HOSTILE_ENTITY_IDS:
        for method in ("GET", "POST", "DELETE"):
            response = client.request(method, f"/entity/{entity}/costAllocation", headers=headers, json={"name": "lab"})
            assert_reason(response, 400, (method, entity))
        assert_reason(client.get(f"/entity/{entity}/uploadDestination", headers=headers), 400, entity)
    # The largest id the API takes is well-formed, and unknown.
    for method in ("GET", "POST", "DELETE"):
        response = client.request(
            method, f"/entity/{MAX_ENTITY_ID}/costAllocation", headers=headers, json={"name": "lab"}
        )
        assert_reason(response, 404, method)
    # Only projects have a cost allocation.
    for method in ("GET", "POST", "DELETE"):
        response = client.request(method, f"/entity/syn{FOLDER}/costAllocation", headers=headers, json={"name": "lab"})
        assert_reason(response, 404, method)
    assert watched.state() == before


HOSTILE_LISTINGS = [
    "limit=0",
    "limit=101",
    "limit=-5",
    "limit=1e9",
    f"limit={2**70}",
    "limit=abc",
    "nextPageToken=x",
    "nextPageToken=' OR 1=1 --",
    "nextPageToken=",
    "nextPageToken=gAAAAAAAAAA",
    "nextPageToken=AAAAAAAAAAAA",
    "nextPageToken=AAAAAAAAAA%3D",
    "limit=5&limt=2",
]


def test_listing_with_hostile_parameters(hostile, client):
    for query in HOSTILE_LISTINGS:
        assert_reason(client.get(f"/costAllocation?{query}", headers=authorised(hostile["token"])), 400, query)


def _latest_token(conn: Any, **values: Any) -> None:
    latest = select(api_token.c.id).order_by(api_token.c.id.desc()).limit(1).scalar_subquery()
    conn.execute(api_token.update().where(api_token.c.id == latest).values(**values))


def forged_tokens(settings: Settings, admin_token: str) -> dict[str, str]:
    """Tokens that must not open the API, by what is wrong with them."""
    with engine_for(settings.repository_url).begin() as conn:
        outsider = issue_token(conn, ensure_principal(conn, "mallory"))
        expired = add_member(conn, "bob")
        _latest_token(conn, expires_on=dt.datetime(2000, 1, 1))
        revoked = add_member(conn, "carol")
        _latest_token(conn, revoked=True)
    return {
        "random": "cat_" + "A" * 43,
        "admin token, one character off": admin_token[:-1] + ("A" if admin_token[-1] != "A" else "B"),
        "admin token with a suffix": admin_token + "x",
        "admin token's hash": hashlib.sha256(admin_token.encode()).hexdigest(),
        "SQL": "' OR '1'='1",
        "very long": "cat_" + "x" * 100_000,
        "unicode": "cat_ünïcödé",
        "expired": expired,
        "revoked": revoked,
        "of a principal outside the team": outsider,
    }


def test_forged_expired_and_foreign_tokens_change_nothing(hostile, client, watched):
    tokens = forged_tokens(hostile["settings"], hostile["token"])
    before = watched.state()
    calls = [
        ("GET", "/costAllocation"),
        ("POST", f"/entity/syn{PROJECT}/costAllocation"),
        ("DELETE", f"/entity/syn{PROJECT}/costAllocation"),
        ("GET", f"/entity/syn{PROJECT}/uploadDestination"),
    ]
    for scheme in ("Bearer", "bearer", "Basic", "Token", ""):
        for what, token in tokens.items():
            header = f"{scheme} {token}".strip().encode("utf-8")
            # A valid token of someone outside the team is known but not allowed: 403; the rest, 401.
            expected = 403 if what == "of a principal outside the team" and scheme.lower() == "bearer" else 401
            for method, path in calls:
                response = client.request(method, path, headers={"Authorization": header}, json={"name": "stolen"})
                assert_reason(response, expected, (scheme, what, method, path))
    assert watched.state() == before


def test_a_removed_member_loses_access_at_once(hostile, client, watched):
    engine = engine_for(hostile["settings"].repository_url)
    with engine.begin() as conn:
        token = add_member(conn, "dave")
    assert client.get("/costAllocation", headers=authorised(token)).status_code == 200
    with engine.begin() as conn:
        remove_member(conn, "dave")
    before = watched.state()
    assert_reason(
        client.post(f"/entity/syn{PROJECT}/costAllocation", json={"name": "lab"}, headers=authorised(token)), 403
    )
    assert_reason(client.get("/costAllocation", headers=authorised(token)), 403)
    assert watched.state() == before
