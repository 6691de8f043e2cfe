"""The service as the pipeline and the API use it: change log, removal, target buckets, concurrency,
and failures that must leave nothing behind. SQLite and PostgreSQL; S3 on moto's server."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from costalloc_pipeline import allocations
from costalloc_pipeline.allocations import (
    Association,
    plan_assign,
    plan_finish_removal,
    plan_unassign,
)
from costalloc_pipeline.auth import Caller, admin_caller
from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.errors import BadRequest, Conflict, NotFound, Unavailable
from costalloc_pipeline.naming import bucket_name_for
from costalloc_pipeline.placement.rule import Target, project_allocation
from costalloc_pipeline.s3 import s3_client
from costalloc_pipeline.schema.repository import (
    DEFAULT_STORAGE_LOCATION_ID,
    AssociationState,
    cost_allocation,
    cost_allocation_change,
    cost_allocation_project,
    storage_location,
)

ACTIVE, REMOVING, REMOVED = AssociationState.ACTIVE, AssociationState.REMOVING, AssociationState.REMOVED


# --- pure planning --------------------------------------------------------------------------------


def _association(allocation: int, state: AssociationState) -> Association:
    return Association(project_id=10, cost_allocation_id=allocation, state=state, change_number=1)


def test_plan_assign() -> None:
    assert plan_assign(None, 1) == allocations.AssociationChange(ACTIVE, 1, (1,))
    assert plan_assign(_association(1, ACTIVE), 1) is None
    assert plan_assign(_association(1, REMOVING), 1) == allocations.AssociationChange(ACTIVE, 1, (1,))
    assert plan_assign(_association(1, ACTIVE), 2) == allocations.AssociationChange(ACTIVE, 2, (1, 2))
    assert plan_assign(_association(1, REMOVING), 2) == allocations.AssociationChange(ACTIVE, 2, (1, 2))


def test_plan_unassign_and_finish_removal() -> None:
    with pytest.raises(NotFound):
        plan_unassign(None, 10)
    assert plan_unassign(_association(1, ACTIVE), 10) == allocations.AssociationChange(REMOVING, 1, (1,))
    assert plan_unassign(_association(1, REMOVING), 10) is None
    assert plan_finish_removal(None) is None
    assert plan_finish_removal(_association(1, ACTIVE)) is None
    assert plan_finish_removal(_association(1, REMOVING)) == allocations.AssociationChange(REMOVED, 1, ())


def test_page_tokens_round_trip_and_reject_garbage() -> None:
    assert allocations.decode_page_token(allocations.encode_page_token(12345)) == 12345
    assert allocations.decode_page_token(allocations.encode_page_token(2**63 - 1)) == 2**63 - 1
    for garbage in ("", "!!!", "-1", "1.5", "12a", "gAAAAAAAAAA", "AAAAAAAAAA", "AAAAAAAAAAAA", "\u00e9" * 11):
        with pytest.raises(BadRequest, match="nextPageToken"):
            allocations.decode_page_token(garbage)
    with pytest.raises(BadRequest, match="limit"):
        allocations.page_limit(0)
    assert allocations.page_limit(None) == allocations.DEFAULT_PAGE_LIMIT


# --- against the databases ------------------------------------------------------------------------


@pytest.fixture
def engine(settings: Settings, admin_token: str):
    return engine_for(settings.repository_url)


@pytest.fixture
def admin(engine) -> Caller:
    with engine.connect() as conn:
        return admin_caller(conn)


@pytest.fixture
def s3(settings: Settings) -> Any:
    return s3_client(settings)


def _changes(engine, project_id: int) -> list[tuple[int, int, str]]:
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(
                    cost_allocation_change.c.id,
                    cost_allocation_change.c.cost_allocation_id,
                    cost_allocation_change.c.state,
                )
                .where(cost_allocation_change.c.project_id == project_id)
                .order_by(cost_allocation_change.c.id)
            )
        ]


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_every_association_change_is_logged_and_numbered(engine, admin, s3, settings: Settings, entities) -> None:
    entities.project(10)
    lab_a = allocations.assign(engine, s3, settings, "syn10", "lab-a", admin).cost_allocation
    allocations.assign(engine, s3, settings, 10, "lab-a", admin)  # no-op: no change row
    lab_b = allocations.assign(engine, s3, settings, "10", "lab-b", admin).cost_allocation
    allocations.unassign(engine, "syn10", admin)
    allocations.unassign(engine, "syn10", admin)  # already REMOVING: no change row
    allocations.assign(engine, s3, settings, "syn10", "lab-b", admin)  # cancels the removal

    changes = _changes(engine, 10)
    assert [(allocation, state) for _, allocation, state in changes] == [
        (lab_a.id, "ACTIVE"),
        (lab_b.id, "ACTIVE"),
        (lab_b.id, "REMOVING"),
        (lab_b.id, "ACTIVE"),
    ]
    association = allocations.association_for_project(engine, 10)
    assert association == Association(10, lab_b.id, ACTIVE, changes[-1][0])


def test_finish_removal_deletes_a_removing_association_only(engine, admin, s3, settings: Settings, entities) -> None:
    entities.project(10)
    allocation = allocations.assign(engine, s3, settings, 10, "lab-a", admin).cost_allocation
    assert allocations.finish_removal(engine, 10) is False  # ACTIVE: stays
    allocations.unassign(engine, 10, admin)
    with pytest.raises(NotFound, match="being removed"):
        allocations.get_for_project(engine, 10)

    with engine.begin() as conn:  # the pipeline may pass its own connection
        assert allocations.finish_removal(conn, 10) is True
    assert allocations.association_for_project(engine, 10) is None
    assert [state for _, _, state in _changes(engine, 10)] == ["ACTIVE", "REMOVING", "REMOVED"]
    assert allocations.finish_removal(engine, 10) is False
    assert _count(engine, cost_allocation_project) == 0
    # The cost allocation and its bucket remain, ready for other projects.
    assert allocations.list_cost_allocations(engine).results[0].id == allocation.id


def test_target_bucket_follows_the_association_state(engine, admin, s3, settings: Settings, entities) -> None:
    entities.project(10)

    def allocation_of(project_id: int) -> tuple[Target, str | None]:
        with engine.connect() as conn:
            return project_allocation(conn, project_id)

    default = (Target(settings.default_bucket, DEFAULT_STORAGE_LOCATION_ID), None)
    assert allocation_of(10) == default
    allocation = allocations.assign(engine, s3, settings, 10, "lab-a", admin).cost_allocation
    assert allocation_of(10) == (Target(allocation.bucket, allocation.storage_location_id), "lab-a")
    allocations.unassign(engine, 10, admin)
    assert allocation_of(10) == default


def test_a_refused_bucket_writes_nothing(
    engine, admin, s3, settings: Settings, entities, bucket_of_another_account
) -> None:
    entities.project(10)
    bucket_of_another_account(bucket_name_for(settings.stack, "lab-a"))
    with pytest.raises(Conflict, match="another AWS account"):
        allocations.assign(engine, s3, settings, 10, "lab-a", admin)
    assert _count(engine, cost_allocation) == 0
    assert _count(engine, cost_allocation_project) == 0
    assert _count(engine, cost_allocation_change) == 0
    assert _count(engine, storage_location) == 1


def test_a_failed_bucket_setup_writes_nothing_and_leaves_no_bucket(
    engine, admin, settings: Settings, entities, s3_denied_lifecycle
) -> None:
    entities.project(10)
    with pytest.raises(Unavailable, match="AccessDenied"):
        allocations.assign(engine, s3_denied_lifecycle, settings, 10, "lab-a", admin)
    assert _count(engine, cost_allocation) == 0
    assert _count(engine, cost_allocation_change) == 0
    buckets = [bucket["Name"] for bucket in s3_denied_lifecycle.list_buckets()["Buckets"]]
    assert buckets == [settings.default_bucket]


def _race(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Runs work(0..count-1) in threads released together; returns results or exceptions."""
    start = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = work(index)
        except Exception as error:  # noqa: BLE001 - reported by the assertions below
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_concurrent_posts_of_a_new_name_create_one_allocation_and_one_bucket(
    engine, admin, s3, settings: Settings, entities
) -> None:
    projects = [entities.project(100 + index) for index in range(6)]
    results = _race(
        len(projects), lambda index: allocations.assign(engine, s3, settings, projects[index], "shared", admin)
    )
    assert all(isinstance(result, allocations.AssignResult) for result in results), results
    assert sum(result.created for result in results) == 1
    assert len({result.cost_allocation.id for result in results}) == 1
    assert _count(engine, cost_allocation) == 1
    assert _count(engine, storage_location) == 2
    buckets = [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]
    assert sorted(buckets) == sorted([settings.default_bucket, bucket_name_for(settings.stack, "shared")])
    assert allocations.list_cost_allocations(engine).results[0].projects == tuple(projects)


def test_concurrent_posts_for_one_project_leave_a_consistent_log(
    engine, admin, s3, settings: Settings, entities
) -> None:
    entities.project(10)
    names = ["lab-a", "lab-b", "lab-a", "lab-b", "lab-c"]
    results = _race(len(names), lambda index: allocations.assign(engine, s3, settings, 10, names[index], admin))
    assert all(isinstance(result, allocations.AssignResult) for result in results), results
    association = allocations.association_for_project(engine, 10)
    changes = _changes(engine, 10)
    # The association is the last change logged, and the log names each change once.
    assert association is not None and association.change_number == changes[-1][0]
    assert association.cost_allocation_id == changes[-1][1]
    assert len(changes) <= len(names)
