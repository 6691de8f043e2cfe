"""Retiring a cost allocation: refused with the reason while anything uses it, the bucket deleted
only on request, archives only on a second request, and an assign racing the retire never leaves
a project with a retired cost allocation. Real moto over HTTP, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from functools import partial

import pytest
from sqlalchemy import func, select

from costalloc_pipeline import allocations
from costalloc_pipeline.allocations.retire import retire
from costalloc_pipeline.audit import audit
from costalloc_pipeline.auth import admin_caller
from costalloc_pipeline.cli import main
from costalloc_pipeline.db import engine_for, utcnow
from costalloc_pipeline.errors import Conflict, CostAllocError
from costalloc_pipeline.headroom import account_buckets
from costalloc_pipeline.s3 import s3_client
from costalloc_pipeline.schema.repository import (
    MoveState,
    cost_allocation,
    cost_allocation_change,
    cost_allocation_project,
    files,
    move_ledger,
)


def _new(api, entities, project: int, name: str) -> dict:
    entities.project(project)
    answer = api.post(f"/entity/syn{project}/costAllocation", json={"name": name})
    assert answer.status_code == 201
    return answer.json()


def _release(settings, project: int) -> None:
    """Unassign, and (as the pipeline does once the files are back) finish the removal."""
    engine = engine_for(settings.repository_url)
    with engine.connect() as conn:
        caller = admin_caller(conn)
    allocations.unassign(engine, project, caller)
    assert allocations.finish_removal(engine, project)


def _archive(settings, bucket: str, key: str) -> None:
    """An archive as the mover leaves it: in GLACIER, tagged, and recorded in the ledger."""
    s3_client(settings).put_object(
        Bucket=bucket, Key=key, Body=b"old", StorageClass="GLACIER", Tagging="costalloc:archived=true"
    )
    _record_archive(settings, bucket, key)


def _versioned_archive(settings, bucket: str, key: str) -> None:
    """An archive as the mover leaves it in a versioned bucket: the noncurrent version under the
    delete marker of its DeleteObject, recorded in the ledger by its version id."""
    s3 = s3_client(settings)
    version_id = s3.put_object(Bucket=bucket, Key=key, Body=b"old")["VersionId"]
    s3.delete_object(Bucket=bucket, Key=key)
    _record_archive(settings, bucket, key, archive_method="delete", archive_version_id=version_id)


def _record_archive(settings, bucket: str, key: str, **archive: str) -> None:
    now = utcnow()
    with engine_for(settings.repository_url).begin() as conn:
        conn.execute(
            move_ledger.insert().values(
                run_id="r",
                project_id=1,
                file_handle_id=1,
                source_bucket=bucket,
                source_key=key,
                target_bucket="test-costalloc-default",
                target_storage_location_id=1,
                state=MoveState.DONE.value,
                archive_bucket=bucket,
                archive_key=key,
                archived_on=now,
                started_on=now,
                updated_on=now,
                **archive,
            )
        )


def _audit(settings) -> dict[str, int]:
    with engine_for(settings.repository_url).connect() as conn:
        return audit(conn, s3_client(settings), retention_days=settings.archive_retention_days).counts


def _changes(settings) -> int:
    with engine_for(settings.repository_url).connect() as conn:
        return conn.execute(select(func.count()).select_from(cost_allocation_change)).scalar_one()


def test_retire_refuses_while_in_use_and_changes_nothing(settings, api, entities):
    allocation = _new(api, entities, 1, "genomics")
    path = f"/costAllocation/{allocation['id']}"
    answer = api.delete(path)
    assert answer.status_code == 409
    assert "syn1 (ACTIVE)" in answer.json()["reason"] and "unassign them first" in answer.json()["reason"]

    allocations.unassign(engine_for(settings.repository_url), 1, api_caller(settings))
    assert "wait until their files are back" in api.delete(path).json()["reason"]
    assert allocations.finish_removal(engine_for(settings.repository_url), 1)

    s3 = s3_client(settings)
    s3.put_object(Bucket=allocation["bucket"], Key="live/file.txt", Body=b"live")
    answer = api.delete(path)
    assert answer.status_code == 409
    assert "holds 1 objects that are not archives (first: live/file.txt)" in answer.json()["reason"]
    # An object in an archive class but not tagged by the mover is live data too.
    s3.put_object(Bucket=allocation["bucket"], Key="live/file.txt", Body=b"live", StorageClass="GLACIER")
    assert api.delete(path).status_code == 409

    s3.delete_object(Bucket=allocation["bucket"], Key="live/file.txt")
    with engine_for(settings.repository_url).begin() as conn:
        conn.execute(
            files.insert().values(
                id=77,
                etag="e",
                created_on=utcnow(),
                created_by=1,
                updated_on=utcnow(),
                metadata_type="S3",
                bucket_name=allocation["bucket"],
                name="f",
                key="k",
                status="AVAILABLE",
            )
        )
    answer = api.delete(path)
    assert answer.status_code == 409
    assert "1 AVAILABLE file handles point into bucket" in answer.json()["reason"]
    assert api.get("/costAllocation").json()["results"][0]["name"] == "genomics"


def api_caller(settings):
    with engine_for(settings.repository_url).connect() as conn:
        return admin_caller(conn)


def test_retire_keeps_the_bucket_and_its_archives_unless_asked(settings, api, entities):
    allocation = _new(api, entities, 1, "genomics")
    _release(settings, 1)
    s3 = s3_client(settings)
    _archive(settings, allocation["bucket"], "1/a/file.txt")
    changes = _changes(settings)
    path = f"/costAllocation/{allocation['id']}"

    # Deleting the bucket would delete the archives: not without the second flag.
    answer = api.delete(path, params={"deleteBucket": "true"})
    assert answer.status_code == 409
    assert "1 archives, the recovery path" in answer.json()["reason"]

    answer = api.delete(path)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["bucketDeleted"], body["archivesKept"], body["archivesDeleted"]) == (False, 1, 0)
    assert allocation["bucket"] in account_buckets(s3)
    assert api.get("/costAllocation").json()["results"] == []
    assert api.delete(path).status_code == 404
    assert _changes(settings) == changes
    # The ledger's rows naming the retired bucket were written while it was managed (I5 holds).
    assert _audit(settings) == {}


def test_retire_expiring_the_archives_and_keeping_the_bucket(settings, api, entities):
    allocation = _new(api, entities, 1, "genomics")
    _release(settings, 1)
    _archive(settings, allocation["bucket"], "1/a/file.txt")
    answer = api.delete(f"/costAllocation/{allocation['id']}", params={"expireArchives": "true"})
    assert answer.status_code == 200
    assert (answer.json()["bucketDeleted"], answer.json()["archivesDeleted"]) == (False, 1)
    s3 = s3_client(settings)
    assert allocation["bucket"] in account_buckets(s3)
    assert s3.list_objects_v2(Bucket=allocation["bucket"]).get("Contents", []) == []


def test_retire_with_the_bucket_and_its_archives(settings, api, entities):
    allocation = _new(api, entities, 1, "genomics")
    _release(settings, 1)
    s3 = s3_client(settings)
    _archive(settings, allocation["bucket"], "1/a/file.txt")
    _archive(settings, allocation["bucket"], "1/b/file.txt")
    answer = api.delete(f"/costAllocation/{allocation['id']}", params={"deleteBucket": "1", "expireArchives": "1"})
    assert answer.status_code == 200
    assert (answer.json()["bucketDeleted"], answer.json()["archivesDeleted"]) == (True, 2)
    assert allocation["bucket"] not in account_buckets(s3)
    # Archives deleted on request are not lost ones (I3).
    assert _audit(settings) == {}


def test_retire_is_for_the_team_only_and_checks_its_id(settings, api, entities):
    allocation = _new(api, entities, 1, "genomics")
    assert api.delete(f"/costAllocation/{allocation['id']}", headers={"Authorization": ""}).status_code == 401
    assert api.delete("/costAllocation/12345").json() == {"reason": "cost allocation 12345 does not exist"}
    assert api.delete("/costAllocation/syn1").status_code == 400
    assert api.delete("/costAllocation/99999999999999999999").status_code == 400


def test_costalloc_retire(environment, admin_token, entities, capsys):
    engine = engine_for(environment.repository_url)
    entities.project(1)
    with engine.connect() as conn:
        caller = admin_caller(conn)
    s3 = s3_client(environment)
    created = allocations.assign(engine, s3, environment, 1, "genomics", caller).cost_allocation
    assert main(["retire", "genomics"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"costalloc: cost allocation genomics (id {created.id}) cannot be retired: 1 projects are associated "
        "with it: syn1 (ACTIVE); unassign them first\n"
    )
    assert main(["retire", "nonesuch"]) == 2
    assert capsys.readouterr().err == "costalloc: cost allocation 'nonesuch' does not exist\n"
    assert main(["retire", "bad name!"]) == 2
    capsys.readouterr()

    _release(environment, 1)
    assert main(["retire", "genomics", "--delete-bucket"]) == 0
    assert capsys.readouterr().out == (
        f"retired cost allocation genomics (id {created.id})\nbucket {created.bucket} deleted, with 0 archives\n"
    )
    assert created.bucket not in account_buckets(s3)
    with pytest.raises(SystemExit) as done:
        main(["retire", "--help"])
    assert done.value.code == 0
    assert "--expire-archives" in capsys.readouterr().out


def _race(*actions: Callable[[], object]) -> list[object]:
    """Runs the actions on threads released at once; each one's result, or the CostAllocError it raised."""
    outcomes: list[object] = [None] * len(actions)
    start = threading.Barrier(len(actions))

    def run(index: int) -> None:
        start.wait()
        try:
            outcomes[index] = actions[index]()
        except CostAllocError as error:
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_an_assign_racing_a_retire_never_leaves_a_project_on_a_retired_allocation(settings, admin_token, entities):
    engine = engine_for(settings.repository_url)
    s3 = s3_client(settings)
    with engine.connect() as conn:
        caller = admin_caller(conn)
    entities.project(1)
    entities.project(2)
    for round_ in range(6):
        name = f"race{round_}"
        allocations.assign(engine, s3, settings, 1, name, caller)
        _release(settings, 1)
        with engine.connect() as conn:
            retired_id = conn.execute(select(cost_allocation.c.id).where(cost_allocation.c.name == name)).scalar_one()
        _, retired = _race(
            partial(allocations.assign, engine, s3, settings, 2, name, caller), partial(retire, engine, s3, name)
        )
        with engine.connect() as conn:
            association = conn.execute(
                select(cost_allocation_project.c.cost_allocation_id).where(cost_allocation_project.c.project_id == 2)
            ).scalar()
            exists = conn.execute(select(cost_allocation.c.id).where(cost_allocation.c.id == retired_id)).first()
        if isinstance(retired, Conflict):
            # The assign landed first: the allocation stays, with the project.
            assert exists is not None and association == retired_id
        else:
            # The retire won: the assign found the name gone and made a new cost allocation (or failed).
            assert exists is None
            assert association != retired_id
        if association is not None:
            _release(settings, 2)


