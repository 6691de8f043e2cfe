"""The storage report's live figures as CloudWatch metrics, so alarms and dashboards can follow them.

Per cost allocation (dimension `CostAllocation`, `default` for the default bucket, as its tag says)
and per associated project (dimension `Project`, a syn id): `Bytes` and `Objects` of the AVAILABLE handles
(storage.bucket_usage, as the Dagster asset `cost_allocation_storage` reports them; archives are
not live data and are left out) and `MisplacedBytes` (bytes still outside the target bucket, from
placement/progress.py). An allocation's misplaced bytes are those of the projects headed for its
bucket.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from costalloc_pipeline.billing.aws import describe
from costalloc_pipeline.buckets import DEFAULT_BUCKET_TAG_VALUE
from costalloc_pipeline.errors import Unavailable
from costalloc_pipeline.naming import format_entity_id
from costalloc_pipeline.placement.progress import Progress
from costalloc_pipeline.storage import BucketUsage

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.literals import StandardUnitType
    from mypy_boto3_cloudwatch.type_defs import MetricDatumTypeDef

ALLOCATION_DIMENSION = "CostAllocation"
PROJECT_DIMENSION = "Project"
# PutMetricData takes at most 1,000 data per request.
_BATCH = 1000


def _datum(
    name: str, dimension: str, value: str, figure: int, unit: StandardUnitType, timestamp: dt.datetime
) -> MetricDatumTypeDef:
    return {
        "MetricName": name,
        "Dimensions": [{"Name": dimension, "Value": value}],
        "Timestamp": timestamp,
        "Value": float(figure),
        "Unit": unit,
    }


def storage_data(
    usage: Sequence[BucketUsage], progress: Sequence[Progress], timestamp: dt.datetime
) -> list[MetricDatumTypeDef]:
    misplaced_by_bucket: dict[str, int] = {}
    for project in progress:
        misplaced_by_bucket[project.target_bucket] = (
            misplaced_by_bucket.get(project.target_bucket, 0) + project.misplaced_bytes
        )
    data: list[MetricDatumTypeDef] = []
    for bucket in usage:
        name = bucket.cost_allocation or DEFAULT_BUCKET_TAG_VALUE
        data += [
            _datum("Bytes", ALLOCATION_DIMENSION, name, bucket.bytes, "Bytes", timestamp),
            _datum("Objects", ALLOCATION_DIMENSION, name, bucket.files, "Count", timestamp),
            _datum(
                "MisplacedBytes",
                ALLOCATION_DIMENSION,
                name,
                misplaced_by_bucket.get(bucket.bucket, 0),
                "Bytes",
                timestamp,
            ),
        ]
    for project in progress:
        syn = format_entity_id(project.project_id)
        data += [
            _datum("Bytes", PROJECT_DIMENSION, syn, project.placed_bytes + project.misplaced_bytes, "Bytes", timestamp),
            _datum(
                "Objects", PROJECT_DIMENSION, syn, project.placed_files + project.misplaced_files, "Count", timestamp
            ),
            _datum("MisplacedBytes", PROJECT_DIMENSION, syn, project.misplaced_bytes, "Bytes", timestamp),
        ]
    return data


def _batches(data: list[MetricDatumTypeDef]) -> Iterator[list[MetricDatumTypeDef]]:
    for start in range(0, len(data), _BATCH):
        yield data[start : start + _BATCH]


def publish_storage(
    cloudwatch: CloudWatchClient, namespace: str, usage: Sequence[BucketUsage], progress: Sequence[Progress]
) -> int:
    """Puts the figures in `namespace`, all with one timestamp; how many data were put."""
    data = storage_data(usage, progress, dt.datetime.now(dt.UTC))
    try:
        for batch in _batches(data):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=batch)
    except (ClientError, BotoCoreError) as error:
        raise Unavailable(f"CloudWatch refused the storage metrics: {describe(error)}") from None
    return len(data)
