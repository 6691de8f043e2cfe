"""The progress check passes at zero misplaced files, warns while files move, errors on failures."""

from __future__ import annotations

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
    assert check.metadata["misplaced_files"].value == 0
    assert check.metadata["percent_done"].value == 100.0


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

    again = stack.runner.run(str(project))
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
