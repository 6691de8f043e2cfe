"""boto3 clients of the other AWS services billing talks to: Cost Explorer and CloudWatch.

They follow the repository's S3 settings (s3.py): the same endpoint, so that the embedded moto
server, which answers every service on one port, stands in for all of them; the same region, and
moto's throwaway credentials on a local endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.config import Config
from botocore.exceptions import ClientError

from costalloc_pipeline.config import Settings
from costalloc_pipeline.s3 import aws_client

if TYPE_CHECKING:
    from mypy_boto3_ce import CostExplorerClient
    from mypy_boto3_cloudwatch import CloudWatchClient

# Cost Explorer has one endpoint, in us-east-1, whatever region the buckets are in.
COST_EXPLORER_REGION = "us-east-1"


def _config() -> Config:
    return Config(retries={"mode": "standard", "max_attempts": 5})


def cost_explorer_client(settings: Settings) -> CostExplorerClient:
    client: CostExplorerClient = aws_client("ce", settings.s3_endpoint_url, COST_EXPLORER_REGION, _config())
    return client


def cloudwatch_client(endpoint_url: str | None, region: str) -> CloudWatchClient:
    client: CloudWatchClient = aws_client("cloudwatch", endpoint_url, region, _config())
    return client


def describe(error: Exception) -> str:
    """One line for a refused call: AWS's code and message; a server's HTML error page is left out."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        message = (details.get("Message") or "").strip().splitlines()
        shown = "" if not message or message[0].startswith("<") else f": {message[0]}"
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"{details.get('Code') or status}{shown} ({error.operation_name})"
    return str(error).splitlines()[0] if str(error) else type(error).__name__
