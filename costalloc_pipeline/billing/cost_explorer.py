"""What AWS billed, per cost allocation: Cost Explorer's monthly unblended cost grouped by the
cost-allocation tag the buckets carry (buckets.py).

The tag only groups costs once it is activated as a cost allocation tag in Billing (it then applies
from that moment on, not to earlier costs); `activate_tag` does it where the account allows.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from costalloc_pipeline.billing.aws import describe
from costalloc_pipeline.buckets import COST_ALLOCATION_TAG
from costalloc_pipeline.errors import BadRequest, Unavailable

if TYPE_CHECKING:
    from mypy_boto3_ce import CostExplorerClient

METRIC = "UnblendedCost"
_MONTH = re.compile(r"(\d{4})-(\d{2})")
# Cost Explorer's key of a group: "<tag key>$<value>", the value empty for untagged costs.
_UNTAGGED = ""


@dataclass(frozen=True)
class Month:
    first_day: dt.date

    @property
    def end(self) -> dt.date:
        """The first day of the next month: Cost Explorer's end is exclusive."""
        year, month = divmod(self.first_day.month, 12)
        return dt.date(self.first_day.year + year, month + 1, 1)

    def __str__(self) -> str:
        return f"{self.first_day:%Y-%m}"


def parse_month(raw: str, today: dt.date) -> Month:
    """`YYYY-MM`, not after the current month (the current one is costs so far)."""
    match = _MONTH.fullmatch(raw.strip())
    if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1:
        raise BadRequest(f"--month must be YYYY-MM, got {raw!r}")
    month = Month(dt.date(int(match.group(1)), int(match.group(2)), 1))
    if month.first_day > today.replace(day=1):
        raise BadRequest(f"--month {month} is in the future (this month is {today:%Y-%m})")
    return month


@dataclass(frozen=True)
class AllocationCost:
    # The tag's value: the cost allocation's name, "default" for the default bucket; None: untagged.
    cost_allocation: str | None
    amount: float
    unit: str

    def as_json(self) -> dict[str, Any]:
        return {"costAllocation": self.cost_allocation, "amount": self.amount, "unit": self.unit}


@dataclass(frozen=True)
class Bill:
    month: Month
    # Whether AWS may still revise it (the month is not closed yet).
    estimated: bool
    costs: tuple[AllocationCost, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "month": str(self.month),
            "metric": METRIC,
            "tag": COST_ALLOCATION_TAG,
            "estimated": self.estimated,
            "costs": [cost.as_json() for cost in self.costs],
        }


def _tag_value(group_key: str) -> str | None:
    _, _, value = group_key.partition("$")
    return None if value == _UNTAGGED else value


def _refused(action: str, error: Exception) -> Unavailable:
    return Unavailable(f"Cost Explorer refused {action}: {describe(error)}")


def monthly_bill(ce: CostExplorerClient, month: Month) -> Bill:
    """The month's unblended cost per value of the cost-allocation tag, largest first."""
    amounts: dict[str | None, tuple[float, str]] = {}
    estimated = False
    request: dict[str, Any] = {
        "TimePeriod": {"Start": month.first_day.isoformat(), "End": month.end.isoformat()},
        "Granularity": "MONTHLY",
        "Metrics": [METRIC],
        "GroupBy": [{"Type": "TAG", "Key": COST_ALLOCATION_TAG}],
    }
    try:
        while True:
            answer = ce.get_cost_and_usage(**request)
            for period in answer.get("ResultsByTime", []):
                estimated = estimated or bool(period.get("Estimated"))
                for group in period.get("Groups", []):
                    value = _tag_value(group["Keys"][0])
                    metric = group["Metrics"][METRIC]
                    total, _ = amounts.get(value, (0.0, ""))
                    amounts[value] = (total + float(metric["Amount"]), metric.get("Unit", "USD"))
            token = answer.get("NextPageToken")
            if not token:
                break
            request["NextPageToken"] = token
    except (ClientError, BotoCoreError) as error:
        raise _refused("get_cost_and_usage", error) from None
    costs = sorted(
        (AllocationCost(value, amount, unit) for value, (amount, unit) in amounts.items()),
        key=lambda cost: (-cost.amount, cost.cost_allocation or ""),
    )
    return Bill(month, estimated, tuple(costs))


def activate_tag(ce: CostExplorerClient) -> list[str]:
    """Activates the cost-allocation tag in Billing; the errors AWS gives per tag, if any."""
    try:
        answer = ce.update_cost_allocation_tags_status(
            CostAllocationTagsStatus=[{"TagKey": COST_ALLOCATION_TAG, "Status": "Active"}]
        )
    except (ClientError, BotoCoreError) as error:
        raise _refused("update_cost_allocation_tags_status", error) from None
    return [f"{item.get('TagKey')}: {item.get('Message') or item.get('Code')}" for item in answer.get("Errors", [])]
