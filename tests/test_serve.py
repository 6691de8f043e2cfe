"""The real thing: `costalloc init`, then `costalloc serve` in its own process, called over a socket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from costalloc_pipeline.config import Settings
from costalloc_pipeline.embedded import free_port

COSTALLOC = str(Path(sys.executable).with_name("costalloc"))


def _environment(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "COSTALLOC_DATA_DIR": str(settings.data_dir),
        "COSTALLOC_REPOSITORY_URL": settings.repository_url,
        "COSTALLOC_REPLICA_URL": settings.replica_url,
        "COSTALLOC_S3_ENDPOINT_URL": str(settings.s3_endpoint_url),
        "COSTALLOC_STACK": settings.stack,
    }


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"costalloc serve exited with {process.returncode}: {process.stdout.read()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("costalloc serve did not listen in time")


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[str, str, subprocess.Popen]]:
    """(base URL, admin token, server process) of a freshly initialised stack."""
    environment = _environment(settings)
    init = subprocess.run([COSTALLOC, "init"], env=environment, capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    token = next(line.rsplit(" ", 1)[1] for line in init.stdout.splitlines() if line.startswith("admin token"))
    port = free_port()
    process = subprocess.Popen(
        [COSTALLOC, "serve", "--port", str(port), "--log-level", "warning"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}", token, process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_new_user_manages_cost_allocations_over_http(served, settings: Settings, entities) -> None:
    base, admin_token, process = served
    for project in (1, 2, 3, 5):
        entities.project(project)
    entities.folder(4, parent_id=1, project_id=1)
    member = subprocess.run(
        [COSTALLOC, "team", "add-member", "alice"], env=_environment(settings), capture_output=True, text=True, timeout=60
    )
    alice_token = member.stdout.strip().rsplit(" ", 1)[1]

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
        "folder": 400,
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
