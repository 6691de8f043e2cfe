"""The progress check passes at zero misplaced files, warns while files move, errors on failures;
it and the run's observations speak of one project's partition only."""

from __future__ import annotations

import dagster as dg
from sqlalchemy import update

from costalloc_pipeline.schema.repository import files


def the_check(run):
    [evaluation] = run.get_asset_check_evaluations()
    return evaluation


def handle_of(stack, project: int):
    from .test_relocation import project_handles

    return next(
        h
        for h in project_handles(stack, project)
        if h.id not in stack.report.external_handle_ids and h.bucket_name == stack.settings.default_bucket
    )


def test_passes_when_every_file_moved(stack):
    project = stack.report.project_ids[0]
    stack.assign(project, "genomics")
    [run] = stack.runner.tick()
    check = the_check(run)
    assert check.passed
    assert check.partition == f"syn{project}"
    assert check.metadata["project"].value == f"syn{project}"
    assert check.metadata["misplaced_files"].value == 0
    assert check.metadata["misplaced_bytes"].value == 0
    assert check.metadata["moved_bytes"].value > 0
    assert check.metadata["percent_done"].value == 100.0


def test_each_project_has_its_own_result(stack):
    first, second = stack.report.project_ids[:2]
    stack.assign(first, "genomics")
    stack.assign(second, "imaging")
    runs = stack.runner.tick()
    results = {the_check(run).partition: the_check(run).metadata["project"].value for run in runs}
    assert results == {f"syn{first}": f"syn{first}", f"syn{second}": f"syn{second}"}
    check_key = dg.AssetCheckKey(dg.AssetKey("relocation"), "no_misplaced_files")
    # The instance keeps one result per partition: what each partition's page shows.
    history = stack.runner.instance.event_log_storage.get_asset_check_execution_history(check_key, limit=10)
    assert sorted((record.partition, record.status.value) for record in history) == [
        (f"syn{first}", "SUCCEEDED"),
        (f"syn{second}", "SUCCEEDED"),
    ]


def test_the_run_observes_the_project_falling_to_zero_after_each_bundle(small_bundle_stack):
    stack = small_bundle_stack
    project = stack.report.project_ids[0]
    stack.assign(project, "genomics")
    [run] = stack.runner.tick()
    summary = run.output_for_node("relocation.summarize_relocation")
    [relocated] = [e for e in run.get_asset_materialization_events() if e.asset_key.to_user_string() == "relocation"]
    bundles = relocated.materialization.metadata["bundles"].value
    observed = [
        event.asset_observation_data.asset_observation
        for event in run.all_events
        if event.event_type_value == "ASSET_OBSERVATION"
    ]
    # One observation when the run planned its bundles, then one after each bundle.
    assert len(observed) == 1 + bundles
    assert {o.asset_key.to_user_string() for o in observed} == {"relocation"}
    assert {o.partition for o in observed} == {f"syn{project}"}
    misplaced = [o.metadata["misplaced_files"].value for o in observed]
    moved = [o.metadata["moved_bytes"].value for o in observed]
    done = [o.metadata["percent_done"].value for o in observed]
    assert bundles >= 2, "bundles of 4 files: several per project"
    assert misplaced[0] > 0 and misplaced[-1] == 0
    assert misplaced == sorted(misplaced, reverse=True) and done == sorted(done) and moved == sorted(moved)
    assert done[0] < 100.0 == done[-1]
    assert moved[-1] - moved[0] == summary["moved_bytes"]


def test_warns_while_a_file_is_still_to_move(stack):
    project = stack.report.project_ids[0]
    handle = handle_of(stack, project)
    stack.assign(project, "genomics")

    def concurrent_writer(**_):
        with stack.repository.begin() as conn:
            conn.execute(update(files).where(files.c.id == handle.id).values(etag="changed-meanwhile"))

    # Every CopyObject of the run bumps this handle's etag, as another writer would.
    from costalloc_pipeline.defs.resources.s3 import RepositoryS3

    original = RepositoryS3.get_client

    def client_with_writer(self):
        client = original(self)
        client.meta.events.register("after-call.s3.CopyObject", concurrent_writer)
        return client

    RepositoryS3.get_client = client_with_writer
    try:
        [run] = stack.runner.tick()
    finally:
        RepositoryS3.get_client = original
    check = the_check(run)
    assert not check.passed
    assert check.severity.value == "WARN"
    assert check.metadata["misplaced_files"].value >= 1
    assert check.metadata["percent_done"].value < 100.0

    again = stack.runner.run(f"syn{project}")
    assert the_check(again).passed


def test_errors_when_a_file_fails_verification(stack):
    project = stack.report.project_ids[0]
    handle = handle_of(stack, project)
    stack.s3.put_object(Bucket=handle.bucket_name, Key=handle.key, Body=b"bit rot")
    stack.assign(project, "genomics")
    [run] = stack.runner.tick()
    check = the_check(run)
    assert not check.passed
    assert check.severity.value == "ERROR"
    assert check.metadata["failed_files"].value >= 1
