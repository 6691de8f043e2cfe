"""The storage report: live handles as STANDARD, the ledger's unexpired archives in the archive class,
the same figures from a listing of the buckets, and `costalloc storage` on top of them."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import update

from costalloc_pipeline.billing.prices import load_price_table
from costalloc_pipeline.billing.report import storage_report
from costalloc_pipeline.cli import main
from costalloc_pipeline.db import utcnow
from costalloc_pipeline.errors import BadRequest, NotFound
from costalloc_pipeline.schema.repository import move_ledger

HANDLE = 277  # bytes of each handle of Repo.add_handles(n) (size 300)
OTHER_HANDLE = 500


def classes(report, name):
    [entry] = [b for b in report.buckets if b.cost_allocation == name]
    return {c.storage_class: (c.objects, c.bytes) for c in entry.classes}


def test_live_handles_are_standard_and_archives_are_in_the_archive_class(repo):
    report = storage_report(repo.settings)
    assert report.source == "repository"
    assert [b.cost_allocation for b in report.buckets] == [None, "genomics", "imaging"]
    # The default bucket keeps the 2 unmoved handles, the imaging one, and the 3 archived sources.
    assert classes(report, None) == {"STANDARD": (3, 2 * HANDLE + OTHER_HANDLE), "GLACIER": (3, 3 * HANDLE)}
    assert classes(report, "genomics") == {"STANDARD": (3, 3 * HANDLE)}
    assert classes(report, "imaging") == {}
    prices = load_price_table(None)
    [default] = report.buckets[:1]
    expected = prices.storage_month("STANDARD", 2 * HANDLE + OTHER_HANDLE) + prices.storage_month("GLACIER", 3 * HANDLE)
    assert default.monthly_cost == pytest.approx(expected)
    assert report.as_json()["bytes"] == 8 * HANDLE + OTHER_HANDLE


def test_expired_archives_are_not_counted(repo):
    long_ago = utcnow() - dt.timedelta(days=repo.settings.archive_retention_days + 1)
    with repo.engine.begin() as conn:
        conn.execute(update(move_ledger).values(archived_on=long_ago))
    assert classes(storage_report(repo.settings), None) == {"STANDARD": (3, 2 * HANDLE + OTHER_HANDLE)}


def test_the_listing_of_the_buckets_agrees_with_the_records(repo):
    assert storage_report(repo.settings, repo.s3).as_json() == {
        **storage_report(repo.settings).as_json(),
        "source": "s3",
    }


def test_one_cost_allocation_by_id(repo):
    report = storage_report(repo.settings)
    assert report.for_cost_allocation("1").cost_allocation == "genomics"
    assert report.for_cost_allocation("0002").cost_allocation == "imaging"
    with pytest.raises(NotFound, match="cost allocation 3 does not exist"):
        report.for_cost_allocation("3")
    for bad in ("0", "x", "-1", "1" * 19, "syn1"):
        with pytest.raises(BadRequest):
            report.for_cost_allocation(bad)


def run(capsys, *argv):
    code = main(["storage", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_storage_prints_a_table(repo, capsys):
    code, out, _ = run(capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["cost", "allocation", "bucket", "class", "objects", "bytes", "$/month"]
    assert lines[1].split()[:5] == ["(default", "bucket)", repo.settings.default_bucket, "GLACIER", "3"]
    assert lines[2].split()[:3] == ["STANDARD", "3", str(2 * HANDLE + OTHER_HANDLE)]
    assert lines[3].split()[0] == "genomics" and lines[3].split()[2:4] == ["STANDARD", "3"]
    assert lines[4].split()[0] == "imaging" and lines[4].split()[2:4] == ["-", "0"]
    assert lines[5].split()[:3] == ["total", "9", str(8 * HANDLE + OTHER_HANDLE)]
    assert lines[6].startswith("(from the repository's records")


def test_storage_json_and_from_s3(repo, capsys):
    code, out, _ = run(capsys, "--json")
    assert code == 0
    records = json.loads(out)
    code, out, _ = run(capsys, "--json", "--from-s3")
    assert code == 0
    assert json.loads(out) == {**records, "source": "s3"}
    assert records["buckets"][1]["id"] == "1" and records["buckets"][1]["storageClasses"] == [
        {
            "storageClass": "STANDARD",
            "objects": 3,
            "bytes": 3 * HANDLE,
            "monthlyCost": round(load_price_table(None).storage_month("STANDARD", 3 * HANDLE), 6),
        }
    ]


def test_storage_on_a_stack_not_initialised(environment, capsys):
    code, out, err = run(capsys)
    assert (code, out) == (2, "")
    # The schema is there (the fixture migrates it) but nothing was bootstrapped.
    assert err.startswith("costalloc: ") and err.endswith("run `costalloc init` first\n") and err.count("\n") == 1


def test_help(capsys):
    for command in ("storage", "bill"):
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0
        assert "usage: costalloc " + command in capsys.readouterr().out
