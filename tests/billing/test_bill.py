"""`costalloc bill` end to end over HTTP: Cost Explorer is moto's server, whose answers are preset
through its own API (it tracks no costs itself)."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request

import pytest

from costalloc_pipeline.billing.cost_explorer import Month, parse_month
from costalloc_pipeline.cli import main
from costalloc_pipeline.errors import BadRequest

TAG = "costalloc:cost-allocation"


def preset(endpoint: str, *results: dict) -> None:
    """Queues Cost Explorer answers: each new request (by its body) takes the next one."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/static/ce/cost-and-usage-results",
        data=json.dumps({"results": list(results)}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 201


def group(value: str, amount: str) -> dict:
    return {"Keys": [f"{TAG}${value}"], "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}}


def period(*groups: dict, estimated: bool = False) -> dict:
    return {
        "TimePeriod": {"Start": "2026-01-01", "End": "2026-02-01"},
        "Total": {},
        "Groups": list(groups),
        "Estimated": estimated,
    }


def bill(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["bill", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_months() -> None:
    today = dt.date(2026, 3, 15)
    assert parse_month("2026-03", today) == Month(dt.date(2026, 3, 1))
    assert Month(dt.date(2025, 12, 1)).end == dt.date(2026, 1, 1)
    assert Month(dt.date(2026, 2, 1)).end == dt.date(2026, 3, 1)
    for bad in ("2026-04", "2026-13", "2026-00", "2026-1", "26-01", "2026/01", "", "0000-01"):
        with pytest.raises(BadRequest):
            parse_month(bad, today)


def test_the_bill_per_cost_allocation_over_pages(environment, s3_endpoint, capsys):
    first = {"ResultsByTime": [period(group("genomics", "12.5"), group("", "0.25"))], "NextPageToken": "page-2"}
    second = {"ResultsByTime": [period(group("default", "3.125"), group("genomics", "0.5"))]}
    preset(s3_endpoint, first, second)

    code, out, err = bill(capsys, "--month", "2026-01")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"2026-01: UnblendedCost by tag {TAG} (final)",
        "genomics    13.00 USD",
        "default      3.12 USD",
        "(untagged)   0.25 USD",
    ]
    # The same requests again: moto answers them as before.
    code, out, _ = bill(capsys, "--month", "2026-01", "--json")
    assert code == 0
    assert json.loads(out) == {
        "month": "2026-01",
        "metric": "UnblendedCost",
        "tag": TAG,
        "estimated": False,
        "costs": [
            {"costAllocation": "genomics", "amount": 13.0, "unit": "USD"},
            {"costAllocation": "default", "amount": 3.125, "unit": "USD"},
            {"costAllocation": None, "amount": 0.25, "unit": "USD"},
        ],
    }


def test_a_month_without_costs(environment, s3_endpoint, capsys):
    code, out, _ = bill(capsys, "--month", "2025-06")
    assert code == 0
    assert out.splitlines()[1].startswith(f"no costs (is {TAG} activated as a cost allocation tag?")


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--month", "2999-01"], "is in the future"),
        (["--month", "2026-13"], "--month must be YYYY-MM"),
        (["--month", "january"], "--month must be YYYY-MM"),
        ([], "give --month YYYY-MM, or --activate-tag"),
    ],
)
def test_bad_months_are_refused(environment, s3_endpoint, capsys, argv, reason):
    code, out, err = bill(capsys, *argv)
    assert (code, out) == (2, "")
    assert reason in err and err.startswith("costalloc: ") and err.count("\n") == 1


def test_activating_the_tag_is_refused_by_moto_in_one_line(environment, s3_endpoint, capsys):
    # moto's server does not implement UpdateCostAllocationTagsStatus (a 500): the refusal is reported.
    code, out, err = bill(capsys, "--activate-tag")
    assert (code, out) == (2, "")
    assert err == (
        "costalloc: Cost Explorer refused update_cost_allocation_tags_status: 500 (UpdateCostAllocationTagsStatus)\n"
    )
