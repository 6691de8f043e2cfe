"""The REST API over HTTP (FastAPI's test client), on SQLite and PostgreSQL, S3 on moto's server."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from costalloc_pipeline.buckets import COST_ALLOCATION_TAG
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.naming import bucket_name_for
from costalloc_pipeline.s3 import s3_client
from costalloc_pipeline.schema.repository import cost_allocation, storage_location

COST_ALLOCATION_FIELDS = {"id", "name", "bucket", "projects", "eTag", "createdBy", "createdOn"}


def _count(settings: Settings, table) -> int:
    with engine_for(settings.repository_url).connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_post_creates_the_cost_allocation_and_its_bucket(api: TestClient, entities, settings: Settings) -> None:
    entities.project(10)
    response = api.post("/entity/syn10/costAllocation", json={"name": "  Lab-A "})
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == COST_ALLOCATION_FIELDS
    assert body["name"] == "lab-a"
    assert body["bucket"] == bucket_name_for("test", "lab-a")
    assert body["projects"] == ["syn10"]
    assert body["createdOn"].endswith("Z")
    tags = s3_client(settings).get_bucket_tagging(Bucket=body["bucket"])["TagSet"]
    assert {"Key": COST_ALLOCATION_TAG, "Value": "lab-a"} in tags

    assert api.get("/entity/10/costAllocation").json() == body


def test_post_is_idempotent(api: TestClient, entities) -> None:
    entities.project(10)
    first = api.post("/entity/syn10/costAllocation", json={"name": "lab-a"})
    again = api.post("/entity/syn10/costAllocation", json={"name": "LAB-A"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()  # same eTag: nothing changed


def test_a_second_project_joins_and_changes_the_etag(api: TestClient, entities) -> None:
    entities.project(10)
    entities.project(11)
    first = api.post("/entity/syn10/costAllocation", json={"name": "lab-a"}).json()
    second = api.post("/entity/syn11/costAllocation", json={"name": "lab-a"})
    assert second.status_code == 200
    assert second.json()["projects"] == ["syn10", "syn11"]
    assert second.json()["eTag"] != first["eTag"]
    assert second.json()["id"] == first["id"]


def test_a_project_moved_to_another_allocation_is_reassociated(api: TestClient, entities) -> None:
    entities.project(10)
    entities.project(11)
    lab_a = api.post("/entity/syn10/costAllocation", json={"name": "lab-a"}).json()
    api.post("/entity/syn11/costAllocation", json={"name": "lab-a"})
    lab_b = api.post("/entity/syn10/costAllocation", json={"name": "lab-b"})
    assert lab_b.status_code == 201
    assert lab_b.json()["projects"] == ["syn10"]
    assert api.get("/entity/syn10/costAllocation").json()["name"] == "lab-b"
    lab_a_now = next(ca for ca in api.get("/costAllocation").json()["results"] if ca["name"] == "lab-a")
    assert lab_a_now["projects"] == ["syn11"]
    assert lab_a_now["eTag"] != lab_a["eTag"]


def test_delete_marks_removing_and_upload_goes_back_to_default(api: TestClient, entities, settings: Settings) -> None:
    entities.project(10)
    entities.folder(20, parent_id=10, project_id=10)
    created = api.post("/entity/syn10/costAllocation", json={"name": "lab-a"}).json()
    destination = api.get("/entity/syn20/uploadDestination").json()
    assert destination["bucket"] == created["bucket"]
    assert destination["costAllocation"] == "lab-a"
    assert destination["projectId"] == "syn10"

    assert api.delete("/entity/syn10/costAllocation").status_code == 204
    missing = api.get("/entity/syn10/costAllocation")
    assert missing.status_code == 404
    assert "being removed" in missing.json()["reason"]
    destination = api.get("/entity/syn20/uploadDestination").json()
    assert destination["bucket"] == settings.default_bucket
    assert destination["storageLocationId"] == "1"
    assert destination["costAllocation"] is None
    # Repeating the DELETE while the files move back changes nothing.
    assert api.delete("/entity/syn10/costAllocation").status_code == 204

    listed = api.get("/costAllocation").json()["results"][0]
    assert listed["projects"] == []
    assert listed["eTag"] != created["eTag"]


def test_upload_destination_of_a_project_without_allocation_is_the_default(
    api: TestClient, entities, settings: Settings
) -> None:
    entities.project(10)
    entities.folder(20, parent_id=10, project_id=10)
    entities.file(30, parent_id=20, project_id=10)
    body = api.get("/entity/30/uploadDestination").json()
    assert body["bucket"] == settings.default_bucket
    assert body["storageLocationId"] == "1"
    assert body["entityId"] == "syn30"
    assert body["keyPrefix"].endswith("/")


def test_an_allocation_gets_its_own_storage_location(api: TestClient, entities, settings: Settings) -> None:
    entities.project(10)
    created = api.post("/entity/syn10/costAllocation", json={"name": "lab-a"}).json()
    destination = api.get("/entity/syn10/uploadDestination").json()
    assert destination["storageLocationId"] != "1"
    with engine_for(settings.repository_url).connect() as conn:
        bucket = conn.execute(
            select(storage_location.c.bucket).where(storage_location.c.id == int(destination["storageLocationId"]))
        ).scalar_one()
    assert bucket == created["bucket"]


def test_list_is_paginated_with_an_opaque_token(api: TestClient, entities) -> None:
    for project in range(1, 6):
        entities.project(project)
        assert api.post(f"/entity/{project}/costAllocation", json={"name": f"lab-{project}"}).status_code == 201
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params = {"limit": 2} if token is None else {"limit": 2, "nextPageToken": token}
        page = api.get("/costAllocation", params=params)
        assert page.status_code == 200
        pages += 1
        seen += [ca["name"] for ca in page.json()["results"]]
        token = page.json().get("nextPageToken")
        if token is None:
            break
        assert "lab" not in token and not token.isdigit()
    assert pages == 3
    assert seen == [f"lab-{project}" for project in range(1, 6)]
    assert [ca["name"] for ca in api.get("/costAllocation").json()["results"]] == seen


def test_list_errors(api: TestClient) -> None:
    for params in (
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"nextPageToken": "not-a-token"},
        {"nextPageToken": "YWZ0ZXI6eA"},
    ):
        response = api.get("/costAllocation", params=params)
        assert response.status_code == 400, params
        assert set(response.json()) == {"reason"}
    assert api.get("/costAllocation").json() == {"results": []}


def test_invalid_names_are_a_400_and_write_nothing(api: TestClient, entities, settings: Settings) -> None:
    entities.project(10)
    for body in ({"name": "lab a"}, {"name": ""}, {"name": "x" * 65}, {"name": "lab/a"}, {"name": 3}, {}, ["lab"]):
        response = api.post("/entity/syn10/costAllocation", json=body)
        assert response.status_code == 400, body
        assert response.json()["reason"]
    malformed = api.post("/entity/syn10/costAllocation", content=b"{nope", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    assert _count(settings, cost_allocation) == 0
    assert [bucket["Name"] for bucket in s3_client(settings).list_buckets()["Buckets"]] == [settings.default_bucket]


def test_entity_ids_are_validated(api: TestClient, entities) -> None:
    entities.project(10)
    for entity in ("-1", "abc", "syn", str(2**63), "syn1.5"):
        for method, path in (
            ("GET", f"/entity/{entity}/costAllocation"),
            ("POST", f"/entity/{entity}/costAllocation"),
            ("DELETE", f"/entity/{entity}/costAllocation"),
            ("GET", f"/entity/{entity}/uploadDestination"),
        ):
            response = api.request(method, path, json={"name": "lab"})
            assert response.status_code == 400, (method, path)
            assert "entity id" in response.json()["reason"]


def test_only_projects_can_be_associated(api: TestClient, entities, settings: Settings) -> None:
    entities.project(10)
    entities.folder(20, parent_id=10, project_id=10)
    entities.file(30, parent_id=20, project_id=10)
    for entity in ("syn20", "syn30"):
        response = api.post(f"/entity/{entity}/costAllocation", json={"name": "lab-a"})
        assert response.status_code == 404
        assert "only projects" in response.json()["reason"]
        assert api.get(f"/entity/{entity}/costAllocation").status_code == 404
        assert api.delete(f"/entity/{entity}/costAllocation").status_code == 404
    unknown = api.post("/entity/syn999/costAllocation", json={"name": "lab-a"})
    assert unknown.status_code == 404
    assert "does not exist" in unknown.json()["reason"]
    assert api.get("/entity/syn999/uploadDestination").status_code == 404
    assert _count(settings, cost_allocation) == 0


def test_not_found_cases(api: TestClient, entities) -> None:
    entities.project(10)
    for method in ("GET", "DELETE"):
        response = api.request(method, "/entity/syn10/costAllocation")
        assert response.status_code == 404
        assert response.json() == {"reason": "project syn10 has no cost allocation"}
    assert api.get("/no/such/route").json() == {"reason": "Not Found"}
    assert api.put("/entity/syn10/costAllocation").status_code == 405


def test_unexpected_errors_are_a_bare_500(api: TestClient, entities, settings: Settings) -> None:
    entities.project(10)
    with engine_for(settings.repository_url).begin() as conn:
        conn.execute(text("DROP TABLE cost_allocation_change"))
    response = api.post("/entity/syn10/costAllocation", json={"name": "lab-a"})
    assert response.status_code == 500
    assert response.json() == {"reason": "internal server error"}


def test_a_method_the_path_does_not_take_is_a_405_that_lists_the_ones_it_does(api: TestClient) -> None:
    """RFC 9110: a 405 carries `Allow`, with every method of the path (not only one route's)."""
    for method, path, allowed in [
        ("TRACE", "/entity/syn1/costAllocation", "DELETE, GET, POST"),
        ("PUT", "/entity/syn1/costAllocation", "DELETE, GET, POST"),
        ("POST", "/costAllocation", "GET"),
        ("DELETE", "/entity/1/uploadDestination", "GET"),
    ]:
        response = api.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.headers["Allow"] == allowed
        assert method in response.json()["reason"]
