"""The synthetic repository: its plan (pure), then `seed_repository` and `costalloc seed` on
SQLite and PostgreSQL with objects in moto's S3 server."""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy import func, select

from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import engine_for, utcnow
from costalloc_pipeline.errors import BadRequest, Conflict
from costalloc_pipeline.s3 import s3_client
from costalloc_pipeline.schema.repository import (
    DEFAULT_STORAGE_LOCATION_ID,
    FileStatus,
    MetadataType,
    NodeType,
    files,
    node,
    node_revision,
    storage_location,
)
from costalloc_pipeline.seed import (
    EvenShare,
    PlannedObject,
    PlannedRow,
    PlanTargets,
    RepositoryPlan,
    SeedReport,
    SeedSpec,
    Slot,
    seed_repository,
    special_slots,
    uuid4_text,
)

SMALL = SeedSpec(projects=2, folders_per_project=2, files_per_folder=8, min_size=1, max_size=256)
TARGETS = PlanTargets(
    first_entity_id=100,
    first_handle_id=500,
    default_bucket="default",
    external_bucket="external",
    external_storage_location_id=7,
    now=utcnow(),
)


# --- planning, without servers -------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"projects": -1},
        {"files_per_folder": -3},
        {"versions_per_file": 0},
        {"same_key_pairs": -1},
        {"min_size": -1},
        {"min_size": 10, "max_size": 5},
        {"preview_share": 1.5},
        {"external_share": -0.1},
        {"upload_concurrency": 0},
        {"id_offset": -5},
        # 2 folders x 2 files cannot hold the 8 files the default special cases need.
        {"files_per_folder": 2},
    ],
)
def test_bad_specs_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        SeedSpec(**changes).validate()


def test_special_slots_give_each_case_a_distinct_lender_and_borrower() -> None:
    spec = SeedSpec(folders_per_project=1, files_per_folder=12, shared_within_project=2)
    slots = special_slots(spec)
    assert len(slots) == spec.special_files_per_project == 10
    lenders = {index for index, (slot, _) in slots.items() if slot.name.startswith("LEND")}
    # Lenders come before every borrower, so a borrower of the same project finds its lender planned.
    assert max(lenders) < min(set(slots) - lenders)
    assert sorted(case for slot, case in slots.values() if slot is Slot.TWIN) == [0, 1]


@pytest.mark.parametrize(
    ("share", "candidates", "picked"), [(0.0, 10, 0), (0.1, 9, 0), (0.1, 10, 1), (0.25, 101, 25), (1.0, 7, 7)]
)
def test_even_share_picks_exactly_its_share(share: float, candidates: int, picked: int) -> None:
    chooser = EvenShare(share)
    assert sum(chooser.pick() for _ in range(candidates)) == picked


def test_uuid4_text_is_a_version_4_uuid() -> None:
    import random

    value = uuid4_text(random.Random(3))
    assert uuid.UUID(value).version == 4
    assert str(uuid.UUID(value)) == value


def _comparable(items: list[PlannedRow | PlannedObject]) -> list[Any]:
    # Etags are deliberately not seeded: they only tell row versions apart.
    return [
        (item.table.name, {k: v for k, v in item.values.items() if k != "etag"})
        if isinstance(item, PlannedRow)
        else item
        for item in items
    ]


def test_plan_is_deterministic_for_a_seed() -> None:
    first = _comparable(list(RepositoryPlan(SMALL, TARGETS).items()))
    again = _comparable(list(RepositoryPlan(SMALL, TARGETS).items()))
    other = _comparable(list(RepositoryPlan(SeedSpec(**{**SMALL.__dict__, "random_seed": 7}), TARGETS).items()))
    assert first == again
    assert first != other


def test_plan_md5_and_size_are_those_of_the_object_bytes() -> None:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    objects = []
    for item in RepositoryPlan(SMALL, TARGETS).items():
        if isinstance(item, PlannedObject):
            objects.append(item)
        elif item.table is files and item.values["bucket_name"] is not None:
            rows[(item.values["bucket_name"], item.values["key"])] = item.values
    assert objects
    for obj in objects:
        row = rows[(obj.bucket, obj.key)]
        assert row["content_md5"] == hashlib.md5(obj.body).hexdigest() == obj.md5_hex
        assert row["content_size"] == len(obj.body)
        assert SMALL.min_size <= len(obj.body) <= SMALL.max_size


# --- seeding a real stack ------------------------------------------------------------------


def _rows(settings: Settings, table) -> list[dict[str, Any]]:
    with engine_for(settings.repository_url).connect() as conn:
        return [dict(row._mapping) for row in conn.execute(select(table))]


def _references(settings: Settings) -> dict[int, set[tuple[int, int]]]:
    """Handle id -> {(entity id, project id)} of the versions that reference it."""
    query = select(node_revision.c.file_handle_id, node.c.id, node.c.project_id).join(
        node, node.c.id == node_revision.c.owner_node_id
    )
    found: dict[int, set[tuple[int, int]]] = defaultdict(set)
    with engine_for(settings.repository_url).connect() as conn:
        for handle_id, entity_id, project_id in conn.execute(query):
            found[handle_id].add((entity_id, project_id))
    return found


