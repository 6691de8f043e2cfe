"""Bucket provisioning against moto's S3 server over HTTP.

moto does not emulate the account's bucket cap (TooManyBuckets; nothing in moto/s3 counts buckets),
so the refusals exercised for real are a name owned by another account (BucketAlreadyExists, via
moto's account header) and an IAM denial after CreateBucket (moto enforcing IAM policies). The
TooManyBuckets answer is checked on botocore's own error object in test_too_many_buckets_is_a_clear_503.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from costalloc_pipeline.buckets import (
    ABORT_INCOMPLETE_MULTIPART_DAYS,
    ARCHIVE_TAG,
    COST_ALLOCATION_TAG,
    NONCURRENT_RULE_ID,
    STACK_TAG,
    bucket_rules,
    keeps_noncurrent_versions,
    lifecycle_configuration,
    provision_bucket,
    provisioning_error,
)
from costalloc_pipeline.config import Settings
from costalloc_pipeline.errors import Conflict, Unavailable
from costalloc_pipeline.mover.archive_method import ArchiveMethod, bucket_method
from costalloc_pipeline.s3 import s3_client

BUCKET = "test-ca-lab-a-1c327e55b394"


@pytest.fixture
def s3_settings(s3_endpoint: str, tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, s3_endpoint_url=s3_endpoint, stack="test", archive_retention_days=30)


@pytest.fixture
def s3(s3_settings: Settings) -> Any:
    return s3_client(s3_settings)


def _bucket_names(s3: Any) -> list[str]:
    return [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]


def test_a_new_bucket_is_tagged_private_encrypted_and_has_the_lifecycle_rules(s3: Any, s3_settings: Settings) -> None:
    assert provision_bucket(s3, BUCKET, "lab-a", s3_settings) is True

    tags = {tag["Key"]: tag["Value"] for tag in s3.get_bucket_tagging(Bucket=BUCKET)["TagSet"]}
    assert tags == {COST_ALLOCATION_TAG: "lab-a", STACK_TAG: "test"}
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    encryption = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert encryption["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

    rules = {rule["ID"]: rule for rule in s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]}
    archive = rules["costalloc-expire-archived"]
    assert archive["Status"] == "Enabled"
    assert archive["Filter"]["Tag"] == {"Key": ARCHIVE_TAG[0], "Value": ARCHIVE_TAG[1]}
    assert archive["Expiration"]["Days"] == 30
    multipart = rules["costalloc-abort-incomplete-multipart"]
    assert multipart["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == ABORT_INCOMPLETE_MULTIPART_DAYS


def test_an_allocation_bucket_is_versioned_and_keeps_noncurrent_versions_for_the_retention(
    s3: Any, s3_settings: Settings
) -> None:
    provision_bucket(s3, BUCKET, "lab-a", s3_settings)
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    rules = bucket_rules(s3, BUCKET)
    noncurrent = next(rule for rule in rules if rule["ID"] == NONCURRENT_RULE_ID)
    assert noncurrent["NoncurrentVersionTransitions"] == [{"NoncurrentDays": 0, "StorageClass": "GLACIER"}]
    assert noncurrent["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert keeps_noncurrent_versions(rules, 30)
    # So its archives are DeleteObjects.
    assert bucket_method(s3, BUCKET, "auto", 30) is ArchiveMethod.DELETE


def test_in_copy_mode_no_bucket_is_versioned(s3: Any, s3_settings: Settings) -> None:
    provision_bucket(s3, BUCKET, "lab-a", s3_settings.with_changes(archive_mode="copy"))
    assert "Status" not in s3.get_bucket_versioning(Bucket=BUCKET)
    assert NONCURRENT_RULE_ID not in {rule["ID"] for rule in bucket_rules(s3, BUCKET)}
    assert bucket_method(s3, BUCKET, "auto", 30) is ArchiveMethod.COPY


def test_the_default_bucket_is_versioned_only_when_asked(s3: Any, s3_settings: Settings) -> None:
    default = s3_settings.default_bucket
    provision_bucket(s3, default, "default", s3_settings)
    assert "Status" not in s3.get_bucket_versioning(Bucket=default)
    provision_bucket(s3, default, "default", s3_settings.with_changes(default_bucket_versioning="enable"))
    assert s3.get_bucket_versioning(Bucket=default)["Status"] == "Enabled"
    assert bucket_method(s3, default, "auto", 30) is ArchiveMethod.DELETE
    # COSTALLOC_ARCHIVE_MODE=copy copies even where the bucket would allow a DeleteObject.
    assert bucket_method(s3, default, "copy", 30) is ArchiveMethod.COPY


def test_lifecycle_follows_the_retention_setting(s3_settings: Settings) -> None:
    rules = lifecycle_configuration(s3_settings.with_changes(archive_retention_days=400))["Rules"]
    archive = next(rule for rule in rules if "Tag" in rule["Filter"])
    assert archive["Expiration"] == {"Days": 400}
    assert archive["Filter"]["Tag"] == {"Key": "costalloc:archived", "Value": "true"}


def test_provisioning_again_reapplies_the_configuration(s3: Any, s3_settings: Settings) -> None:
    provision_bucket(s3, BUCKET, "lab-a", s3_settings)
    s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": []})
    s3.put_object(Bucket=BUCKET, Key="1/file.txt", Body=b"kept")

    provision_bucket(s3, BUCKET, "lab-a", s3_settings)
    tags = {tag["Key"]: tag["Value"] for tag in s3.get_bucket_tagging(Bucket=BUCKET)["TagSet"]}
    assert tags[COST_ALLOCATION_TAG] == "lab-a"
    assert s3.get_object(Bucket=BUCKET, Key="1/file.txt")["Body"].read() == b"kept"


def test_a_name_owned_by_another_account_is_a_conflict(
    s3: Any, s3_settings: Settings, bucket_of_another_account
) -> None:
    bucket_of_another_account(BUCKET)
    with pytest.raises(Conflict, match="belongs to another AWS account"):
        provision_bucket(s3, BUCKET, "lab-a", s3_settings)
    # Their bucket was not touched: our tags never landed on it.
    with pytest.raises(ClientError, match="NoSuchTagSet"):
        s3.get_bucket_tagging(Bucket=BUCKET)


def test_a_failed_configuration_step_deletes_the_new_bucket(s3_denied_lifecycle: Any, s3_settings: Settings) -> None:
    with pytest.raises(Unavailable, match=r"PutBucketLifecycleConfiguration.*AccessDenied"):
        provision_bucket(s3_denied_lifecycle, BUCKET, "lab-a", s3_settings)
    assert BUCKET not in _bucket_names(s3_denied_lifecycle)


def test_too_many_buckets_is_a_clear_503() -> None:
    refusal = ClientError(
        {
            "Error": {"Code": "TooManyBuckets", "Message": "You have attempted to create more buckets than allowed"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "CreateBucket",
    )
    error = provisioning_error(refusal, BUCKET)
    assert isinstance(error, Unavailable)
    assert error.status == 503
    assert "bucket limit" in error.reason and BUCKET in error.reason


def test_an_unreachable_s3_is_a_503() -> None:
    error = provisioning_error(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), BUCKET)
    assert error.status == 503
    assert "unavailable" in error.reason


def test_init_provisions_the_default_bucket(settings: Settings, admin_token: str) -> None:
    s3 = s3_client(settings)
    tags = {tag["Key"]: tag["Value"] for tag in s3.get_bucket_tagging(Bucket=settings.default_bucket)["TagSet"]}
    assert tags == {COST_ALLOCATION_TAG: "default", STACK_TAG: "test"}
    rules = s3.get_bucket_lifecycle_configuration(Bucket=settings.default_bucket)["Rules"]
    assert {rule["ID"] for rule in rules} == {"costalloc-expire-archived", "costalloc-abort-incomplete-multipart"}
