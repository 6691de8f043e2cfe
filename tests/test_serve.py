"""The real thing: `costalloc init`, then `costalloc serve` in its own process, called over a socket."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from helpers.serving import init, run_costalloc, serving

from costalloc_pipeline.config import Settings


def _environment(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "COSTALLOC_DATA_DIR": str(settings.data_dir),
        "COSTALLOC_REPOSITORY_URL": settings.repository_url,
        "COSTALLOC_REPLICA_URL": settings.replica_url,
        "COSTALLOC_S3_ENDPOINT_URL": str(settings.s3_endpoint_url),
        "COSTALLOC_STACK": settings.stack,
    }


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[str, str, subprocess.Popen]]:
    """(base URL, admin token, server process) of a freshly initialised stack."""
    environment = _environment(settings)
    token = init(environment)
    with serving(environment) as (base, process):
        yield base, token, process


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_new_user_manages_cost_allocations_over_http(served, settings: Settings, entities) -> None:
    base, admin_token, process = served
    for project in (1, 2, 3, 5):
        entities.project(project)
    entities.folder(4, parent_id=1, project_id=1)
    member = run_costalloc(["team", "add-member", "alice"], _environment(settings), timeout=60)
    alice_token = member.strip().rsplit(" ", 1)[1]

    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {alice_token}"}, timeout=30) as alice:
        assert alice.post("/entity/syn1/costAllocation", json={"name": "Lab-A"}).status_code == 201
        assert alice.post("/entity/2/costAllocation", json={"name": "lab-a"}).status_code == 200
        assert alice.post("/entity/syn3/costAllocation", json={"name": "lab_b"}).status_code == 201

        first = alice.get("/costAllocation", params={"limit": 1}).json()
        second = alice.get("/costAllocation", params={"limit": 1, "nextPageToken": first["nextPageToken"]}).json()
        assert [first["results"][0]["projects"], second["results"][0]["projects"]] == [["syn1", "syn2"], ["syn3"]]
        assert "nextPageToken" not in second

        upload = alice.get("/entity/syn4/uploadDestination").json()
        assert upload["bucket"] == first["results"][0]["bucket"]
        assert alice.delete("/entity/syn2/costAllocation").status_code == 204

        errors = {
            "bad name": alice.post("/entity/syn1/costAllocation", json={"name": "lab a"}),
            "folder": alice.post("/entity/syn4/costAllocation", json={"name": "lab-a"}),
            "unknown": alice.post("/entity/syn99/costAllocation", json={"name": "lab-a"}),
            "bad id": alice.get("/entity/syn-1/costAllocation"),
            "removing again": alice.delete("/entity/syn2/costAllocation"),
            "none": alice.delete("/entity/syn5/costAllocation"),
            "bad token": alice.get("/costAllocation", params={"nextPageToken": "junk"}),
        }
    statuses = {case: response.status_code for case, response in errors.items()}
    assert statuses == {
        "bad name": 400,
        "folder": 404,
        "unknown": 404,
        "bad id": 400,
        "removing again": 204,
        "none": 404,
        "bad token": 400,
    }
    assert all(set(response.json()) == {"reason"} for response in errors.values() if response.status_code != 204)

    assert httpx.get(f"{base}/costAllocation").status_code == 401
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin_token}"}) as admin:
        assert len(admin.get("/costAllocation").json()["results"]) == 2
    assert process.poll() is None
