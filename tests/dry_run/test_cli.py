"""`costalloc plan` against a seeded stack (SQLite and PostgreSQL, moto's S3 server): it writes
nothing, and what it announces is what the relocation run then does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, inspect, select, text

from costalloc_pipeline.cli import main
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.naming import bucket_name_for
from costalloc_pipeline.placement.progress import project_progress
from costalloc_pipeline.placement.rule import load_placement
from costalloc_pipeline.replica.refresh import refresh_entity_replication, refresh_file_replication
from costalloc_pipeline.schema.repository import NodeType, node


@pytest.fixture
def seeded(stack, environment):
    """The seeded stack with a refreshed replica, and the COSTALLOC_* environment the command reads."""
    replica = engine_for(stack.settings.replica_url)
    refresh_entity_replication(stack.repository, replica)
    refresh_file_replication(stack.repository, replica)
    return stack


def plan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["plan", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def plan_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = plan(capsys, *argv, "--json")
    assert (code, err) == (0, "")
    return json.loads(out)


def snapshot(stack) -> dict[str, Any]:
    """Every row of every table of both databases, and every object (and version) of every bucket."""
    state: dict[str, Any] = {}
    for url in {stack.settings.repository_url, stack.settings.replica_url}:
        with engine_for(url).connect() as conn:
            for table in sorted(inspect(conn).get_table_names()):
                quoted = conn.dialect.identifier_preparer.quote_identifier(table)
                rows = conn.execute(text(f"SELECT * FROM {quoted}")).all()
                state[f"{url} {table}"] = sorted(map(repr, rows))
    buckets = sorted(bucket["Name"] for bucket in stack.s3.list_buckets()["Buckets"])
    state["buckets"] = buckets
    for bucket in buckets:
        versions = stack.s3.list_object_versions(Bucket=bucket)
        state[f"s3 {bucket}"] = sorted(
            (v["Key"], v["VersionId"], v["ETag"], v["Size"], v.get("StorageClass"))
            for v in versions.get("Versions", [])
        )
        uploads = stack.s3.list_multipart_uploads(Bucket=bucket)
        state[f"uploads {bucket}"] = [u["UploadId"] for u in uploads.get("Uploads", [])]
    return state


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["plan", "--help"])
    assert exit_.value.code == 0
    assert "writes nothing" in capsys.readouterr().out


def test_a_plan_writes_nothing(seeded, capsys):
    project, other = seeded.report.project_ids[:2]
    seeded.assign(other, "imaging")
    before = snapshot(seeded)
    code, out, err = plan(capsys, f"syn{project}", "--to", "Genomics")
    assert (code, err) == (0, "")
    new_bucket = bucket_name_for(seeded.settings.stack, "genomics")
    assert out.splitlines()[0] == (
        f"dry run: assign syn{project} to cost allocation genomics (bucket {new_bucket}, would be created with "
        "the cost allocation); nothing is written"
    )
    plan_json(capsys, f"syn{project}", "--to", "genomics")
    plan_json(capsys, f"syn{other}")
    plan_json(capsys, str(other), "--to", "imaging", "--assume-standard")
    after = snapshot(seeded)
    assert new_bucket not in after["buckets"]
    assert after == before


def test_the_plan_is_what_the_run_then_does(seeded, capsys):
    project = seeded.report.project_ids[0]
    planned = plan_json(capsys, f"syn{project}", "--to", "genomics")
    bucket = bucket_name_for(seeded.settings.stack, "genomics")
    assert planned["target"] == {
        "name": "genomics",
        "bucket": bucket,
        "exists": False,
        "current_name": None,
        "current_bucket": seeded.report.default_bucket,
    }
    assert planned["read_from"] == "live repository"
    assert planned["storage_classes"] == "listed"
    [by_bucket] = planned["to_move"]["by_source_bucket"]
    assert by_bucket["name"] == seeded.report.default_bucket
    assert [share["name"] for share in planned["to_move"]["by_storage_class"]] == ["STANDARD"]
    # The seed shares handles across projects: those another (unassigned) project uses stay.
    assert planned["conflicts"]["files"] > 0
    assert {c["other_target_bucket"] for c in planned["conflicts"]["by_project"]} == {seeded.report.default_bucket}
    assert planned["bundles"]["total"] == 1

    seeded.assign(project, "genomics")
    [run] = seeded.runner.tick()
    assert run.success
    capsys.readouterr()  # Dagster's own log lines
    with seeded.repository.connect() as conn:
        done = project_progress(conn, project, load_placement(conn))
    assert (done.misplaced_files, done.placed_files) == (0, planned["to_move"]["files"])
    assert done.conflict_files == planned["conflicts"]["files"]
    assert done.conflict_bytes == planned["conflicts"]["bytes"]
    listed = seeded.s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert len(listed) == planned["to_move"]["objects"]
    assert sum(item["Size"] for item in listed) == planned["to_move"]["bytes"]
    # The grace period is 0 in the tests: the run archived every source it announced.
    archived = [
        item
        for item in seeded.s3.list_objects_v2(Bucket=seeded.report.default_bucket)["Contents"]
        if item.get("StorageClass") == seeded.settings.archive_storage_class
    ]
    assert len(archived) == planned["requests"]["archive_copy_object"]

    again = plan_json(capsys, f"syn{project}", "--to", "genomics")
    assert (again["target"]["exists"], again["to_move"]["files"]) == (True, 0)
    assert again["conflicts"]["files"] == planned["conflicts"]["files"]


def test_an_unassign_plan_brings_the_files_back(seeded, capsys):
    project = seeded.report.project_ids[1]
    seeded.assign(project, "imaging")
    [run] = seeded.runner.tick()
    assert run.success
    capsys.readouterr()  # Dagster's own log lines
    bucket = bucket_name_for(seeded.settings.stack, "imaging")
    in_allocation = seeded.s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    back = plan_json(capsys, f"syn{project}")
    assert back["target"] == {
        "name": None,
        "bucket": seeded.report.default_bucket,
        "exists": True,
        "current_name": "imaging",
        "current_bucket": bucket,
    }
    # Right after the run: read live, the plan sees the files where the run put them.
    [source] = back["to_move"]["by_source_bucket"]
    assert (source["name"], source["objects"]) == (bucket, len(in_allocation))
    assert source["bytes"] == sum(item["Size"] for item in in_allocation)
    assert back["conflicts"]["files"] == 0, "every project wants the default bucket then"
    [change_back, change_default] = back["costs"]["buckets"]
    assert (change_back["bucket"], change_back["live_bytes"]) == (bucket, -source["bytes"])
    assert change_default["live_bytes"] == source["bytes"]
    assert back["costs"]["monthly_live"] == pytest.approx(0)
    code, out, _ = plan(capsys, f"syn{project}")
    assert code == 0
    assert out.startswith(f"dry run: unassign syn{project} (its files go back to the default bucket ")


def _folder_id(stack) -> int:
    with stack.repository.connect() as conn:
        return conn.execute(select(func.min(node.c.id)).where(node.c.node_type == NodeType.FOLDER.value)).scalar_one()


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["syn999999"], "entity syn999999 does not exist"),
        (["syn{folder}"], "is a folder; only projects have a cost allocation"),
        (["syn{project}", "--to", "no spaces here"], "may contain only letters"),
        (["syn{project}", "--to", " "], "name must not be empty"),
        (["project-1"], "is not of the form syn123 or 123"),
        (["syn{project}", "--latency", "0"], "--latency must be greater than 0"),
        (["syn{project}", "--bundle-concurrency", "-1"], "--bundle-concurrency must be greater than 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(seeded, capsys, argv, reason):
    values = {"folder": _folder_id(seeded), "project": seeded.report.project_ids[0]}
    before = snapshot(seeded)
    code, out, err = plan(capsys, *(arg.format(**values) for arg in argv))
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1 and reason in err
    assert snapshot(seeded) == before