def test_the_retire_json(environment, admin_token, entities, capsys):
    entities.project(1)
    engine = engine_for(environment.repository_url)
    with engine.connect() as conn:
        caller = admin_caller(conn)
    created = allocations.assign(engine, s3_client(environment), environment, 1, "genomics", caller).cost_allocation
    _release(environment, 1)
    assert main(["retire", "GENOMICS", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["id"] == str(created.id) and body["bucketDeleted"] is False


def test_a_versioned_bucket_s_noncurrent_versions_are_archives_kept_unless_asked(settings, api, entities):
    allocation = _new(api, entities, 1, "genomics")
    _release(settings, 1)
    s3 = s3_client(settings)
    _versioned_archive(settings, allocation["bucket"], "1/a/file.txt")
    path = f"/costAllocation/{allocation['id']}"

    answer = api.delete(path, params={"deleteBucket": "true"})
    assert answer.status_code == 409
    assert "1 archives, the recovery path" in answer.json()["reason"]
    assert _audit(settings) == {}

    answer = api.delete(path, params={"deleteBucket": "1", "expireArchives": "1"})
    assert answer.status_code == 200
    # The version went for good, then its delete marker, then the bucket.
    assert (answer.json()["bucketDeleted"], answer.json()["archivesDeleted"]) == (True, 1)
    assert allocation["bucket"] not in account_buckets(s3)
    assert _audit(settings) == {}
