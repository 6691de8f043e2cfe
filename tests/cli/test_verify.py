"""`costalloc verify` in process: exit 0 on a clean repository, 1 with exactly what is broken."""

from __future__ import annotations

import json

import pytest
from faults.repository import make_repo
from sqlalchemy import select

from costalloc_pipeline.cli import main
from costalloc_pipeline.config import Settings
from costalloc_pipeline.mover.bundle import move_bundle
from costalloc_pipeline.schema.repository import files

PROJECT = 10


@pytest.fixture
def repo(environment: Settings, entities):
    repo = make_repo(environment, entities)
    repo.project(PROJECT, "genomics")
    moved = repo.add_handles(3)
    move_bundle(repo.context(PROJECT), list(moved))
    repo.add_handles(2)
    return repo


def verify(capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, str, str]:
    code = main(["verify", *options])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_clean_repository_passes(repo, capsys):
    code, out, _ = verify(capsys)
    assert code == 0
    assert out.splitlines() == [
        "audited 5 handles (all 5 AVAILABLE handles in repository-managed storage), 3 archives, 3 ledger rows",
        "no violations",
    ]


def test_a_broken_handle_is_reported_alone(repo, capsys):
    broken = 5004
    handle = repo.handle(broken)
    repo.s3.delete_object(Bucket=handle.bucket_name, Key=handle.key)

    code, out, _ = verify(capsys)
    assert code == 1
    assert out.splitlines()[1:] == [f"I1: object missing: 1 (first: {broken})", "1 violation"]

    code, out, _ = verify(capsys, "--json")
    report = json.loads(out)
    assert code == 1
    assert report["totalViolations"] == 1
    assert report["violations"] == {"I1: object missing": {"count": 1, "firstIds": [broken]}}


def test_a_sample(repo, capsys):
    code, out, _ = verify(capsys, "--sample", "2", "--concurrency", "2", "--read-back")
    assert code == 0
    assert out.startswith("audited 2 handles (a random sample of 5 AVAILABLE handles")


@pytest.mark.parametrize("options", [("--sample", "0"), ("--concurrency", "0")])
def test_bad_options_are_one_line_and_exit_2(repo, capsys, options):
    code, out, err = verify(capsys, *options)
    assert (code, out) == (2, "")
    assert err.startswith("costalloc: --") and err.count("\n") == 1


def test_before_init_says_so(environment, capsys):
    code, _, err = verify(capsys)
    assert code == 2
    assert err.startswith("costalloc: ") and err.endswith("run `costalloc init` first\n")


def test_after_the_pipeline_ran_and_after_one_handle_broke(stack, capsys, monkeypatch):
    """The demo's flow (a seeded repository, a project assigned, its run), then verify."""
    for name, value in {
        "COSTALLOC_REPOSITORY_URL": stack.settings.repository_url,
        "COSTALLOC_REPLICA_URL": stack.settings.replica_url,
        "COSTALLOC_S3_ENDPOINT_URL": str(stack.settings.s3_endpoint_url),
        "COSTALLOC_STACK": stack.settings.stack,
    }.items():
        monkeypatch.setenv(name, value)
    project = stack.report.project_ids[0]
    stack.assign(project, "genomics")
    [run] = stack.runner.tick()
    assert run.success
    code, out, _ = verify(capsys)
    assert (code, out.splitlines()[-1]) == (0, "no violations")

    victim = stack.report.preview_handle_ids[0]
    with stack.repository.connect() as conn:
        handle = conn.execute(select(files).where(files.c.id == victim)).one()
    stack.s3.put_object(Bucket=handle.bucket_name, Key=handle.key, Body=b"not the preview any more")
    code, out, _ = verify(capsys)
    assert code == 1
    assert out.splitlines()[1:] == [f"I1: object size differs from the handle: 1 (first: {victim})", "1 violation"]