def test_seed_writes_the_repository_and_its_special_cases(settings: Settings) -> None:
    report = seed_repository(settings, SeedSpec())
    handles = {row["id"]: row for row in _rows(settings, files)}
    nodes = {row["id"]: row for row in _rows(settings, node)}
    references = _references(settings)

    assert len(report.project_ids) == 3
    assert len(handles) == report.handles and 200 <= report.handles <= 500
    assert len(nodes) == report.nodes == 3 + 3 * 2 + report.file_entities
    assert sum(len(entities) for entities in references.values()) == report.revisions
    for entity in nodes.values():
        if entity["node_type"] == NodeType.PROJECT.value:
            assert entity["parent_id"] is None and entity["project_id"] == entity["id"]
        else:
            assert nodes[entity["parent_id"]]["project_id"] == entity["project_id"]
    assert {row["status"] for row in handles.values()} == {FileStatus.AVAILABLE.value}

    # (a) one handle, versions of two entities of one project.
    assert len(report.shared_within_project) == 3
    for handle_id in report.shared_within_project:
        assert len(references[handle_id]) == 2
        assert len({project for _, project in references[handle_id]}) == 1
    # (b) one handle, entities of two projects.
    assert len(report.shared_across_projects) == 2
    for handle_id in report.shared_across_projects:
        assert len({project for _, project in references[handle_id]}) == 2
    # Shared handles are in repository-managed storage: they are what the mover must handle.
    for handle_id in report.shared_within_project + report.shared_across_projects:
        assert handles[handle_id]["bucket_name"] == settings.default_bucket

    # (c) distinct handles on one bucket and key, same bytes; some pairs span two projects.
    assert len(report.same_key_pairs) == 6
    pair_projects = []
    for original_id, twin_id in report.same_key_pairs:
        original, twin = handles[original_id], handles[twin_id]
        assert original_id != twin_id
        for column in ("bucket_name", "key", "content_md5", "content_size", "storage_location_id"):
            assert original[column] == twin[column]
        assert original["bucket_name"] == settings.default_bucket
        pair_projects.append({project for handle in (original_id, twin_id) for _, project in references[handle]})
    assert {len(projects) for projects in pair_projects} == {1, 2}

    # (d) previews: referenced by their main handle's preview_id, never by a version.
    previews = set(report.preview_handle_ids)
    assert previews == {row["id"] for row in handles.values() if row["is_preview"]}
    assert previews == {row["preview_id"] for row in handles.values() if row["preview_id"] is not None}
    assert not previews & set(references)
    assert all(handles[p]["bucket_name"] == settings.default_bucket for p in previews)
    # Every other handle is referenced by some version.
    assert set(handles) - previews == set(references)

    # External handles: URLs, and S3 in a bucket whose storage location is not ours.
    assert report.external_storage_location_id != DEFAULT_STORAGE_LOCATION_ID
    kinds = set()
    for handle_id in report.external_handle_ids:
        handle = handles[handle_id]
        if handle["metadata_type"] == MetadataType.EXTERNAL.value:
            assert handle["bucket_name"] is None and handle["key"].startswith(handle["endpoint"])
        else:
            assert handle["bucket_name"] == report.external_bucket
            assert handle["storage_location_id"] == report.external_storage_location_id
        kinds.add(handle["metadata_type"])
    assert kinds == {MetadataType.EXTERNAL.value, MetadataType.S3.value}
    locations = {row["id"]: row["bucket"] for row in _rows(settings, storage_location)}
    assert locations[report.external_storage_location_id] == report.external_bucket
    managed = {handle_id for handle_id, row in handles.items() if row["bucket_name"] == settings.default_bucket}
    assert managed.isdisjoint(report.external_handle_ids)
    assert {row["storage_location_id"] for row in handles.values() if row["id"] in managed} == {1}
    # Synapse's key shape: <created_by>/<uuid>/<file name>; a twin keeps its original's key.
    twins = {twin_id for _, twin_id in report.same_key_pairs}
    for handle_id in managed - twins:
        created_by, key_uuid, name = handles[handle_id]["key"].split("/")
        assert created_by == str(handles[handle_id]["created_by"]) and name == handles[handle_id]["name"]
        assert uuid.UUID(key_uuid).version == 4


def test_every_uploaded_object_matches_its_handle(settings: Settings) -> None:
    report = seed_repository(settings, SMALL)
    client = s3_client(settings)
    objects = {}
    for handle in _rows(settings, files):
        if handle["bucket_name"] is None:
            continue
        body = client.get_object(Bucket=handle["bucket_name"], Key=handle["key"])["Body"].read()
        assert hashlib.md5(body).hexdigest() == handle["content_md5"]
        assert len(body) == handle["content_size"]
        objects[(handle["bucket_name"], handle["key"])] = len(body)
    assert report.objects == len(objects)
    assert report.object_bytes == sum(objects.values())
    # The external bucket holds objects too, so a test can prove the mover leaves them alone.
    assert client.list_objects_v2(Bucket=report.external_bucket)["KeyCount"] > 0


