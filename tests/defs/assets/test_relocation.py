"""Assigning a project really moves its files: real Dagster runs, real databases, moto's S3."""

from __future__ import annotations

import hashlib

from sqlalchemy import select, union

from costalloc_pipeline.placement.progress import project_progress
from costalloc_pipeline.placement.rule import load_placement
from costalloc_pipeline.schema.repository import FileStatus, files, node, node_revision


def project_handles(stack, project_id: int) -> list:
    own = (
        select(node_revision.c.file_handle_id)
        .join(node, node.c.id == node_revision.c.owner_node_id)
        .where(node.c.project_id == project_id)
    )
    previews = select(files.c.preview_id).where(files.c.id.in_(own), files.c.preview_id.is_not(None))
    with stack.repository.connect() as conn:
        return list(conn.execute(select(files).where(files.c.id.in_(union(own, previews)))))


def allocation_bucket(stack, project_id: int) -> str:
    with stack.repository.connect() as conn:
        return load_placement(conn).target_bucket(project_id)


def progress(stack, project_id: int):
    with stack.repository.connect() as conn:
        return project_progress(conn, project_id, load_placement(conn))


def assert_readable(stack, handle) -> None:
    body = stack.s3.get_object(Bucket=handle.bucket_name, Key=handle.key)["Body"].read()
    assert (len(body), hashlib.md5(body).hexdigest()) == (handle.content_size, handle.content_md5)


def test_an_assigned_project_is_moved_with_every_version_and_preview(stack):
    project = stack.report.project_ids[0]
    stack.assign(project, "genomics")
    [run] = stack.runner.tick()
    assert run.success
    bucket = allocation_bucket(stack, project)
    handles = project_handles(stack, project)
    managed = [h for h in handles if h.id not in stack.report.external_handle_ids]
    previews = [h for h in managed if h.is_preview]
    assert previews, "the seed gives this project previews"
    conflicts = progress(stack, project).conflict_files
    assert sum(1 for h in managed if h.bucket_name == bucket) == len(managed) - conflicts
    for handle in handles:
        if handle.status == FileStatus.AVAILABLE.value and handle.bucket_name is not None:
            assert_readable(stack, handle)
    assert progress(stack, project).misplaced_files == 0
    [check] = run.get_asset_check_evaluations()
    assert check.passed


def test_external_handles_are_untouched(stack):
    project = stack.report.project_ids[0]
    external = stack.s3.list_objects_v2(Bucket=stack.report.external_bucket)["Contents"]
    before = {
        h.id: (h.bucket_name, h.key, h.etag)
        for h in project_handles(stack, project)
        if h.id in stack.report.external_handle_ids
    }
    stack.assign(project, "genomics")
    stack.runner.tick()
    after = {h.id: (h.bucket_name, h.key, h.etag) for h in project_handles(stack, project) if h.id in before}
    assert after == before
    again = stack.s3.list_objects_v2(Bucket=stack.report.external_bucket)["Contents"]
    assert [(o["Key"], o["ETag"], o["StorageClass"]) for o in again] == [
        (o["Key"], o["ETag"], o["StorageClass"]) for o in external
    ]


def test_a_second_run_moves_nothing(stack):
    project = stack.report.project_ids[0]
    stack.assign(project, "genomics")
    [first] = stack.runner.tick()
    assert first.output_for_node("relocation.summarize_relocation")["moved_files"] > 0
    second = stack.runner.run(f"syn{project}")
    summary = second.output_for_node("relocation.summarize_relocation")
    assert (summary["moved_files"], summary["archived_objects"]) == (0, 0)


def test_reassignment_to_another_allocation_moves_the_files_again(stack):
    project = stack.report.project_ids[0]
    stack.assign(project, "genomics")
    stack.runner.tick()
    first_bucket = allocation_bucket(stack, project)
    stack.assign(project, "imaging")
    [run] = stack.runner.tick()
    second_bucket = allocation_bucket(stack, project)
    assert second_bucket != first_bucket
    assert run.output_for_node("relocation.summarize_relocation")["moved_files"] > 0
    assert progress(stack, project).misplaced_files == 0
    assert not [h for h in project_handles(stack, project) if h.bucket_name == first_bucket]


def test_unassign_brings_every_file_back_then_removes_the_association(stack):
    project = stack.report.project_ids[0]
    stack.assign(project, "genomics")
    stack.runner.tick()
    stack.unassign(project)
    [run] = stack.runner.tick()
    assert run.success
    default = stack.settings.default_bucket
    for handle in project_handles(stack, project):
        if handle.id not in stack.report.external_handle_ids and handle.bucket_name is not None:
            assert handle.bucket_name == default
            assert_readable(stack, handle)
    from costalloc_pipeline import allocations

    assert allocations.association_for_project(stack.repository, project) is None
    # The relocation run ended the unassignment (the check only reads).
    [relocated] = [e for e in run.get_asset_materialization_events() if e.asset_key.to_user_string() == "relocation"]
    assert relocated.materialization.metadata["left_its_allocation"].value is True
    assert stack.runner.tick() == []
    # The project keeps its partition, and with it the history of its moves.
    assert f"syn{project}" in stack.runner.instance.get_dynamic_partitions("projects")
