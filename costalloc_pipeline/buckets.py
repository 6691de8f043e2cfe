"""Provisioning of the buckets this project manages: each cost allocation's bucket and the default one.

Every managed bucket carries the same configuration, so the mover can archive into any of them
(DESIGN.md section 4 step 5) and billing can facet storage cost by the cost-allocation tag.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, cast

from botocore.exceptions import BotoCoreError, ClientError

from costalloc_pipeline.config import Settings
from costalloc_pipeline.errors import BadRequest, Conflict, CostAllocError, Unavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType, TransitionStorageClassType
    from mypy_boto3_s3.type_defs import (
        BucketLifecycleConfigurationTypeDef,
        CreateBucketRequestTypeDef,
        LifecycleRuleOutputTypeDef,
        LifecycleRuleTypeDef,
        TagTypeDef,
    )

log = logging.getLogger(__name__)

# The mover tags an archived copy with this; the lifecycle rule below expires exactly those objects.
ARCHIVE_TAG = ("costalloc:archived", "true")
COST_ALLOCATION_TAG = "costalloc:cost-allocation"
STACK_TAG = "costalloc:stack"
DEFAULT_BUCKET_TAG_VALUE = "default"
ABORT_INCOMPLETE_MULTIPART_DAYS = 7
ARCHIVE_RULE_ID = "costalloc-expire-archived"
ABORT_MULTIPART_RULE_ID = "costalloc-abort-incomplete-multipart"
NONCURRENT_RULE_ID = "costalloc-archive-noncurrent"
VERSIONING_ENABLED: Final = "Enabled"


def noncurrent_rule(settings: Settings) -> LifecycleRuleTypeDef:
    """The rule of a versioned bucket that makes every noncurrent version an archive: in the archive
    class at once, deleted after the retention period. A versioned bucket's archive is a DeleteObject
    (mover/archive_method.py): the old version becomes noncurrent then, and these days count from then."""
    return {
        "ID": NONCURRENT_RULE_ID,
        "Filter": {"Prefix": ""},
        "Status": "Enabled",
        "NoncurrentVersionTransitions": [
            {"NoncurrentDays": 0, "StorageClass": cast("TransitionStorageClassType", settings.archive_storage_class)}
        ],
        "NoncurrentVersionExpiration": {"NoncurrentDays": settings.archive_retention_days},
    }


def early_noncurrent_expiry(rules: Iterable[Mapping[str, Any]], retention_days: int) -> list[str]:
    """Ids of enabled rules that delete noncurrent versions before `retention_days`: in a versioned
    bucket they would delete archives early (I3), so the mover does not archive by DeleteObject there."""
    return [
        str(rule.get("ID", ""))
        for rule in rules
        if rule.get("Status") == "Enabled"
        and rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays", retention_days) < retention_days
    ]


def keeps_noncurrent_versions(rules: Iterable[Mapping[str, Any]], retention_days: int) -> bool:
    """Whether a bucket's rules keep every noncurrent version for `retention_days` and then expire it:
    costalloc's own rule is there, enabled over the whole bucket, and no rule expires one earlier."""
    listed = list(rules)
    own = [
        rule
        for rule in listed
        if rule.get("ID") == NONCURRENT_RULE_ID
        and rule.get("Status") == "Enabled"
        and not rule.get("Filter", {}).get("Prefix")
        and set(rule.get("Filter", {})) <= {"Prefix"}
        and "NoncurrentDays" in rule.get("NoncurrentVersionExpiration", {})
    ]
    return bool(own) and not early_noncurrent_expiry(listed, retention_days)


def bucket_rules(s3: S3Client, bucket: str) -> list[LifecycleRuleOutputTypeDef]:
    """The bucket's lifecycle rules; none when it has no lifecycle configuration."""
    try:
        return s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except ClientError as error:
        if _error_code(error) == "NoSuchLifecycleConfiguration":
            return []
        raise


def lifecycle_configuration(settings: Settings, versioned: bool = False) -> BucketLifecycleConfigurationTypeDef:
    """Rules installed on a managed bucket (the LifecycleConfiguration argument of boto3); a bucket
    costalloc versions gets the noncurrent-version rule too."""
    key, value = ARCHIVE_TAG
    rules: list[LifecycleRuleTypeDef] = [
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
    return {"Rules": [*rules, noncurrent_rule(settings)] if versioned else rules}


def versioned_on_provisioning(settings: Settings, default_bucket: bool) -> bool:
    """Whether provisioning turns versioning on: in the buckets costalloc creates for cost
    allocations, and in the default bucket only when asked (the repository's own deletes would
    leave noncurrent versions there too). COSTALLOC_ARCHIVE_MODE=copy versions nothing."""
    if settings.archive_mode == "copy":
        return False
    return settings.default_bucket_versioning == "enable" if default_bucket else True


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
    versioned = versioned_on_provisioning(settings, default_bucket=bucket == settings.default_bucket)
    if versioned:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": VERSIONING_ENABLED})
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration=lifecycle_configuration(settings, versioned)
    )


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
