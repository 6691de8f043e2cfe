"""`costalloc restore`: S3 RestoreObject on a real move's archives, idempotent, with its price."""

from __future__ import annotations

import json
import time

import pytest

from costalloc_pipeline.archives.restore import EXTENDED, IN_PROGRESS, REQUESTED, RestoreResult, estimate
from costalloc_pipeline.billing.prices import PriceTable
from costalloc_pipeline.cli import main

from .conftest import PROJECT, Moved
from .test_locate import run


def restores(out: str) -> list[dict]:
    return json.loads(out)["restores"]


def test_restore_requests_and_prices_the_retrieval(moved: Moved, capsys):
    code, out, err = run(capsys, "restore", str(moved.first), "--days", "3")
    assert (code, err) == (0, "")
    key = moved.repo.handle(moved.first).key
    size = len(moved.originals[moved.first])
    archive = f"s3://{moved.repo.settings.default_bucket}/{key}"
    assert out.splitlines() == [
        f"{archive} (GLACIER, {size} bytes): requested (Standard tier, readable for 3 days)",
        # A few hundred bytes: the request is the cost ($0.05 per 1,000 GLACIER Standard restores).
        "estimated cost: $0.000050 (retrieval $0.000000, requests $0.000050, restored copies for 3 days $0.000000)",
    ]
    restore = moved.repo.s3.head_object(Bucket=moved.repo.settings.default_bucket, Key=key)["Restore"]
    assert 'ongoing-request="false"' in restore


def test_restoring_again_is_not_an_error(moved: Moved, capsys):
    assert run(capsys, "restore", str(moved.first), "--json")[0] == 0
    code, out, _ = run(capsys, "restore", str(moved.first), "--json")
    assert code == 0
    assert [r["outcome"] for r in restores(out)] == [EXTENDED]


def test_a_restore_in_progress_reports_its_status_and_is_not_asked_again(moved: Moved, capsys, slow_restores):
    time.sleep(1.1)
    assert run(capsys, "restore", str(moved.first))[0] == 0
    code, out, _ = run(capsys, "restore", str(moved.first))
    assert code == 0
    assert out.splitlines()[0].endswith(": in progress")
    assert "1 restores in progress; `costalloc locate HANDLE` shows when they are done" in out
    assert "requests $0.000000" in out


def test_restore_a_whole_project(moved: Moved, capsys):
    code, out, _ = run(capsys, "restore", "--project", f"syn{PROJECT}", "--tier", "Expedited", "--json")
    assert code == 0
    found = json.loads(out)
    assert [r["outcome"] for r in found["restores"]] == [REQUESTED, REQUESTED]
    size = sum(len(body) for body in moved.originals.values())
    assert found["estimate"]["retrieval"] == pytest.approx(0.03 * size / 1e9)
    assert found["estimate"]["requests"] == pytest.approx(2 * 10.0 / 1000)


def test_an_archive_that_expired_is_reported_and_exit_1(moved: Moved, capsys):
    key = moved.repo.handle(moved.first).key
    moved.repo.s3.delete_object(Bucket=moved.repo.settings.default_bucket, Key=key)
    code, out, _ = run(capsys, "restore", str(moved.first))
    assert code == 1
    assert out.splitlines()[0] == f"s3://{moved.repo.settings.default_bucket}/{key}: gone"


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--tier", "Fast"], "--tier must be one of Standard, Bulk, Expedited, got 'Fast'"),
        (["--days", "0"], "--days must be from 1 to 30, got 0"),
        (["--project", "syn10"], "give either HANDLE or --project P"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_and_requests_nothing(moved: Moved, capsys, argv, reason):
    assert run(capsys, "restore", str(moved.first), *argv) == (2, "", f"costalloc: {reason}\n")
    key = moved.repo.handle(moved.first).key
    assert "Restore" not in moved.repo.s3.head_object(Bucket=moved.repo.settings.default_bucket, Key=key)


def test_a_project_without_archives_is_one_line_and_exit_2(moved: Moved, capsys):
    moved.repo.project(20)
    assert run(capsys, "restore", "--project", "syn20") == (
        2,
        "",
        "costalloc: syn20 has no archived objects (the move ledger records none)\n",
    )


def test_help(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["restore", "--help"])
    assert stop.value.code == 0
    assert "--reinstate" in capsys.readouterr().out


def test_the_estimate_counts_what_each_request_costs():
    prices = PriceTable()
    results = [
        RestoreResult("b", "new", "DEEP_ARCHIVE", 2 * 10**9, REQUESTED),
        # An extension retrieves nothing again: only its request and the longer copy are billed.
        RestoreResult("b", "again", "DEEP_ARCHIVE", 10**9, EXTENDED),
        RestoreResult("b", "waiting", "DEEP_ARCHIVE", 10**9, IN_PROGRESS),
    ]
    cost = estimate(prices, results, "Standard", 30)
    assert cost.retrieval == pytest.approx(2 * 0.02)
    assert cost.requests == pytest.approx(2 * 0.10 / 1000)
    assert cost.restored_copies == pytest.approx(3 * 0.023)


def test_an_unknown_handle_is_one_line_and_exit_2(moved: Moved, capsys):
    assert run(capsys, "restore", "999999", "--reinstate") == (2, "", "costalloc: file handle 999999 does not exist\n")
