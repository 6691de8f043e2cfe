"""The invariant audit as an asset check: passes on a clean repository, fails naming the broken
handle, and leaves the half-done moves of a run in progress alone."""

from __future__ import annotations

import uuid

import dagster as dg

from costalloc_pipeline.mover import ledger
from costalloc_pipeline.mover.handles import read_handles
from costalloc_pipeline.placement.rule import Target
from costalloc_pipeline.schema.repository import MoveState

from .test_checks import handle_of


def audit_run(stack) -> dg.AssetCheckEvaluation:
    job = stack.runner.definitions.resolve_job_def("audit_repository")
    result = job.execute_in_process(instance=stack.runner.instance)
    assert result.success
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == "invariants_hold"
    return evaluation


def moved_project(stack) -> int:
    project = stack.report.project_ids[0]
    stack.assign(project, "genomics")
    [run] = stack.runner.tick()
    assert run.success
    return project


def test_passes_after_a_relocation(stack):
    moved_project(stack)
    check = audit_run(stack)
    assert check.passed
    assert check.metadata["violations"].value == 0
    assert check.metadata["checked_handles"].value == check.metadata["managed_handles"].value > 0


def test_fails_naming_the_handle_whose_object_is_gone(stack):
    project = stack.report.project_ids[1]
    handle = handle_of(stack, project)
    stack.s3.delete_object(Bucket=handle.bucket_name, Key=handle.key)
    check = audit_run(stack)
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["violations"].value == 1
    assert f"| I1: object missing | 1 | {handle.id} |" in check.metadata["by_kind"].value


def test_half_done_moves_of_a_run_in_progress_are_not_violations(stack):
    project = stack.report.project_ids[1]
    handle = handle_of(stack, project)
    instance = stack.runner.instance
    moving, crashed = str(uuid.uuid4()), str(uuid.uuid4())
    instance.add_run(dg.DagsterRun(job_name="relocate_project", run_id=moving, status=dg.DagsterRunStatus.STARTED))
    instance.add_run(dg.DagsterRun(job_name="relocate_project", run_id=crashed, status=dg.DagsterRunStatus.FAILURE))
    with stack.repository.begin() as conn:
        [read] = read_handles(conn, [handle.id])
        for run_id in (moving, crashed):
            rows = ledger.start(conn, run_id, project, [read], Target(stack.settings.default_bucket, 1))
            ledger.record(conn, MoveState.COPIED, {rows[handle.id]: {}})
    check = audit_run(stack)
    assert check.metadata["violations"].value == 1
    assert f"| ledger: copied but not repointed | 1 | {handle.id} |" in check.metadata["by_kind"].value
