"""Provisioning of the buckets this project manages: each cost allocation's bucket and the default one.

Every managed bucket carries the same configuration, so the mover can archive into any of them
(DESIGN.md section 4 step 5) and billing can facet storage cost by the cost-allocation tag.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

from botocore.exceptions import BotoCoreError, ClientError

from costalloc_pipeline.config import Settings
from costalloc_pipeline.errors import BadRequest, Conflict, CostAllocError, Unavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType
    from mypy_boto3_s3.type_defs import BucketLifecycleConfigurationTypeDef, CreateBucketRequestTypeDef, TagTypeDef

log = logging.getLogger(__name__)

# The mover tags an archived copy with this; the lifecycle rule below expires exactly those objects.
ARCHIVE_TAG = ("costalloc:archived", "true")
COST_ALLOCATION_TAG = "costalloc:cost-allocation"
STACK_TAG = "costalloc:stack"
DEFAULT_BUCKET_TAG_VALUE = "default"
ABORT_INCOMPLETE_MULTIPART_DAYS = 7
ARCHIVE_RULE_ID = "costalloc-expire-archived"
ABORT_MULTIPART_RULE_ID = "costalloc-abort-incomplete-multipart"


def lifecycle_configuration(settings: Settings) -> BucketLifecycleConfigurationTypeDef:
    """Rules installed on every managed bucket (the LifecycleConfiguration argument of boto3)."""
    key, value = ARCHIVE_TAG
    return {
        "Rules": [
            {
                "ID": ARCHIVE_RULE_ID,
                "Filter": {"Tag": {"Key": key, "Value": value}},
                "Status": "Enabled",
                # Counted from the archived copy's creation, which is why the mover archives by copying.
                "Expiration": {"Days": settings.archive_retention_days},
            },
            {
                "ID": ABORT_MULTIPART_RULE_ID,
                "Filter": {"Prefix": ""},
                "Status": "Enabled",
                # Parts of an interrupted multipart copy are billed until aborted.
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_INCOMPLETE_MULTIPART_DAYS},
            },
        ]
    }


def bucket_tags(cost_allocation_name: str, settings: Settings) -> list[TagTypeDef]:
    return [
        {"Key": COST_ALLOCATION_TAG, "Value": cost_allocation_name},
        {"Key": STACK_TAG, "Value": settings.stack},
    ]


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def provisioning_error(error: ClientError | BotoCoreError, bucket: str) -> CostAllocError:
    """What the caller is told when S3 refuses: a reason to act on, never S3's stack."""
    if isinstance(error, BotoCoreError):
        return Unavailable(f"S3 is unavailable, bucket {bucket} was not created: {error}")
    code = _error_code(error)
    message = error.response.get("Error", {}).get("Message", "")
    if code == "TooManyBuckets":
        return Unavailable(
            f"bucket {bucket} cannot be created: the AWS account has reached its bucket limit "
            "(TooManyBuckets); raise the account's S3 bucket quota or remove unused buckets, then retry"
        )
    if code == "BucketAlreadyExists":
        return Conflict(
            f"bucket {bucket} already exists and belongs to another AWS account; choose another cost allocation name"
        )
    if code == "InvalidBucketName":
        return BadRequest(f"bucket name {bucket} is not accepted by S3: {message}")
    return Unavailable(f"S3 refused {error.operation_name} on bucket {bucket} ({code or 'error'}: {message})")


def create_bucket_request(bucket: str, region: str) -> CreateBucketRequestTypeDef:
    """The CreateBucket arguments for a bucket in `region`."""
    request: CreateBucketRequestTypeDef = {"Bucket": bucket}
    # Outside us-east-1, S3 wants the region restated for the bucket.
    if region != "us-east-1":
        # S3 takes any region it knows, also one newer than the stubs' list of them.
        request["CreateBucketConfiguration"] = {"LocationConstraint": cast("BucketLocationConstraintType", region)}
    return request


def _create(s3: S3Client, bucket: str, settings: Settings) -> bool:
    """Create the bucket; False when it already exists and is ours (provisioning is then a re-apply)."""
    try:
        s3.create_bucket(**create_bucket_request(bucket, settings.s3_region))
    except ClientError as error:
        if _error_code(error) == "BucketAlreadyOwnedByYou":
            return False
        raise
    # us-east-1 answers 200 to a re-create of one's own bucket too, so True means "may be new".
    return True


def _configure(s3: S3Client, bucket: str, cost_allocation_name: str, settings: Settings) -> None:
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]
        },
    )
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": bucket_tags(cost_allocation_name, settings)})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=lifecycle_configuration(settings))


def delete_new_bucket(s3: S3Client, bucket: str) -> None:
    """Undo a CreateBucket whose surroundings failed. S3 refuses to delete a bucket holding objects,
    so a bucket already in use can never be lost this way."""
    try:
        s3.delete_bucket(Bucket=bucket)
    except (ClientError, BotoCoreError) as error:
        log.warning("could not delete bucket %s after a failed provisioning: %s", bucket, error)


def provision_bucket(s3: S3Client, bucket: str, cost_allocation_name: str, settings: Settings) -> bool:
    """Create (or re-apply the configuration of) a managed bucket. Returns True when CreateBucket
    may have created it. Raises Conflict / Unavailable / BadRequest; a bucket created by this call
    is deleted again when a later step fails."""
    try:
        created = _create(s3, bucket, settings)
    except (ClientError, BotoCoreError) as error:
        raise provisioning_error(error, bucket) from None
    try:
        _configure(s3, bucket, cost_allocation_name, settings)
    except (ClientError, BotoCoreError) as error:
        if created:
            delete_new_bucket(s3, bucket)
        raise provisioning_error(error, bucket) from None
    return created