def _shape(settings: Settings, report: SeedReport) -> list[tuple[Any, ...]]:
    """The report's handles with ids made relative to the first one, keys and etags left out."""
    ids = set(_seeded_ids(settings, report))
    rows = sorted((row for row in _rows(settings, files) if row["id"] in ids), key=lambda row: row["id"])
    first = rows[0]["id"]
    return [
        (
            row["id"] - first,
            row["preview_id"] - first if row["preview_id"] else None,
            row["metadata_type"],
            row["content_size"],
            row["content_md5"],
            row["is_preview"],
        )
        for row in rows
    ]


def _seeded_ids(settings: Settings, report: SeedReport) -> list[int]:
    """Handle ids referenced by the versions of the report's projects, and their previews."""
    projects = set(report.project_ids)
    ids = {handle for handle, refs in _references(settings).items() if any(p in projects for _, p in refs)}
    previews = {row["preview_id"] for row in _rows(settings, files) if row["id"] in ids and row["preview_id"]}
    return sorted(ids | previews)


def test_seeding_twice_adds_an_identical_repository_at_new_ids(settings: Settings) -> None:
    spec = SeedSpec(**{**SMALL.__dict__, "upload_objects": False, "random_seed": 7})
    first = seed_repository(settings, spec)
    second = seed_repository(settings, spec)
    first_ids, second_ids = _seeded_ids(settings, first), _seeded_ids(settings, second)

    assert max(first.project_ids) < min(second.project_ids)
    assert max(first_ids) < min(second_ids)
    assert len(first_ids) == first.handles and len(second_ids) == second.handles
    keys = {row["id"]: row["key"] for row in _rows(settings, files)}
    assert {keys[i] for i in first_ids}.isdisjoint(keys[i] for i in second_ids)
    assert _shape(settings, first) == _shape(settings, second)
    assert second.admin_token is None

    other = seed_repository(settings, SeedSpec(**{**spec.__dict__, "random_seed": 8}))
    assert _shape(settings, other) != _shape(settings, first)


def test_an_id_offset_below_existing_ids_is_refused_and_writes_nothing(settings: Settings) -> None:
    seed_repository(settings, SMALL)
    before = len(_rows(settings, files)), len(_rows(settings, node))
    with pytest.raises(Conflict):
        seed_repository(settings, SeedSpec(**{**SMALL.__dict__, "id_offset": 10}))
    assert (len(_rows(settings, files)), len(_rows(settings, node))) == before


def test_an_id_offset_places_the_repository(settings: Settings) -> None:
    report = seed_repository(settings, SeedSpec(**{**SMALL.__dict__, "upload_objects": False, "id_offset": 1000}))
    assert report.project_ids[0] == 1001
    assert min(row["id"] for row in _rows(settings, files)) == 1001


def test_a_medium_repository_without_objects_is_quick(settings: Settings) -> None:
    spec = SeedSpec(projects=4, folders_per_project=5, files_per_folder=400, max_size=64, upload_objects=False)
    report = seed_repository(settings, spec)
    assert report.handles >= 19_000
    assert report.objects == 0
    assert report.seconds < 60
    with engine_for(settings.repository_url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(files)).scalar_one() == report.handles
    assert s3_client(settings).list_objects_v2(Bucket=settings.default_bucket)["KeyCount"] == 0


# --- the command ---------------------------------------------------------------------------


def costalloc(*argv: str) -> int:
    # Imported here: the entry point pulls in every command, and the tests above need none of them.
    from costalloc_pipeline.cli import main

    return main(list(argv))


@pytest.fixture
def stack_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test stack, seen by the command through its COSTALLOC_* variables."""
    monkeypatch.setenv("COSTALLOC_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("COSTALLOC_REPOSITORY_URL", settings.repository_url)
    monkeypatch.setenv("COSTALLOC_REPLICA_URL", settings.replica_url)
    monkeypatch.setenv("COSTALLOC_S3_ENDPOINT_URL", settings.s3_endpoint_url or "")
    monkeypatch.setenv("COSTALLOC_STACK", settings.stack)
    return settings


def test_command_seeds_and_prints_a_summary(stack_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        costalloc("seed", "--projects", "2", "--files-per-project", "10", "--versions", "3", "--max-size", "100") == 0
    )
    out = capsys.readouterr().out
    assert "projects created: 2 (syn1, syn14)" in out
    assert "admin token (shown once)" in out
    nodes = _rows(stack_env, node)
    assert sum(row["node_type"] == NodeType.FILE.value for row in nodes) == 20
    assert max(row["current_version"] or 0 for row in nodes) == 4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--projects", "-1"], "projects must not be negative"),
        (["--min-size", "10", "--max-size", "5"], "minimum object size 10 is above maximum 5"),
        (["--files-per-project", "7"], "not a multiple of --folders-per-project 2"),
        (["--preview-share", "2"], "preview share must be between 0 and 1"),
    ],
)
def test_command_refuses_bad_arguments_in_one_line(
    stack_env: Settings, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert costalloc("seed", *argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert _rows(stack_env, node) == []
