"""The storage figures in CloudWatch (moto's server): from `costalloc storage --publish` and from the
Dagster asset `cost_allocation_storage`, when COSTALLOC_CLOUDWATCH_NAMESPACE is set."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from costalloc_pipeline.billing.aws import cloudwatch_client
from costalloc_pipeline.cli import main
from costalloc_pipeline.config import Settings
from costalloc_pipeline.defs.assets.storage_report import cost_allocation_storage
from costalloc_pipeline.defs.location import build_resources

from .conftest import NAMESPACE, OTHER, PROJECT

HANDLE = 277
# Per allocation (default, genomics, imaging) and per project (10, 20): 3 metrics each.
DATA = 3 * 3 + 3 * 2


def figure(settings: Settings, metric: str, dimension: str, value: str) -> float | None:
    cloudwatch = cloudwatch_client(settings.s3_endpoint_url, settings.s3_region)
    now = dt.datetime.now(dt.UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=metric,
        Dimensions=[{"Name": dimension, "Value": value}],
        StartTime=now - dt.timedelta(hours=1),
        EndTime=now + dt.timedelta(hours=1),
        Period=3600,
        Statistics=["Maximum"],
    )["Datapoints"]
    return points[0]["Maximum"] if points else None


def assert_published(settings: Settings) -> None:
    assert figure(settings, "Bytes", "CostAllocation", "default") == 2 * HANDLE + 500
    assert figure(settings, "Objects", "CostAllocation", "genomics") == 3
    assert figure(settings, "Bytes", "CostAllocation", "genomics") == 3 * HANDLE
    # Project 10's 2 unmoved handles head for genomics; project 20's one for imaging.
    assert figure(settings, "MisplacedBytes", "CostAllocation", "genomics") == 2 * HANDLE
    assert figure(settings, "MisplacedBytes", "CostAllocation", "imaging") == 500
    assert figure(settings, "MisplacedBytes", "CostAllocation", "default") == 0
    assert figure(settings, "Bytes", "Project", f"syn{PROJECT}") == 5 * HANDLE
    assert figure(settings, "Objects", "Project", f"syn{PROJECT}") == 5
    assert figure(settings, "MisplacedBytes", "Project", f"syn{OTHER}") == 500


def test_storage_publish_puts_the_figures_into_cloudwatch(repo, monkeypatch, capsys):
    monkeypatch.setenv("COSTALLOC_CLOUDWATCH_NAMESPACE", NAMESPACE)
    assert main(["storage", "--json", "--publish"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("{")
    assert captured.err == f"published {DATA} metrics to CloudWatch namespace {NAMESPACE}\n"
    assert_published(repo.settings)


def test_storage_publish_without_a_namespace_is_refused(repo, capsys):
    assert main(["storage", "--publish"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "costalloc: --publish needs COSTALLOC_CLOUDWATCH_NAMESPACE (the CloudWatch namespace); it is empty\n"
    )
    assert figure(repo.settings, "Bytes", "CostAllocation", "default") is None


@pytest.mark.parametrize("namespace", [NAMESPACE, ""])
def test_the_asset_publishes_when_the_namespace_is_set(repo, namespace):
    settings = repo.settings.with_changes(cloudwatch_namespace=namespace)
    result = dg.materialize(
        [cost_allocation_storage],
        instance=dg.DagsterInstance.ephemeral(),
        resources={key: build_resources(settings)[key] for key in ("repository", "s3", "settings")},
    )
    assert result.success
    if namespace:
        assert_published(settings)
    else:
        assert figure(settings, "Bytes", "CostAllocation", "default") is None
