"""Bucket headroom: the account's buckets (moto's server over HTTP) against the quota, the refusal
of a new cost allocation when the account is full, `costalloc buckets` and the asset check."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from sqlalchemy import func, select

from costalloc_pipeline.cli import main
from costalloc_pipeline.db import engine_for
from costalloc_pipeline.defs.assets.headroom import headroom_check_result
from costalloc_pipeline.defs.resources.databases import RepositoryDatabase
from costalloc_pipeline.defs.resources.s3 import RepositoryS3
from costalloc_pipeline.defs.resources.settings import CostAllocSettings
from costalloc_pipeline.headroom import SETTING, account_buckets, bucket_quota, measure, quotas_client
from costalloc_pipeline.s3 import s3_client
from costalloc_pipeline.schema.repository import cost_allocation, cost_allocation_change, storage_location


def test_moto_has_no_s3_quota_so_the_setting_applies(settings):
    quotas = quotas_client(settings.s3_endpoint_url, settings.s3_region)
    # moto answers NoSuchResourceException, then a 500 for the AWS default: the setting it is.
    assert bucket_quota(quotas, 123).value == 123
    assert bucket_quota(quotas, 123).source == SETTING
    assert bucket_quota(None, 7).value == 7


def test_counts_every_bucket_and_ours_among_them(settings):
    s3 = s3_client(settings)
    for name in ("other-a", "other-b", "test-ca-x"):
        s3.create_bucket(Bucket=name)
    assert sorted(account_buckets(s3)) == ["other-a", "other-b", "test-ca-x"]
    headroom = measure(s3, None, 4, ["test-ca-x", "test-ca-gone"])
    assert (headroom.used, headroom.headroom, headroom.cost_allocation_buckets) == (3, 1, 1)
    assert headroom.percent_used == 75.0
    assert not headroom.near_quota
    assert measure(s3, None, 3, []).headroom == 0


def _rows(settings) -> tuple[int, int, int]:
    with engine_for(settings.repository_url).connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (cost_allocation, storage_location, cost_allocation_change)
        )


def test_a_new_cost_allocation_is_refused_with_a_503_when_the_account_is_full(settings, admin_token, entities):
    from fastapi.testclient import TestClient

    from costalloc_pipeline.api import create_app

    entities.project(1)
    entities.project(2)
    s3 = s3_client(settings)
    # The default bucket and one cost allocation's: a quota of 2 is full.
    full = settings.with_changes(bucket_quota=2)
    with TestClient(create_app(full), headers={"Authorization": f"Bearer {admin_token}"}) as api:
        first = settings.with_changes(bucket_quota=3)
        with TestClient(create_app(first), headers={"Authorization": f"Bearer {admin_token}"}) as roomy:
            assert roomy.post("/entity/syn1/costAllocation", json={"name": "genomics"}).status_code == 201
        before, buckets = _rows(settings), sorted(account_buckets(s3))
        answer = api.post("/entity/syn2/costAllocation", json={"name": "imaging"})
        assert answer.status_code == 503
        reason = answer.json()["reason"]
        assert "2 general purpose buckets" in reason and "quota is 2" in reason and "nothing was written" in reason
        assert _rows(settings) == before
        assert sorted(account_buckets(s3)) == buckets
        # An existing cost allocation needs no new bucket: still accepted when the account is full.
        assert api.post("/entity/syn2/costAllocation", json={"name": "genomics"}).status_code == 200


def test_costalloc_buckets(environment, admin_token, capsys, monkeypatch):
    s3 = s3_client(environment)
    s3.create_bucket(Bucket="test-ca-made-by-hand")
    monkeypatch.setenv("COSTALLOC_BUCKET_QUOTA", "4")
    assert main(["buckets"]) == 0
    assert capsys.readouterr().out == (
        "2 of 4 general purpose buckets used (50.0%), 2 left; quota from COSTALLOC_BUCKET_QUOTA; "
        "0 are cost allocation buckets\n"
    )
    assert main(["buckets", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "bucketsUsed": 2,
        "quota": 4,
        "quotaSource": "COSTALLOC_BUCKET_QUOTA",
        "headroom": 2,
        "percentUsed": 50.0,
        "costAllocationBuckets": 0,
    }


def test_costalloc_buckets_help_and_bad_input(environment, admin_token, capsys, monkeypatch):
    with pytest.raises(SystemExit) as done:
        main(["buckets", "--help"])
    assert done.value.code == 0
    assert "Service Quotas" in capsys.readouterr().out
    monkeypatch.setenv("COSTALLOC_BUCKET_QUOTA", "0")
    assert main(["buckets"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "costalloc: COSTALLOC_BUCKET_QUOTA must be an integer >= 1, got '0'\n"


@pytest.mark.parametrize(("quota", "passed"), [(3, False), (4, True)])
def test_the_check_warns_from_80_percent(settings, admin_token, quota, passed):
    s3 = s3_client(settings)
    s3.create_bucket(Bucket="other-a")
    s3.create_bucket(Bucket="other-b")
    # The check's result from the headroom the storage report measures with its real resources.
    headroom = RepositoryS3(endpoint_url=settings.s3_endpoint_url, region_name="us-east-1").bucket_headroom(
        RepositoryDatabase(url=settings.repository_url).cost_allocation_buckets(),
        CostAllocSettings.from_settings(settings.with_changes(bucket_quota=quota)).bucket_quota,
    )
    result = headroom_check_result(headroom)
    assert result.passed is passed
    assert result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["buckets_used"].value == 3
    assert result.metadata["bucket_quota"].value == quota
